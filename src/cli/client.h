#pragma once
// What a CLI command needs to talk to the Writer: configuration resolution
// (flag > environment > the local default data directory's client.env),
// discovery of the Writer's address and CA from the store, and HTTPS
// requests (libcurl, verified against that CA, TLS >= 1.2).
//
// Thread-safety: a Client is used by one thread.

#include "core/cursor.h"
#include "core/errc.h"

#include <memory>
#include <string>

namespace horizon::cli {

struct ClientFlags {
  std::string store;  // --store
  std::string token;  // --token
  std::string data;   // --data (where to look for client.env)
};

struct ClientConfig {
  std::string store_url;
  std::string token;  // secret: never printed
  std::string key;    // secret: never printed
  std::string api;    // "https://host:port"
  std::string pubsub;  // "host:port" of the pub/sub server (TLS)
  std::string ca_pem;
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
  // status is a result.
  [[nodiscard]] Result<HttpResult> post(const std::string& path, const std::string& json_body);
  const ClientConfig& config() const { return config_; }

 private:
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
