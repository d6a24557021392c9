#pragma once
// Test peers for store_test: the real s3rver (npm) and OpenStack Swift
// (Debian) started through scripts/start-s3rver.sh and
// scripts/start-swift.sh, a tiny scripted HTTP server on loopback for the
// fault cases they cannot produce (503s, hangs, wrong ETags, short bodies),
// and a relay that corrupts bytes on the way.
//
// Thread-safety: FakeHttpServer and CorruptingProxy serve on their own
// threads; their accessors may be called from the test thread. S3rver and
// Swift are used from one thread.

#include "core/errc.h"

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace horizon::store::test {

// A test peer started through a repository script
// (`scripts/NAME DIR PORT BUCKET OWNER_PID`, which prints a pid as its last
// line and stops everything when that pid gets SIGTERM or this process
// is gone); stopped by the destructor, which also removes DIR. A peer that
// someone else started (pid 0) is left alone.
class ScriptedServer {
 public:
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  virtual ~ScriptedServer();

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Where the server keeps its files.
  const std::string& dir() const { return dir_; }

 protected:
  struct Started {
    int pid;
    int port;
    std::string dir;
  };
  // Runs the script up to 3 times on fresh ports. `missing` is text of the
  // script's message when the server is not installed (retrying will not
  // help); the error carries the script's output.
  [[nodiscard]] static Result<Started> run_script(std::string_view script, std::string_view tag,
                                                  std::string_view bucket, std::string_view missing);
  explicit ScriptedServer(Started s) : pid_(s.pid), port_(s.port), dir_(std::move(s.dir)) {}

 private:
  int pid_;
  int port_;
  std::string dir_;
};

// A running s3rver on 127.0.0.1 with one bucket.
class S3rver : public ScriptedServer {
 public:
  static constexpr const char* kBucket = "horizon-test";
  // key/secret accepted by s3rver (it checks the key id, not the signature).
  static constexpr const char* kKeyId = "S3RVER";
  static constexpr const char* kSecret = "S3RVER";

  // Starts s3rver through scripts/start-s3rver.sh; fails (never skips) with
  // the script's message, which says to run `npm ci`, if node or s3rver is
  // missing.
  [[nodiscard]] static Result<std::unique_ptr<S3rver>> start();

  // s3://S3RVER:S3RVER@us-east-1/horizon-test?endpoint=http://127.0.0.1:PORT
  std::string url() const;

 private:
  using ScriptedServer::ScriptedServer;
};

// A running OpenStack Swift (proxy with s3api and tempauth, account,
// container and object servers; Debian 12 packages) on 127.0.0.1 with one
// bucket. Unlike s3rver it verifies SigV4 signatures and payload hashes.
class Swift : public ScriptedServer {
 public:
  static constexpr const char* kBucket = "horizon-test";
  // The tempauth user of scripts/start-swift.sh (account:user) and its key.
  static constexpr const char* kKeyId = "test:tester";
  static constexpr const char* kKeyIdInUrl = "test%3Atester";
  static constexpr const char* kSecret = "Sw1ft/s3cret+k3y";
  static constexpr const char* kSecretInUrl = "Sw1ft%2Fs3cret+k3y";

  // Starts Swift through scripts/start-swift.sh; fails (never skips) with
  // the script's message, which says to run scripts/install-deps.sh, if the
  // Swift packages are missing. With HORIZON_TEST_SWIFT=STATE (set by
  // ctest) it uses the Swift that scripts/swift-fixture.sh started for the
  // whole ctest run instead, and leaves it running.
  [[nodiscard]] static Result<std::unique_ptr<Swift>> start();

  // s3://test%3Atester:SECRET@us-east-1/horizon-test?endpoint=http://127.0.0.1:PORT
  std::string url() const { return url_with(kKeyIdInUrl, kSecretInUrl, kBucket); }
  // The same endpoint with other (URL-encoded) credentials or bucket.
  std::string url_with(std::string_view key_id_in_url, std::string_view secret_in_url, std::string_view bucket) const;
  // The object servers' device directory (object files live below it).
  std::string devices() const { return dir() + "/srv"; }

 private:
  using ScriptedServer::ScriptedServer;
};

// The process-wide servers, started on first use (nullptr + message on failure).
S3rver* shared_s3rver(std::string* error);
Swift* shared_swift(std::string* error);

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

// A TCP relay on 127.0.0.1 to a local server that replaces every
// occurrence of `needle` with `replacement` (same length) in both
// directions: a network that flips bytes. Each connection is relayed on its
// own thread until either side closes.
class CorruptingProxy {
 public:
  CorruptingProxy(int upstream_port, std::string needle, std::string replacement);
  ~CorruptingProxy();
  CorruptingProxy(const CorruptingProxy&) = delete;
  CorruptingProxy& operator=(const CorruptingProxy&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // How many replacements were made so far.
  std::size_t replacements() const { return replacements_.load(); }

 private:
  void run();
  void relay(int client);

  int upstream_port_;
  std::string needle_;
  std::string replacement_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<std::size_t> replacements_{0};
  std::mutex mu_;
  std::vector<std::thread> relays_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace horizon::store::test
