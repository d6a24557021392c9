// Replaceable server credentials (certificate renewal while listeners run):
// a real HttpServer over TLS and a blocking OpenSSL client that verifies the
// chain against the internal CA and reports which certificate it was shown.

#include "net/ca.h"
#include "net/http_server.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace horizon::net {
namespace {

struct Pki {
  CertifiedKey ca, a, b;
};
const Pki& pki() {
  static const Pki p = [] {
    Pki k;
    k.ca = create_ca("tls test CA").value();
    k.a = issue_server_cert(k.ca, "a", {"localhost", "127.0.0.1"}).value();
    k.b = issue_server_cert(k.ca, "b", {"localhost", "127.0.0.1"}).value();
    return k;
  }();
  return p;
}

// One TLS connection to 127.0.0.1:port, verified against the test CA.
class TlsClient {
 public:
  explicit TlsClient(std::uint16_t port) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    BIO* bio = BIO_new_mem_buf(pki().ca.cert_pem.data(), static_cast<int>(pki().ca.cert_pem.size()));
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    connected_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool connected() const { return connected_; }

  // The SHA-256 fingerprint of the certificate the server presented.
  std::string presented() const {
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (peer == nullptr) return "none";
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, peer);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    X509_free(peer);
    return certificate_fingerprint_sha256(pem).value();
  }

  // GET / on the connection; the response's status line.
  std::string get() {
    const std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    if (SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "write failed";
    char buf[4096];
    std::string out;
    while (out.find("\r\n\r\n") == std::string::npos || out.find("ok") == std::string::npos) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return "read failed: " + out;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out.substr(0, out.find("\r\n"));
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

std::unique_ptr<HttpServer> serve(const std::shared_ptr<ServerCredentials>& credentials) {
  HttpServerOptions o;
  o.address = "127.0.0.1";
  o.credentials = credentials;
  o.threads = 1;
  auto s = HttpServer::start(o, [](HttpRequest, Responder respond) {
    HttpResponse r;
    r.body = "ok";
    respond(std::move(r));
  });
  EXPECT_TRUE(s) << s.error().message;
  return std::move(*s);
}

TEST(ServerCredentials, NewConnectionsGetTheReplacedPairEstablishedOnesKeepTheirs) {
  const std::string fp_a = certificate_fingerprint_sha256(pki().a.cert_pem).value();
  const std::string fp_b = certificate_fingerprint_sha256(pki().b.cert_pem).value();
  auto creds = ServerCredentials::make(pki().a.cert_pem, pki().a.key_pem).value();
  auto server = serve(creds);
  TlsClient first(server->port());
  ASSERT_TRUE(first.connected());
  EXPECT_EQ(first.presented(), fp_a);
  EXPECT_EQ(first.get(), "HTTP/1.1 200 OK");

  ASSERT_TRUE(creds->replace(pki().b.cert_pem, pki().b.key_pem));
  EXPECT_EQ(creds->generation(), 1u);
  EXPECT_EQ(creds->cert_pem(), pki().b.cert_pem);
  TlsClient second(server->port());
  ASSERT_TRUE(second.connected()) << "the new pair verifies against the CA";
  EXPECT_EQ(second.presented(), fp_b);
  EXPECT_EQ(second.get(), "HTTP/1.1 200 OK");
  EXPECT_EQ(first.get(), "HTTP/1.1 200 OK") << "the established connection goes on";

  ASSERT_TRUE(creds->replace(pki().a.cert_pem, pki().a.key_pem));
  TlsClient third(server->port());
  ASSERT_TRUE(third.connected());
  EXPECT_EQ(third.presented(), fp_a);
  server->stop(std::chrono::milliseconds(500));
}

TEST(ServerCredentials, ABadPairIsRefusedAndChangesNothing) {
  auto creds = ServerCredentials::make(pki().a.cert_pem, pki().a.key_pem).value();
  for (auto [cert, key, what] : {std::tuple{pki().b.cert_pem, pki().a.key_pem, "does not match"},
                                 std::tuple{std::string("junk"), pki().a.key_pem, "certificate is not valid PEM"},
                                 std::tuple{pki().a.cert_pem, std::string("junk"), "key is not valid PEM"}}) {
    auto r = creds->replace(cert, key);
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("PRIVATE KEY"), std::string::npos) << "no key material in messages";
  }
  EXPECT_EQ(creds->generation(), 0u);
  EXPECT_EQ(creds->cert_pem(), pki().a.cert_pem);
  auto bad = ServerCredentials::make(pki().b.cert_pem, pki().a.key_pem);
  ASSERT_FALSE(bad);
  auto server = serve(creds);
  TlsClient c(server->port());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.presented(), certificate_fingerprint_sha256(pki().a.cert_pem).value());
  server->stop(std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace horizon::net
