#pragma once
// Test peers for store_test: the real s3rver (npm) started through
// scripts/start-s3rver.sh, and a tiny scripted HTTP server on loopback for
// the fault cases s3rver cannot produce (503s, hangs, wrong ETags, short
// bodies).
//
// Thread-safety: FakeHttpServer serves on its own thread; its accessors may
// be called from the test thread. S3rver is used from one thread.

#include "core/errc.h"

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace horizon::store::test {

// A running s3rver on 127.0.0.1 with one bucket; stopped by the destructor.
class S3rver {
 public:
  static constexpr const char* kBucket = "horizon-test";
  // key/secret accepted by s3rver (it checks the key id, not the signature).
  static constexpr const char* kKeyId = "S3RVER";
  static constexpr const char* kSecret = "S3RVER";

  // Starts s3rver through the repository's script; fails (never skips) with
  // the script's message, which says to run `npm ci`, if node or s3rver is
  // missing.
  [[nodiscard]] static Result<std::unique_ptr<S3rver>> start();
  ~S3rver();

  int port() const { return port_; }
  // s3://S3RVER:S3RVER@us-east-1/horizon-test?endpoint=http://127.0.0.1:PORT
  std::string url() const;

 private:
  S3rver(int pid, int port, std::string dir) : pid_(pid), port_(port), dir_(std::move(dir)) {}
  int pid_;
  int port_;
  std::string dir_;
};

// The process-wide s3rver, started on first use (nullptr + message on failure).
S3rver* shared_s3rver(std::string* error);

// A free TCP port on 127.0.0.1 (bound and released; racy but fine here).
int free_port();

struct SeenRequest {
  std::string method;
  std::string target;                                        // path and query as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::size_t connection = 0;  // which accepted connection carried it (1-based)
  std::string header(std::string_view name) const;
};

struct FakeResponse {
  int status = 200;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  bool hang = false;                          // never answer (until the client gives up)
  bool close_after = false;                   // close the connection after answering
  std::optional<std::size_t> content_length;  // declare this instead of body.size()
};

// Serves HTTP/1.1 with keep-alive on 127.0.0.1; answers each request with
// `handler(request, index)` (index counts from 0).
class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const SeenRequest&, std::size_t index)>;
  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> requests() const;
  std::size_t connections() const;

 private:
  void run();
  // Serves one connection until it closes or the server stops.
  void serve(int fd, std::size_t connection);

  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;  // guarded by mu_
  std::size_t connections_ = 0;        // guarded by mu_
  std::thread thread_;
};

}  // namespace horizon::store::test
