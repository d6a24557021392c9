#pragma once
// The s3:// object store: AWS S3 or an S3-compatible server (SPEC §9),
// path-style requests signed with SigV4 (sigv4.h) over libcurl, with
// connection reuse, timeouts and bounded retries of transient failures.
//
// URL: s3://ACCESS_KEY_ID:SECRET@REGION/BUCKET[?endpoint=http://host:port]
// (credentials percent-encoded; without endpoint, https://s3.REGION.amazonaws.com).
//
// Retries inside the store: connection errors, timeouts, HTTP 5xx (503
// SlowDown included), 429 and 408 are retried up to `max_attempts` times
// with exponential backoff and full jitter; then the call fails with
// errc::not_ready and the caller (the shipper) retries at its own pace.
// cancel() cuts every call in progress (including a backoff wait) and fails
// the later ones, for shutdown.
//
// Thread-safety: safe to call concurrently; each call takes a pooled curl
// handle (kept-alive connection) for itself.

#include "store/object_store.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

namespace horizon::store {

struct S3Options {
  std::chrono::milliseconds connect_timeout{5'000};
  // The whole request, body included (CURLOPT_TIMEOUT).
  std::chrono::milliseconds request_timeout{120'000};
  // A transfer slower than 1 byte/s for this long is aborted (stalled).
  std::chrono::milliseconds stall_timeout{30'000};
  int max_attempts = 4;
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_cap{2'000};
  // Idle kept-alive connections kept for reuse.
  std::size_t max_idle_connections = 8;
};

// Opens an s3:// store; the URL is checked here (no request is made).
// Errors never contain the secret key.
[[nodiscard]] Result<std::unique_ptr<ObjectStore>> open_s3_store(std::string_view url, const S3Options& options = {});

}  // namespace horizon::store
