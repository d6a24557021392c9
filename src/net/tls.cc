#include "net/tls.h"

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

namespace horizon::net {

namespace ssl = boost::asio::ssl;

Result<void> configure_server_tls(ssl::context& tls, std::string_view cert_pem, std::string_view key_pem,
                                  std::string_view who) {
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
  return {};
}

}  // namespace horizon::net
