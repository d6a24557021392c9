#pragma once
// What a CLI command needs to talk to the Writer: configuration resolution
// (flag > environment > the local default data directory's client.env),
// discovery of the Writer's address and CA from the store, and HTTPS
// requests (libcurl, verified against that CA, TLS >= 1.2).
//
// A long-running client (the Pusher) follows the Writer: when a request
// cannot reach it (refused, timed out, or a certificate that does not verify
// any more), the store's discovery record is read again, and a Writer that
// restarted on other ports or after a CA rotation is found without a restart
// (WriterLocator).
//
// Thread-safety: a Client is used by one thread; a WriterLocator and a
// LocatorRefresher by any.

#include "core/cursor.h"
#include "core/errc.h"
#include "store/object_store.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace horizon::cli {

struct ClientFlags {
  std::string store;  // --store
  std::string token;  // --token
  std::string data;   // --data (where to look for client.env)
};

// Where the Writer is, from the store's discovery record
// (docs/format/discovery.md).
struct WriterAddress {
  std::string api;     // "https://host:port"
  std::string pubsub;  // "host:port" of the pub/sub server (TLS); empty when it is off
  std::string ca_pem;  // the CA certificates to trust (a PEM bundle)

  bool operator==(const WriterAddress&) const = default;
};

// Reads the discovery record. Errors: not_ready when the store has none yet,
// corruption when it does not parse (the field named), the store's errors.
[[nodiscard]] Result<WriterAddress> read_writer_address(store::ObjectStore& store);

// The Writer's current address, read again from the store when a client
// finds the one it used unreachable; at most once per `min_interval` (many
// failing requests cost one store read).
class WriterLocator {
 public:
  static constexpr std::chrono::milliseconds kDefaultInterval{2000};
  WriterLocator(std::shared_ptr<store::ObjectStore> store, WriterAddress first,
                std::chrono::milliseconds min_interval = kDefaultInterval);

  WriterAddress current() const;
  // After `failed` could not be reached: the address to try now, or nullopt
  // when the record names `failed` still (or cannot be read: the reason is
  // logged, once per reason, and the last good address kept).
  std::optional<WriterAddress> moved_from(const WriterAddress& failed);
  // The store the record is read from (the caller may cancel() it to stop).
  const std::shared_ptr<store::ObjectStore>& store() const { return store_; }
  std::uint64_t reads() const;  // discovery reads after the first

 private:
  const std::shared_ptr<store::ObjectStore> store_;
  const std::chrono::milliseconds min_interval_;
  std::mutex refresh_mu_;  // one store read at a time; held while reading
  mutable std::mutex mu_;  // guards the fields below
  WriterAddress current_;
  std::chrono::steady_clock::time_point last_read_;
  std::uint64_t reads_ = 0;
  std::string last_problem_;
};

// Reads the discovery record again on its own thread when poked: for
// callers that learn the Writer is gone where they must not block on a
// store read (a pub/sub client's connection callback). At most one read
// per the locator's interval, however often it is poked.
class LocatorRefresher {
 public:
  explicit LocatorRefresher(std::shared_ptr<WriterLocator> locator);
  ~LocatorRefresher();  // stops and joins its thread
  LocatorRefresher(const LocatorRefresher&) = delete;
  LocatorRefresher& operator=(const LocatorRefresher&) = delete;
  void poke();

 private:
  void run();
  const std::shared_ptr<WriterLocator> locator_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  bool stop_ = false;
  std::thread thread_;
};

struct ClientConfig {
  std::string store_url;
  std::string token;  // secret: never printed
  std::string key;    // secret: never printed
  std::string api;    // "https://host:port" (as first discovered)
  std::string pubsub;  // "host:port" of the pub/sub server (TLS)
  std::string ca_pem;
  // Follows the Writer (shared by every Client made from this config);
  // holds the store the discovery record came from.
  std::shared_ptr<WriterLocator> locator;
};

[[nodiscard]] Result<ClientConfig> resolve_client_config(const ClientFlags& flags);

struct HttpResult {
  long status = 0;
  std::string body;
};

class Client {
 public:
  explicit Client(ClientConfig config);
  ~Client();
  // POSTs JSON to the Writer API. A transport failure is an error; any HTTP
  // status is a result. When the Writer could not be reached at all (no
  // connection, or a certificate that does not verify: the request was not
  // sent) and the locator finds it elsewhere, the request goes there. A
  // request cut after it was sent is never repeated (an append could be
  // applied twice), not even by libcurl's own resend on a reused
  // connection: that failure is the caller's.
  [[nodiscard]] Result<HttpResult> post(const std::string& path, const std::string& json_body);
  const ClientConfig& config() const { return config_; }

 private:
  // One attempt at `at`; `unreached`: it failed before the request was sent.
  Result<HttpResult> post_to(const WriterAddress& at, const std::string& path, const std::string& json_body,
                             bool& unreached);

  ClientConfig config_;
  void* curl_;
};

// "<message> (HTTP <status> <code>)" from an error body, or the raw body.
std::string describe_error(const HttpResult& r);

// The Writer's liveread through `client`, with the errors a reader expects:
// chunk_not_found when the Writer does not hold the chunk, not_ready when
// it cannot be reached (or answers 5xx).
Result<std::string> live_read(Client& client, const Cursor& from, std::size_t max_lines);

// Where readers cache decrypted sealed chunks: $XDG_CACHE_HOME/event-horizon,
// else ~/.cache/event-horizon.
std::string reader_cache_dir();

}  // namespace horizon::cli
