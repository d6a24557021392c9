#pragma once
// The TLS server settings shared by every listener of the Writer (the HTTPS
// API and the pub/sub server): TLS >= 1.2, no renegotiation, ECDHE with
// AES-GCM or ChaCha20 for TLS 1.2, the given certificate chain and key
// (which must match).
//
// Thread-safety: configure_server_tls before the context is used by any
// connection; ServerCredentials may be used from any thread.

#include "core/errc.h"

#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace horizon::net {

// A server certificate (chain) and key that can be replaced while listeners
// run (certificate renewal): every TLS handshake after replace() presents
// the new pair; established connections keep theirs.
class ServerCredentials {
 public:
  // Errors: invalid_argument when a PEM does not parse or the key does not
  // match the certificate (messages never contain key material).
  [[nodiscard]] static Result<std::shared_ptr<ServerCredentials>> make(std::string_view cert_pem,
                                                                       std::string_view key_pem);
  // Same checks as make; on error nothing changes.
  [[nodiscard]] Result<void> replace(std::string_view cert_pem, std::string_view key_pem);
  std::string cert_pem() const;
  std::uint64_t generation() const;  // 0 until the first replace

  struct Pair;  // parsed certificate, chain and key (tls.cc)
  std::shared_ptr<const Pair> current() const;

 private:
  ServerCredentials() = default;
  mutable std::mutex mu_;
  std::shared_ptr<const Pair> current_;  // guarded by mu_
};

// `who` prefixes error messages ("pubsub server", "api", ...). With
// `credentials` (which must outlive the context), each handshake presents
// its current pair and `cert_pem`/`key_pem` are ignored.
[[nodiscard]] Result<void> configure_server_tls(boost::asio::ssl::context& tls, std::string_view cert_pem,
                                                std::string_view key_pem, std::string_view who,
                                                const std::shared_ptr<ServerCredentials>& credentials = nullptr);

}  // namespace horizon::net
