#pragma once
// The TLS server settings shared by every listener of the Writer (the HTTPS
// API and the pub/sub server): TLS >= 1.2, no renegotiation, ECDHE with
// AES-GCM or ChaCha20 for TLS 1.2, the given certificate chain and key
// (which must match).
//
// Thread-safety: call before the context is used by any connection.

#include "core/errc.h"

#include <boost/asio/ssl/context.hpp>

#include <string_view>

namespace horizon::net {

// `who` prefixes error messages ("pubsub server", "api", ...).
[[nodiscard]] Result<void> configure_server_tls(boost::asio::ssl::context& tls, std::string_view cert_pem,
                                                std::string_view key_pem, std::string_view who);

}  // namespace horizon::net
