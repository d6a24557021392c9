#pragma once
// HTTP/1.1 server (TLS or plain) on Boost.Beast with C++20 coroutines:
// keep-alive, one coroutine per connection on one I/O thread (no thread per
// connection), limits checked before a body is read (headers 431, declared
// or actual body size 413), a header/idle timeout, a body timeout (checked
// every 100 ms per I/O thread, none while a handler works), a cap on
// connections (over it, new connections are closed at once), TLS >= 1.2
// only and no renegotiation. Malformed or ambiguous HTTP is rejected with
// one JSON error (400, 411, 413, 414, 431, 501, 505: http_request.h) and the
// connection is closed.
//
// Thread-safety: start/stop from one thread; handlers may be called
// concurrently from the I/O threads and may answer from any thread.

#include "core/errc.h"
#include "net/http_types.h"
#include "net/tls.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace horizon::net {

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 0;  // 0: pick a free port (see HttpServer::port)
  bool tls = true;
  std::string cert_pem;  // server certificate (and chain) for TLS
  std::string key_pem;
  // Instead of cert_pem/key_pem: a pair that can be replaced while the
  // server runs (renewal); new handshakes present the current one.
  std::shared_ptr<ServerCredentials> credentials;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::size_t max_target_bytes = 8 * 1024;  // 414 above (http_request.h)
  std::chrono::milliseconds header_timeout{10'000};  // also the keep-alive idle timeout
  std::chrono::milliseconds body_timeout{60'000};
  std::size_t max_connections = 1024;
  int threads = 2;
  std::string name = "http";  // for logs
  // Called on an I/O thread for every request refused before the handler
  // (malformed or ambiguous HTTP, a limit): for a metric. Optional.
  std::function<void(const Error&)> on_rejected;
};

class HttpServer {
 public:
  // Binds and starts serving on its own I/O threads.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Stops accepting, lets in-flight requests finish (up to `grace`), then
  // closes every connection (waiting up to 1 s for their sessions to end)
  // and joins the I/O threads. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  std::size_t connections() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace horizon::net
