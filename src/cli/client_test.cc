// The client's view of the Writer: the discovery record read from a real
// file:// store, the locator that reads it again when the Writer moves, and
// requests over real TLS that follow a Writer to another port and through a
// CA rotation.

#include "cli/client.h"

#include "net/ca.h"
#include "net/http_server.h"
#include "server/discovery.h"
#include "store/object_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace horizon::cli {
namespace {

namespace fs = std::filesystem;

struct Pki {
  net::CertifiedKey ca;
  net::CertifiedKey server;
};

Pki make_pki(const char* name) {
  auto ca = net::create_ca(name).value();
  auto server = net::issue_server_cert(ca, "localhost", {"127.0.0.1"}).value();
  return {ca, server};
}

std::string record(const std::string& api, const std::string& ca_pem, const std::string& signing_ca_pem,
                   const std::string& pubsub = "") {
  server::DiscoveryRecord r;
  r.writer_id = "0123456789abcdef";
  r.api = api;
  r.pubsub = pubsub;
  r.ca_pem = ca_pem;
  r.ca_sha256 = net::certificate_fingerprint_sha256(signing_ca_pem).value();
  r.updated = "2026-11-29T06:00:00.000Z";
  return server::serialize_discovery(r);
}

// An HTTPS server presenting `pki`'s certificate that answers every request
// with `who`.
std::unique_ptr<net::HttpServer> serve(const Pki& pki, const std::string& who, std::uint16_t port = 0) {
  net::HttpServerOptions o;
  o.address = "127.0.0.1";
  o.port = port;
  o.cert_pem = pki.server.cert_pem;
  o.key_pem = pki.server.key_pem;
  auto s = net::HttpServer::start(o, [who](net::HttpRequest, net::Responder respond) {
    net::HttpResponse r;
    r.body = who;
    respond(std::move(r));
  });
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::string at(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

class ClientDiscovery : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/eh-client-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::open_store("file://" + dir_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void put(const std::string& text) { ASSERT_TRUE(store_->put(std::string(server::kDiscoveryKey), text)); }
  WriterAddress read() { return read_writer_address(*store_).value(); }

  std::string dir_;
  std::shared_ptr<store::ObjectStore> store_;
  const Pki a_ = make_pki("CA a");
  const Pki b_ = make_pki("CA b");
};

TEST_F(ClientDiscovery, ReadsTheRecordIntoAnAddress) {
  put(record("127.0.0.1:9092", a_.ca.cert_pem, a_.ca.cert_pem, "127.0.0.1:9091"));
  const WriterAddress w = read();
  EXPECT_EQ(w.api, "https://127.0.0.1:9092");
  EXPECT_EQ(w.pubsub, "127.0.0.1:9091");
  EXPECT_EQ(w.ca_pem, a_.ca.cert_pem);
}

TEST_F(ClientDiscovery, NoRecordIsNotReadyAndADamagedOneNamesTheField) {
  auto none = read_writer_address(*store_);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, errc::not_ready);
  EXPECT_NE(none.error().message.find("no discovery record"), std::string::npos) << none.error().message;

  std::string bad = record("127.0.0.1:9092", a_.ca.cert_pem, a_.ca.cert_pem);
  bad.replace(bad.find("\"127.0.0.1:9092\""), 16, "9092");
  put(bad);
  auto damaged = read_writer_address(*store_);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, errc::corruption);
  EXPECT_NE(damaged.error().message.find("\"api\" is not a string"), std::string::npos) << damaged.error().message;
}

TEST_F(ClientDiscovery, TheLocatorReadsTheRecordAtMostOncePerInterval) {
  put(record("127.0.0.1:1000", a_.ca.cert_pem, a_.ca.cert_pem));
  const WriterAddress first = read();
  WriterLocator locator(store_, first, std::chrono::hours(1));
  put(record("127.0.0.1:2000", a_.ca.cert_pem, a_.ca.cert_pem));
  EXPECT_FALSE(locator.moved_from(first));
  EXPECT_EQ(locator.reads(), 0u);
  EXPECT_EQ(locator.current(), first);
}

TEST_F(ClientDiscovery, TheLocatorFindsTheWriterAnewAndSharesWhatItFound) {
  put(record("127.0.0.1:1000", a_.ca.cert_pem, a_.ca.cert_pem));
  const WriterAddress first = read();
  WriterLocator locator(store_, first, std::chrono::milliseconds(0));
  EXPECT_FALSE(locator.moved_from(first)) << "the record still names it";
  EXPECT_EQ(locator.reads(), 1u);

  put(record("127.0.0.1:2000", b_.ca.cert_pem, b_.ca.cert_pem, "127.0.0.1:2001"));
  auto moved = locator.moved_from(first);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->api, "https://127.0.0.1:2000");
  EXPECT_EQ(moved->pubsub, "127.0.0.1:2001");
  EXPECT_EQ(moved->ca_pem, b_.ca.cert_pem);
  EXPECT_EQ(locator.current(), *moved);
  EXPECT_EQ(locator.reads(), 2u);
  // Another caller that failed on the old address gets the new one without
  // a store read.
  EXPECT_EQ(locator.moved_from(first), moved);
  EXPECT_EQ(locator.reads(), 2u);
}

TEST_F(ClientDiscovery, ADamagedOrMissingRecordKeepsTheLastGoodAddress) {
  put(record("127.0.0.1:1000", a_.ca.cert_pem, a_.ca.cert_pem));
  const WriterAddress first = read();
  WriterLocator locator(store_, first, std::chrono::milliseconds(0));
  put("{\"writer_id\":");
  EXPECT_FALSE(locator.moved_from(first));
  ASSERT_TRUE(store_->remove(std::string(server::kDiscoveryKey)));
  EXPECT_FALSE(locator.moved_from(first));
  EXPECT_EQ(locator.current(), first);
  EXPECT_EQ(locator.reads(), 2u);
}

ClientConfig config_for(const WriterAddress& w, std::shared_ptr<WriterLocator> locator) {
  ClientConfig c;
  c.token = "t";
  c.api = w.api;
  c.pubsub = w.pubsub;
  c.ca_pem = w.ca_pem;
  c.locator = std::move(locator);
  return c;
}

TEST_F(ClientDiscovery, ARequestFollowsTheWriterToAnotherPort) {
  auto old_server = serve(a_, "old");
  ASSERT_TRUE(old_server);
  const std::uint16_t old_port = old_server->port();
  put(record(at(old_port), a_.ca.cert_pem, a_.ca.cert_pem));
  const WriterAddress first = read();
  auto locator = std::make_shared<WriterLocator>(store_, first, std::chrono::milliseconds(0));
  Client client(config_for(first, locator));
  auto r = client.post("/writer/x", "{}");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "old");

  // The Writer restarts on another port (connections to the old one are refused).
  old_server->stop();
  old_server.reset();
  auto new_server = serve(a_, "new");
  ASSERT_TRUE(new_server);
  put(record(at(new_server->port()), a_.ca.cert_pem, a_.ca.cert_pem));
  r = client.post("/writer/x", "{}");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "new");
  EXPECT_EQ(locator->current().api, "https://" + at(new_server->port()));

  // Without a locator the old address is all a client knows.
  ClientConfig fixed = config_for(first, nullptr);
  Client stuck(fixed);
  auto refused = stuck.post("/writer/x", "{}");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("cannot reach the Writer at https://" + at(old_port)), std::string::npos)
      << refused.error().message;
}

TEST_F(ClientDiscovery, ARequestFollowsACaRotation) {
  // The client trusts CA a; the Writer now presents a certificate of CA b,
  // and the record trusts both (the bundle of a rotation).
  auto server = serve(b_, "rotated");
  ASSERT_TRUE(server);
  put(record(at(server->port()), a_.ca.cert_pem, a_.ca.cert_pem));
  const WriterAddress first = read();
  auto locator = std::make_shared<WriterLocator>(store_, first, std::chrono::milliseconds(0));
  Client client(config_for(first, locator));
  auto refused = client.post("/writer/x", "{}");
  ASSERT_FALSE(refused) << "a certificate of another CA must not verify";
  EXPECT_NE(refused.error().message.find("SSL certificate problem"), std::string::npos) << refused.error().message;

  put(record(at(server->port()), b_.ca.cert_pem + a_.ca.cert_pem, b_.ca.cert_pem));
  auto r = client.post("/writer/x", "{}");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, "rotated");
}

}  // namespace
}  // namespace horizon::cli
