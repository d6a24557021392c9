#pragma once
// A minimal blocking HTTP/1.1 client over libcurl for the s3:// store: one
// request at a time per call, easy handles pooled so that connections are
// kept alive and reused, timeouts on every request. It knows nothing about
// S3 or signing.
//
// Thread-safety: an HttpClient may be used from any number of threads; each
// perform() takes a handle from the pool (or makes one) for itself.

#include "core/errc.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace horizon::store::detail {

// libcurl's name for `curl_code` (a CURLcode) and, when `detail` (the
// CURLOPT_ERRORBUFFER) says more, that in parentheses: "SSL peer certificate
// or SSH remote key was not OK (SSL certificate problem: certificate has
// expired)". Neither names a header, so no token reaches the text.
std::string curl_failure_text(int curl_code, const char* detail);

struct HttpRequest {
  std::string method;                // GET, PUT, HEAD, DELETE
  std::string url;                   // absolute, already encoded
  std::vector<std::string> headers;  // "Name: value"
  std::string_view body;             // sent for PUT
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, values trimmed
  // The last value of header `name` (lowercase).
  std::optional<std::string> header(std::string_view name) const;
};

struct HttpTimeouts {
  std::chrono::milliseconds connect{5'000};
  std::chrono::milliseconds total{120'000};
  std::chrono::milliseconds stall{30'000};
};

class HttpClient {
 public:
  HttpClient(HttpTimeouts timeouts, std::size_t max_idle);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs the request. Transport failures are errors: errc::not_ready
  // for the transient ones (connect, resolve, timeout, reset, empty reply),
  // errc::corruption for a body shorter than its Content-Length, and
  // errc::storage_failed for the rest (bad URL, TLS verification).
  // Messages hold curl's description, never request headers.
  [[nodiscard]] Result<HttpResponse> perform(const HttpRequest& request);

  // How many connections curl opened so far (reuse check in tests).
  std::size_t connections_opened() const;

  // Transfers in progress stop at curl's next progress call (about once a
  // second while stalled) and later ones fail at once: errc::not_ready,
  // "... cancelled". For shutdown; cannot be undone.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  void* acquire();
  void release(void* handle);

  HttpTimeouts timeouts_;
  std::size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<void*> idle_;             // CURL* easy handles; guarded by mu_
  std::size_t connections_opened_ = 0;  // guarded by mu_
  std::atomic<bool> cancelled_{false};
};

}  // namespace horizon::store::detail
