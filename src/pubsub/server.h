#pragma once
// The pub/sub notification server (SPEC §6, protocol in README.md): TLS
// (>= 1.2) over TCP, one coroutine pair (reader, writer) per client on its
// own strand, token authentication, and lossy latest-value-per-topic
// delivery so that a publisher never waits for a client and a slow client
// costs at most one pending message per subscribed topic.
//
// Thread-safety: publish(), port(), stats() and clients() may be called from
// any thread at any time (also concurrently with stop()); start() and
// stop() from one owning thread.

#include "core/errc.h"
#include "net/tls.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::metrics {
class Registry;
}

namespace horizon::pubsub {

struct ServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 0;          // 0: any free port (see Server::port)
  std::string cert_pem;            // server certificate (and chain)
  std::string key_pem;             // its private key (never logged)
  // Instead of cert_pem/key_pem: a pair that can be replaced while the
  // server runs (renewal); new handshakes present the current one.
  std::shared_ptr<net::ServerCredentials> credentials;
  std::string token;               // clients must send `AUTH <token>`; 1+ bytes in 0x21-0x7E
  std::size_t max_clients = 1024;  // over it, new connections are closed at once
  // A connection that has not completed the TLS handshake and a correct
  // AUTH within this time is closed.
  std::chrono::milliseconds auth_timeout{10'000};
  int threads = 1;  // I/O threads
  // A client that SUBs more distinct topics than this is disconnected
  // (bounds the memory one authenticated client can pin).
  std::size_t max_topics_per_client = 65'536;
};

// Totals since start (counters) and the current state (gauges).
struct ServerStats {
  std::size_t clients = 0;              // open connections, authenticated or not
  std::size_t subscriptions = 0;        // (client, topic) pairs
  std::uint64_t published = 0;          // publish() calls and PUB commands
  std::uint64_t delivered = 0;          // NOTIFY lines written to clients
  std::uint64_t superseded = 0;         // pending messages replaced by a newer one for the same topic
  std::uint64_t invalid_published = 0;  // publishes to a subscribed topic dropped: message not valid on the wire
  // Connections closed by the server, by reason (see README.md):
  std::uint64_t rejected_limit = 0;       // over max_clients
  std::uint64_t rejected_tls = 0;         // TLS handshake failed (plain TCP, TLS < 1.2, garbage)
  std::uint64_t rejected_auth = 0;        // wrong token
  std::uint64_t rejected_protocol = 0;    // malformed/unknown command, command before AUTH, long line
  std::uint64_t rejected_timeout = 0;     // not authenticated within auth_timeout
  std::size_t pending = 0;                // pending messages summed over clients
  std::size_t max_client_pending = 0;     // the largest pending count of one client now
  std::size_t max_client_high_water = 0;  // the largest pending count one open client ever had
};

// One open connection (a test and diagnostics hook).
struct ClientInfo {
  std::string remote;  // "address:port"
  bool authenticated = false;
  std::size_t topics = 0;      // distinct topics subscribed
  std::size_t pending = 0;     // messages waiting for the writer (<= topics)
  std::size_t high_water = 0;  // the largest `pending` seen
  std::uint64_t delivered = 0;
  std::uint64_t superseded = 0;
};

class Server {
 public:
  // Validates the options (PEM, token, address), binds, and serves on its
  // own I/O threads. Errors: invalid_argument (bad PEM, empty or invalid
  // token, bad address), not_ready (cannot listen). With a `registry`
  // (which must outlive the server) it registers the horizon_pubsub_*
  // metrics of README.md.
  [[nodiscard]] static Result<std::unique_ptr<Server>> start(ServerOptions options, metrics::Registry* registry);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Queues `message` for every client subscribed to `topic`: per client,
  // the message replaces any pending one of the same topic. Never waits for
  // a client or for I/O; it takes short, bounded critical sections only
  // (O(subscribers of the topic)), and with no subscriber to the topic it
  // is a hash lookup. A topic that is not valid on the wire (protocol.h)
  // can have no subscriber, so publishing to it does nothing; a message
  // that is not valid on the wire is dropped and, if the topic has
  // subscribers, counted (stats().invalid_published). Any thread; a no-op
  // after stop(). The server must outlive every call.
  void publish(std::string_view topic, std::string_view message);

  std::uint16_t port() const;
  // Stops accepting, closes every connection (no BYE to clients: they see
  // the connection end and reconnect), and joins the I/O threads.
  // Idempotent.
  void stop();

  ServerStats stats() const;
  std::vector<ClientInfo> clients() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace horizon::pubsub
