#include "net/tls.h"

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <vector>

namespace horizon::net {

namespace ssl = boost::asio::ssl;

struct ServerCredentials::Pair {
  std::string cert_pem;
  std::string key_pem;
  std::uint64_t generation = 0;
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;  // the certificates after the first, if any
  EVP_PKEY* key = nullptr;

  Pair() = default;
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  ~Pair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

Result<std::shared_ptr<ServerCredentials::Pair>> parse_pair(std::string_view cert_pem, std::string_view key_pem) {
  auto bad = [](std::string_view what) {
    ERR_clear_error();
    return Error::make(errc::invalid_argument, std::string(what));
  };
  auto p = std::make_shared<ServerCredentials::Pair>();
  p->cert_pem = std::string(cert_pem);
  p->key_pem = std::string(key_pem);
  BIO* certs = BIO_new_mem_buf(p->cert_pem.data(), static_cast<int>(p->cert_pem.size()));
  if (certs == nullptr) return bad("TLS: out of memory");
  p->leaf = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
  p->chain = sk_X509_new_null();
  while (p->leaf != nullptr && p->chain != nullptr) {
    X509* more = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
    if (more == nullptr) break;
    sk_X509_push(p->chain, more);
  }
  BIO_free(certs);
  if (p->leaf == nullptr) return bad("TLS: the server certificate is not valid PEM");
  BIO* key = BIO_new_mem_buf(p->key_pem.data(), static_cast<int>(p->key_pem.size()));
  if (key == nullptr) return bad("TLS: out of memory");
  p->key = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  BIO_free(key);
  if (p->key == nullptr) return bad("TLS: the server key is not valid PEM");
  if (X509_check_private_key(p->leaf, p->key) != 1) return bad("TLS: the key does not match the certificate");
  ERR_clear_error();
  return p;
}

// SSL_CTX cert callback: a handshake presents the credentials' current pair.
// Generation 0 is the pair the context was configured with.
int present_current(SSL* ssl, void* arg) {
  auto pair = static_cast<ServerCredentials*>(arg)->current();
  if (pair->generation == 0) return 1;
  if (SSL_use_certificate(ssl, pair->leaf) != 1 || SSL_use_PrivateKey(ssl, pair->key) != 1 ||
      SSL_set1_chain(ssl, pair->chain) != 1) {
    return 0;  // the handshake fails
  }
  return 1;
}

}  // namespace

Result<std::shared_ptr<ServerCredentials>> ServerCredentials::make(std::string_view cert_pem,
                                                                   std::string_view key_pem) {
  auto pair = parse_pair(cert_pem, key_pem);
  if (!pair) return pair.error();
  std::shared_ptr<ServerCredentials> c(new ServerCredentials());
  c->current_ = std::move(*pair);
  return c;
}

Result<void> ServerCredentials::replace(std::string_view cert_pem, std::string_view key_pem) {
  auto pair = parse_pair(cert_pem, key_pem);
  if (!pair) return pair.error();
  std::lock_guard lock(mu_);
  (*pair)->generation = current_->generation + 1;
  current_ = std::move(*pair);
  return {};
}

std::shared_ptr<const ServerCredentials::Pair> ServerCredentials::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::string ServerCredentials::cert_pem() const { return current()->cert_pem; }

std::uint64_t ServerCredentials::generation() const { return current()->generation; }

Result<void> configure_server_tls(ssl::context& tls, std::string_view cert_pem, std::string_view key_pem,
                                  std::string_view who, const std::shared_ptr<ServerCredentials>& credentials) {
  std::shared_ptr<const ServerCredentials::Pair> initial;
  if (credentials) {
    initial = credentials->current();
    cert_pem = initial->cert_pem;
    key_pem = initial->key_pem;
  }
  boost::system::error_code ec;
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                  ec);
  SSL_CTX* ctx = tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return Error::make(errc::internal, fmt::format("{}: TLS: no usable TLS 1.2 cipher suites", who));
  }
  tls.use_certificate_chain(boost::asio::buffer(cert_pem.data(), cert_pem.size()), ec);
  if (ec) {
    return Error::make(errc::invalid_argument,
                       fmt::format("{}: TLS: the server certificate is not valid PEM: {}", who, ec.message()));
  }
  tls.use_private_key(boost::asio::buffer(key_pem.data(), key_pem.size()), ssl::context::pem, ec);
  if (ec) {
    return Error::make(errc::invalid_argument,
                       fmt::format("{}: TLS: the server key is not valid PEM: {}", who, ec.message()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Error::make(errc::invalid_argument, fmt::format("{}: TLS: the key does not match the certificate", who));
  }
  if (credentials) SSL_CTX_set_cert_cb(ctx, present_current, credentials.get());
  return {};
}

}  // namespace horizon::net
