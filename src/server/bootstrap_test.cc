// Server certificate renewal (bootstrap.h): when it is due, what it writes,
// and the CA warning. The data directory is bootstrapped for real (internal
// CA, files on disk); "now" is passed in, so years ahead are cheap.

#include "server/bootstrap.h"

#include "core/store_keys.h"
#include "net/ca.h"
#include "net/secrets.h"
#include "store/memory_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace horizon::server {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Renewal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("eh-renew-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    store_ = store::make_memory_store();
    id_ = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_).value();
    validity_ = net::certificate_validity(id_.server_cert_pem).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::optional<server::Renewal>> renew_at(std::time_t now, const std::string& host = "127.0.0.1") {
    return renew_server_cert_if_due(dir_.string(), host, id_.ca_pem, id_.server_cert_pem, now);
  }

  fs::path dir_;
  std::unique_ptr<store::MemoryStore> store_;
  WriterIdentity id_;
  net::CertificateValidity validity_;
};

constexpr std::time_t kDay = 86400;

TEST_F(Renewal, NotDueWhileMoreThanNinetyDaysRemain) {
  EXPECT_TRUE(id_.renewed.empty());
  for (std::time_t now : {std::time(nullptr), validity_.not_after - 91 * kDay}) {
    auto r = renew_at(now);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r);
  }
  EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), id_.server_cert_pem) << "nothing written";
  auto again = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_).value();
  EXPECT_TRUE(again.renewed.empty()) << "a restart does not renew a certificate that is not due";
  EXPECT_EQ(again.server_cert_pem, id_.server_cert_pem);
}

TEST_F(Renewal, DueWithinNinetyDaysOfTheEndAndAfterIt) {
  struct Case {
    std::time_t now;
    const char* reason;
  };
  for (const Case& c : {Case{validity_.not_after - 89 * kDay, "expires on"},
                        Case{validity_.not_after + 3 * kDay, "expired on"}}) {
    auto r = renew_at(c.now);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(*r) << c.reason;
    EXPECT_NE((*r)->reason.find(c.reason), std::string::npos) << (*r)->reason;
    EXPECT_NE((*r)->cert_pem, id_.server_cert_pem);
    EXPECT_TRUE(net::verify_server_cert((*r)->cert_pem, id_.ca_pem, "127.0.0.1"));
    EXPECT_TRUE(net::verify_server_cert((*r)->cert_pem, id_.ca_pem, "localhost"));
    // Written for the next start; the key stays private.
    EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), (*r)->cert_pem);
    EXPECT_EQ(slurp(dir_ / "tls" / "server-key.pem"), (*r)->key_pem);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "tls" / "server-key.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ((*r)->reason.find("PRIVATE"), std::string::npos);
  }
  auto loaded = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_).value();
  EXPECT_EQ(loaded.server_cert_pem, slurp(dir_ / "tls" / "server.pem")) << "the next start uses the renewed pair";
}

TEST_F(Renewal, DueWhenTheAdvertisedHostChanged) {
  auto r = renew_at(std::time(nullptr), "10.1.2.3");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(*r);
  EXPECT_NE((*r)->reason.find("does not verify for 10.1.2.3"), std::string::npos) << (*r)->reason;
  EXPECT_TRUE(net::verify_server_cert((*r)->cert_pem, id_.ca_pem, "10.1.2.3"));
  // At start, too (bootstrap_or_load says why).
  auto loaded = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "writer.example"}, *store_).value();
  EXPECT_NE(loaded.renewed.find("does not verify for writer.example"), std::string::npos) << loaded.renewed;
  EXPECT_TRUE(net::verify_server_cert(loaded.server_cert_pem, id_.ca_pem, "writer.example"));
}

// The clock may move between two reads (a jump, libfaketime): every check
// of one call uses the `now` it was given, never a fresh reading. Seen in
// CI: the CA was judged valid at `now`, then the chain verified at a later
// clock past the CA's end, and a certificate was issued by an expired CA.
TEST_F(Renewal, EveryCheckUsesTheGivenInstantNotTheClock) {
  auto early = renew_at(validity_.not_before - 2 * kDay);
  ASSERT_TRUE(early) << early.error().message;
  ASSERT_TRUE(*early) << "two days before its start the certificate does not verify";
  EXPECT_NE((*early)->reason.find("not yet valid"), std::string::npos) << (*early)->reason;
  auto fine = renew_at(validity_.not_before + kDay);
  ASSERT_TRUE(fine) << fine.error().message;
  EXPECT_FALSE(*fine) << "a day after its start it is not due";
}

TEST_F(Renewal, AMissingCaKeyIsAClearErrorAndWritesNothing) {
  fs::remove(dir_ / "tls" / "ca-key.pem");
  auto r = renew_at(validity_.not_after - kDay);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ca-key.pem"), std::string::npos) << r.error().message;
  EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), id_.server_cert_pem);
}

TEST_F(Renewal, TheCaIsWarnedAboutInItsLastYear) {
  const auto ca = net::certificate_validity(id_.ca_pem).value();
  EXPECT_FALSE(ca_expiry_warning(id_.ca_pem, std::time(nullptr)));
  EXPECT_FALSE(ca_expiry_warning(id_.ca_pem, ca.not_after - 366 * kDay));
  auto soon = ca_expiry_warning(id_.ca_pem, ca.not_after - 100 * kDay);
  ASSERT_TRUE(soon);
  EXPECT_NE(soon->find("expires in 100 days"), std::string::npos) << *soon;
  auto past = ca_expiry_warning(id_.ca_pem, ca.not_after + kDay);
  ASSERT_TRUE(past);
  EXPECT_NE(past->find("expired on"), std::string::npos) << *past;
}

// CA rotation (bootstrap.h): prepare, a restart (clients trust both CAs),
// finish, a restart (the new CA signs; the old one stays trusted until it
// expires), then the next rotation.
int count_certificates(const std::string& pem) {
  int n = 0;
  for (auto at = pem.find("BEGIN CERTIFICATE"); at != std::string::npos; at = pem.find("BEGIN CERTIFICATE", at + 1)) ++n;
  return n;
}

TEST_F(Renewal, CaRotationKeepsEveryStepVerifiable) {
  const std::time_t now = std::time(nullptr);
  const std::string old_ca = id_.ca_pem;
  EXPECT_EQ(slurp(dir_ / "ca.pem"), old_ca);
  EXPECT_EQ(id_.trusted_ca_pem, old_ca);

  auto prepared = prepare_ca_rotation(dir_.string(), now);
  ASSERT_TRUE(prepared) << prepared.error().message;
  EXPECT_NE(prepared->find("prepared the successor"), std::string::npos) << *prepared;
  const std::string next = slurp(dir_ / "tls" / "ca-next.pem");
  ASSERT_EQ(count_certificates(next), 1);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "tls" / "ca-next-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(slurp(dir_ / "ca.pem"), old_ca + next) << "clients learn the successor at once";
  EXPECT_EQ(slurp(dir_ / "tls" / "ca.pem"), old_ca) << "the current CA still signs";
  // The server certificate is unchanged and verifies against the bundle.
  EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), id_.server_cert_pem);
  EXPECT_TRUE(net::verify_server_cert(id_.server_cert_pem, old_ca + next, "127.0.0.1"));
  EXPECT_FALSE(net::verify_server_cert(id_.server_cert_pem, next, "127.0.0.1"));
  // A restart publishes the bundle.
  auto restarted = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_).value();
  EXPECT_EQ(restarted.ca_pem, old_ca);
  EXPECT_EQ(restarted.trusted_ca_pem, old_ca + next);
  ASSERT_TRUE(publish_discovery(*store_, restarted, "127.0.0.1:1", "127.0.0.1:2"));
  const std::string discovery = store_->get(std::string(kDiscoveryKey)).value().value();
  EXPECT_EQ(count_certificates(discovery), 2) << discovery;
  // Preparing again changes nothing.
  auto again = prepare_ca_rotation(dir_.string(), now);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->find("already prepared"), std::string::npos) << *again;
  EXPECT_EQ(slurp(dir_ / "tls" / "ca-next.pem"), next);

  auto finished = finish_ca_rotation(dir_.string(), now);
  ASSERT_TRUE(finished) << finished.error().message;
  const std::string server = slurp(dir_ / "tls" / "server.pem");
  EXPECT_NE(server, id_.server_cert_pem);
  EXPECT_TRUE(net::verify_server_cert(server, next, "127.0.0.1"));
  EXPECT_TRUE(net::verify_server_cert(server, next, "localhost")) << "the same names as before";
  EXPECT_FALSE(net::verify_server_cert(server, old_ca, "127.0.0.1"));
  EXPECT_TRUE(net::verify_server_cert(server, slurp(dir_ / "ca.pem"), "127.0.0.1"));
  EXPECT_EQ(slurp(dir_ / "tls" / "ca.pem"), next);
  EXPECT_EQ(slurp(dir_ / "tls" / "ca-previous.pem"), old_ca);
  EXPECT_FALSE(fs::exists(dir_ / "tls" / "ca-next.pem"));
  EXPECT_FALSE(fs::exists(dir_ / "tls" / "ca-next-key.pem"));
  EXPECT_EQ(slurp(dir_ / "ca.pem"), next + old_ca) << "the previous CA stays trusted";
  auto after = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_).value();
  EXPECT_EQ(after.ca_pem, next);
  EXPECT_EQ(after.server_cert_pem, server);
  EXPECT_TRUE(after.renewed.empty()) << after.renewed;
  // The new CA's key signs (a renewal works) ...
  auto renewal = renew_server_cert_if_due(dir_.string(), "10.9.8.7", after.ca_pem, after.server_cert_pem, now);
  ASSERT_TRUE(renewal && *renewal) << (renewal ? "not due" : renewal.error().message);
  EXPECT_TRUE(net::verify_server_cert((*renewal)->cert_pem, next, "10.9.8.7"));
  // ... and once the previous CA has expired it is no longer trusted.
  const auto old_end = net::certificate_validity(old_ca).value().not_after;
  EXPECT_EQ(trusted_cas(dir_.string(), old_end - kDay).value(), next + old_ca);
  EXPECT_EQ(trusted_cas(dir_.string(), old_end + kDay).value(), next);

  // Finishing twice is an error that changes nothing; the next rotation works.
  EXPECT_FALSE(finish_ca_rotation(dir_.string(), now));
  ASSERT_TRUE(prepare_ca_rotation(dir_.string(), now));
  const std::string third = slurp(dir_ / "tls" / "ca-next.pem");
  EXPECT_NE(third, next);
  ASSERT_TRUE(finish_ca_rotation(dir_.string(), now));
  EXPECT_EQ(slurp(dir_ / "tls" / "ca-previous.pem"), next);
  EXPECT_EQ(slurp(dir_ / "ca.pem"), third + next);
}

// A crash inside finish, after the CA certificate was replaced and before
// its key was: the Writer refuses to start (the pair does not match) and
// says what to run; finish run again completes the rotation.
TEST_F(Renewal, AnInterruptedCaRotationIsFinishedByRunningFinishAgain) {
  const std::time_t now = std::time(nullptr);
  const std::string old_ca = id_.ca_pem;
  ASSERT_TRUE(prepare_ca_rotation(dir_.string(), now));
  const std::string next = slurp(dir_ / "tls" / "ca-next.pem");
  ASSERT_TRUE(net::write_public_file((dir_ / "tls" / "ca-previous.pem").string(), old_ca));
  ASSERT_TRUE(net::write_public_file((dir_ / "tls" / "ca.pem").string(), next));  // the crash: key not yet replaced

  auto refused = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("horizon ca-rotate finish"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(prepare_ca_rotation(dir_.string(), now)) << "prepare would make a third CA in the middle";

  auto finished = finish_ca_rotation(dir_.string(), now);
  ASSERT_TRUE(finished) << finished.error().message;
  EXPECT_EQ(slurp(dir_ / "tls" / "ca-previous.pem"), old_ca) << "not overwritten with the successor";
  auto loaded = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_TRUE(net::verify_server_cert(loaded->server_cert_pem, next, "127.0.0.1"));
  auto renewal = renew_server_cert_if_due(dir_.string(), "10.9.8.7", loaded->ca_pem, loaded->server_cert_pem, now);
  ASSERT_TRUE(renewal && *renewal) << "the CA key matches its certificate again";
}

TEST_F(Renewal, FinishWithoutAPreparedSuccessorChangesNothing) {
  auto r = finish_ca_rotation(dir_.string(), std::time(nullptr));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ca-rotate prepare"), std::string::npos) << r.error().message;
  EXPECT_EQ(slurp(dir_ / "tls" / "ca.pem"), id_.ca_pem);
  EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), id_.server_cert_pem);
  EXPECT_FALSE(fs::exists(dir_ / "tls" / "ca-previous.pem"));
}

// A damaged identity.json (wrong JSON types included) is a clear error at
// start and for ca-rotate, and nothing is written.
TEST_F(Renewal, ADamagedIdentityFileIsAClearError) {
  const std::string good = slurp(dir_ / "identity.json");
  for (const std::string& damaged :
       {std::string(), std::string("{"), std::string("[]"), std::string(R"({"writer_id":5,"store":"memory://x"})"),
        std::string(R"({"writer_id":"abc","store":7})"), std::string(R"({"writer_id":"","store":"memory://x"})"),
        std::string(R"({"writer_id":"abc"})")}) {
    std::ofstream(dir_ / "identity.json", std::ios::binary | std::ios::trunc) << damaged;
    auto loaded = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_);
    ASSERT_FALSE(loaded) << damaged;
    EXPECT_EQ(loaded.error().code, errc::corruption) << damaged;
    EXPECT_NE(loaded.error().message.find("identity.json is damaged"), std::string::npos) << loaded.error().message;
    auto prepared = prepare_ca_rotation(dir_.string(), std::time(nullptr));
    ASSERT_FALSE(prepared) << damaged;
    EXPECT_EQ(prepared.error().code, errc::corruption) << damaged;
    EXPECT_FALSE(fs::exists(dir_ / "tls" / "ca-next.pem")) << damaged;
    EXPECT_EQ(slurp(dir_ / "tls" / "server.pem"), id_.server_cert_pem) << damaged;
  }
  std::ofstream(dir_ / "identity.json", std::ios::binary | std::ios::trunc) << good;
  auto again = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->writer_id, id_.writer_id);
}

// A file that cannot be read is an I/O error (a restart may cure it), not
// damage: before, a read error ended the content early and the file passed
// for a damaged one.
TEST_F(Renewal, AnUnreadableIdentityFileIsAnIoErrorNotDamage) {
  const std::string good = slurp(dir_ / "identity.json");
  fs::remove(dir_ / "identity.json");
  fs::create_directory(dir_ / "identity.json");  // open succeeds, read fails (EISDIR)
  auto loaded = bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, errc::storage_failed) << loaded.error().message;
  EXPECT_EQ(loaded.error().message, "read " + (dir_ / "identity.json").string() + ": Is a directory");
  fs::remove(dir_ / "identity.json");
  std::ofstream(dir_ / "identity.json", std::ios::binary) << good;
  EXPECT_TRUE(bootstrap_or_load(BootstrapConfig{dir_.string(), "memory://x", "127.0.0.1"}, *store_));
}

// A store with chunks but no discovery record holds another Writer's data
// (its record was removed by hand): a new Writer would write its chunks
// under the same keys and, unable to decode the old ones, overwrite them.
TEST(Bootstrap, AStoreWithChunksButNoDiscoveryRecordIsRefusedAndNothingIsWritten) {
  const fs::path dir = fs::temp_directory_path() / ("eh-boot-chunks-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto store = store::make_memory_store();
  ASSERT_TRUE(store->put("other/thing", "not a chunk"));
  const std::string key = chunk_key(StreamName::parse("/orders").value(), 3);
  ASSERT_TRUE(store->put(key, "another Writer's chunk"));
  auto refused = bootstrap_or_load(BootstrapConfig{dir.string(), "memory://x", "127.0.0.1"}, *store);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::conflict);
  EXPECT_NE(refused.error().message.find("holds chunks (" + key + ") but no discovery record"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(fs::exists(dir / "identity.json"));
  EXPECT_FALSE(fs::exists(dir / "client.env"));
  EXPECT_FALSE(fs::exists(dir / "tls"));
  EXPECT_EQ(store->get(key).value().value(), "another Writer's chunk");

  // Other objects alone do not stop a bootstrap.
  ASSERT_TRUE(store->remove(key));
  auto id = bootstrap_or_load(BootstrapConfig{dir.string(), "memory://x", "127.0.0.1"}, *store);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_TRUE(id->fresh);
  // The Writer's own chunks do not stop its restarts.
  ASSERT_TRUE(store->put(key, "its own chunk"));
  auto again = bootstrap_or_load(BootstrapConfig{dir.string(), "memory://x", "127.0.0.1"}, *store);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->writer_id, id->writer_id);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace horizon::server
