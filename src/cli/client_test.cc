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
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>
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

TEST_F(ClientDiscovery, ARefresherReadsTheRecordAgainWhenPoked) {
  put(record("127.0.0.1:1000", a_.ca.cert_pem, a_.ca.cert_pem));
  auto locator = std::make_shared<WriterLocator>(store_, read(), std::chrono::milliseconds(0));
  LocatorRefresher refresher(locator);
  put(record("127.0.0.1:2000", b_.ca.cert_pem, b_.ca.cert_pem, "127.0.0.1:2001"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(locator->current().api, "https://127.0.0.1:1000") << "read without a poke";
  refresher.poke();
  for (int i = 0; i < 500 && locator->current().api != "https://127.0.0.1:2000"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(locator->current().api, "https://127.0.0.1:2000");
  EXPECT_EQ(locator->current().pubsub, "127.0.0.1:2001");
  EXPECT_EQ(locator->reads(), 1u);
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

// A TLS server that speaks just enough HTTP/1.1 by hand: it answers every
// request on a keep-alive connection, except request number `cut`, which
// it reads whole and then closes the connection without answering (what a
// client sees of a Writer killed just after it applied an append).
class CuttingServer {
 public:
  CuttingServer(const Pki& pki, int cut) : cut_(cut) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    BIO* cert = BIO_new_mem_buf(pki.server.cert_pem.data(), static_cast<int>(pki.server.cert_pem.size()));
    BIO* key = BIO_new_mem_buf(pki.server.key_pem.data(), static_cast<int>(pki.server.key_pem.size()));
    X509* x = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
    EVP_PKEY* k = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_, x), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cert);
    BIO_free(key);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~CuttingServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  void run() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) serve(ssl);
      SSL_free(ssl);
      ::close(fd);
    }
  }
  static bool read_more(SSL* ssl, std::string& buf) {
    char chunk[16384];
    const int n = SSL_read(ssl, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  void serve(SSL* ssl) {
    std::string buf;
    for (;;) {
      std::size_t head;
      while ((head = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!read_more(ssl, buf)) return;
      }
      std::string lower = buf.substr(0, head);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const auto cl = lower.find("content-length:");
      const std::size_t body = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15));
      while (buf.size() < head + 4 + body) {
        if (!read_more(ssl, buf)) return;
      }
      buf.erase(0, head + 4 + body);
      if (++requests_ == cut_) return;  // read whole, never answered
      const std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
      SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
    }
  }

  const int cut_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// libcurl resends a request by itself when a reused connection closes
// before the answer; for an append the Writer may have applied, that would
// apply it twice. The client must fail it instead, once.
// A client of `server`, which `pki`'s CA signs.
ClientConfig config_for(const CuttingServer& server, const Pki& pki) {
  ClientConfig cfg;
  cfg.api = "https://" + at(server.port());
  cfg.ca_pem = pki.ca.cert_pem;
  cfg.token = "t";
  return cfg;
}

TEST(ClientResend, ARequestCutAfterItWasSentIsNotSentAgain) {
  const Pki pki = make_pki("CA cut");
  CuttingServer server(pki, 2);
  Client client(config_for(server, pki));
  auto first = client.post("/writer/append", R"({"Stream":"/a","Lines":["x"]})");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->status, 200);
  auto second = client.post("/writer/append", R"({"Stream":"/a","Lines":["y"]})");  // on the reused connection
  EXPECT_FALSE(second) << "sent again, HTTP " << (second ? second->status : 0);
  if (!second) {
    EXPECT_NE(second.error().message.find("closed before it answered (the request may have been applied)"),
              std::string::npos)
        << second.error().message;
  }
  EXPECT_EQ(server.requests(), 2);
  auto third = client.post("/writer/append", R"({"Stream":"/a","Lines":["z"]})");
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(third->status, 200);
  EXPECT_EQ(server.requests(), 3);
}

// The first request on a fresh connection is read whole and never
// answered: the error says the Writer was reached and may have applied it,
// not that it could not be reached.
TEST(ClientResend, ARequestSentButNeverAnsweredMayHaveBeenApplied) {
  const Pki pki = make_pki("CA cut first");
  CuttingServer server(pki, 1);
  const ClientConfig cfg = config_for(server, pki);
  Client client(cfg);
  auto first = client.post("/writer/append", R"({"Stream":"/a","Lines":["x"]})");
  ASSERT_FALSE(first);
  EXPECT_NE(first.error().message.find("no answer from the Writer at " + cfg.api), std::string::npos)
      << first.error().message;
  EXPECT_NE(first.error().message.find("(the request may have been applied)"), std::string::npos)
      << first.error().message;
  EXPECT_EQ(server.requests(), 1);
}

}  // namespace
}  // namespace horizon::cli
