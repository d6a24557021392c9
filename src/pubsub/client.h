#pragma once
// A pub/sub client (used by the Pusher and the CLI): keeps one TLS
// connection to the pub/sub server on its own I/O thread, authenticates,
// re-sends every SUB after each (re)connect, delivers NOTIFY lines to a
// callback, and reconnects after any failure with capped exponential
// backoff and full jitter. The server certificate must chain to `ca_pem`
// and match `host` (DNS name or IP address).
//
// Thread-safety: subscribe(), publish(), connected() and stats() may be
// called from any thread; close() and the destructor from any thread but
// the client's own (not from a callback). Callbacks run on the client's I/O
// thread, one at a time; they must not block for long.

#include "core/errc.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace horizon::pubsub {

// Where to connect: the server and the CA certificates its certificate must
// chain to.
struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::string ca_pem;
};

struct ClientOptions {
  std::string host;  // DNS name or IP address; the certificate must match it
  std::uint16_t port = 0;
  std::string ca_pem;  // the trusted CAs (the Writer's internal CA; a PEM bundle during a CA rotation)
  std::string token;   // never logged
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
  // Budget for resolve + TCP connect + TLS handshake of one attempt.
  std::chrono::milliseconds connect_timeout{10'000};
  // Optional: asked on the I/O thread before each reconnect (after the
  // backoff period of a failed attempt or lost connection) where to connect
  // now; nullopt or the same target keeps the current one. A Writer that
  // restarted on another port or after a CA rotation is followed this way
  // (the Pusher answers from its WriterLocator). Must not block.
  std::function<std::optional<Target>()> retarget;
};

struct ClientCallbacks {
  // A NOTIFY line: its topic and message.
  std::function<void(std::string topic, std::string message)> on_notify;
  // true after each successful (re)connect (TLS verified, AUTH and SUBs
  // sent); false after each failed attempt (TLS verification failures
  // included) and each lost connection, and once on close() if connected.
  std::function<void(bool connected)> on_state;
};

struct ClientStats {
  std::uint64_t attempts = 0;                       // connection attempts started
  std::uint64_t connects = 0;                       // successful ones
  std::uint64_t notifications = 0;                  // NOTIFY lines received
  std::uint64_t oks = 0;                            // OK lines received
  std::uint64_t published = 0;                      // PUB lines written
  std::uint64_t superseded = 0;                     // queued PUBs replaced by a newer one for the same topic
  std::uint64_t dropped = 0;                        // PUBs dropped: more than kMaxPendingTopics topics queued
  std::chrono::milliseconds max_backoff_period{0};  // the longest backoff period used so far
};

class Client {
 public:
  // Distinct topics with a PUB waiting to be sent, at most (see publish()).
  static constexpr std::size_t kMaxPendingTopics = 4096;

  // Starts the I/O thread, which connects at once. Errors: invalid_argument
  // for an empty host, port 0, a token that is not 1+ bytes in 0x21-0x7E,
  // non-positive backoff values, or a CA that does not parse.
  [[nodiscard]] static Result<std::unique_ptr<Client>> start(ClientOptions options, ClientCallbacks callbacks);
  ~Client();  // close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Adds `topic` to the subscriptions: SUB is sent now if connected and
  // after every reconnect. Subscribing twice is a no-op. Error:
  // invalid_argument for an invalid topic (protocol.h).
  [[nodiscard]] Result<void> subscribe(std::string_view topic);

  // Queues `PUB topic message`, sent as soon as connected. Lossy like the
  // server: a newer message for a topic replaces a queued one, and while
  // disconnected at most kMaxPendingTopics topics are kept (others are
  // dropped and counted). Error: invalid_argument for an invalid topic or
  // message.
  [[nodiscard]] Result<void> publish(std::string_view topic, std::string_view message);

  // If connected: sends the queued PUBs and BYE and waits (up to 2 s) for
  // the server to close; then stops the I/O thread. Idempotent.
  void close();

  bool connected() const;
  ClientStats stats() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace horizon::pubsub
