#pragma once
// pushlib: the application side of the push protocol (SPEC §8,
// docs/protocol/push.md). An application implements `Adapter` over its own
// database; `Receiver` runs the protocol over it; `Endpoint` serves the
// Receiver over HTTP on loopback; `PusherProcess` runs `horizon pusher` as a
// child of the application. `SqliteAdapter` (sqlite_adapter.h) is a ready
// adapter, and `FakePusher` (testing.h) drives a Receiver like a real Pusher
// so that an application can test its adapter without a Writer.
//
// Thread-safety: Receiver, Endpoint and PusherProcess may be used from any
// thread; a Receiver never calls its Adapter from two threads at once.
//
// Delivery is AT LEAST ONCE. A push may reach the application more than once
// (a lost reply, a retry after a timeout, a restarted Pusher). Effects happen
// EXACTLY ONCE only because the Receiver checks the push's FromOffset against
// the position the application stored, and stores the new position in the
// SAME database transaction as the application's effects. An adapter that
// writes its effects outside that transaction loses this guarantee.

#include "core/errc.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pushlib {

using horizon::errc;
using horizon::Error;
template <class T>
using Result = horizon::Result<T>;

// One pushed line, as the application sees it.
struct Line {
  std::string ptr_after;     // the cursor just after this line: "<stream>:<chunk>:<offset>[:<server>]"
  std::string content;       // a regular line's text; for a meta line, its JSON text
  std::string meta_type;     // "" for a regular line; "Created", "SubscriptionActivity", ... for a meta line
  std::string meta_payload;  // a meta line's JSON object (compact text); "" for a regular line

  bool is_meta() const { return !meta_type.empty(); }
};

// An open database transaction, created by an Adapter and handed back to it
// (get_offset, set_offset, handle_line). The Receiver never looks inside; an
// adapter derives its own type and casts back to it.
class Transaction {
 public:
  virtual ~Transaction() = default;

 protected:
  Transaction() = default;
  Transaction(const Transaction&) = default;
  Transaction& operator=(const Transaction&) = default;
};

// What an application implements. Every call of one push happens inside one
// run_in_transaction on the calling thread. An error from any call aborts the
// push: nothing of it may be committed, the Receiver answers HTTP 500 and the
// Pusher retries the same push later. Exceptions are treated like errors.
class Adapter {
 public:
  virtual ~Adapter() = default;

  // The application's subscription stream, e.g. "/_sub/billing" (a stream
  // under /_sub/). Must not change while a Receiver uses the adapter.
  virtual std::string subscription_id() const = 0;

  // Opens ONE database transaction, calls `fn` with it, and commits if `fn`
  // succeeds; rolls back if `fn` fails or throws, and returns fn's error (or
  // rethrows). Errors: whatever begin/commit report. A commit that fails may
  // be ambiguous (the data may or may not be durable): that is safe, the
  // Pusher retries and the FromOffset check decides.
  virtual Result<void> run_in_transaction(const std::function<Result<void>(Transaction&)>& fn) = 0;

  // The stored position of `stream` (the text given to set_offset), or
  // nullopt if the application has none. Errors: database errors.
  virtual Result<std::optional<std::string>> get_offset(Transaction& tx, std::string_view stream) = 0;

  // Stores `cursor` as the position of `stream` (insert or replace), in `tx`.
  // Errors: database errors.
  virtual Result<void> set_offset(Transaction& tx, std::string_view stream, std::string_view cursor) = 0;

  // Applies one line of `stream`, in `tx`. Called in stream order for every
  // accepted line, meta lines included (most applications ignore those).
  // Errors: anything; the whole push is rolled back and retried. A line that
  // can never be applied must be skipped (and logged) by the application,
  // or the stream stops there.
  virtual Result<void> handle_line(Transaction& tx, std::string_view stream, const Line& line) = 0;
};

// An HTTP answer: status and JSON body.
struct PushResult {
  int http_status = 200;
  std::string body;
};

// The protocol logic (SPEC §8) over an Adapter.
class Receiver {
 public:
  // `adapter` must outlive the Receiver.
  explicit Receiver(Adapter& adapter);
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Handles one push request body (what the Pusher POSTs) and returns the
  // answer to send. Never throws. Calls are serialized.
  //  200 incorrect_subscription_id: SubscriptionId is "_query_" or not the
  //      application's; nothing applied.
  //  200 incorrect_base_offset: FromOffset (an offset query "<s>:-1:-1"
  //      never matches) is not the stored position; AcceptedOffset is the
  //      stored one ("<s>:0:0:?" if none); nothing applied.
  //  200 success: the lines were applied in order and AcceptedOffset (the
  //      PtrAfter of the last applied line, or FromOffset's position if none
  //      was) stored, in one transaction. On the subscription stream the
  //      application stops before the first SubscriptionActivity line that
  //      names a stream it is behind on, and BehindCursors lists its own
  //      position for every such stream named in the push.
  //  400 {"error","message"}: malformed body (bad JSON, a SubscriptionId that
  //      is neither "_query_" nor under /_sub/, PtrAfter not strictly
  //      increasing from FromOffset or of another stream, a malformed
  //      SubscriptionActivity); nothing applied.
  //  500 {"error","message"}: the adapter failed (or its subscription_id()
  //      or a stored offset is invalid); nothing committed, the Pusher retries.
  PushResult handle(std::string_view request_body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct EndpointOptions {
  std::string address = "127.0.0.1";              // must be a loopback address (127.0.0.0/8, ::1, "localhost")
  std::uint16_t port = 8080;                      // 0: pick a free port (see Endpoint::port)
  std::string auth_token;                         // if set, requests need "?auth=<token>" (compared in constant time)
  std::size_t max_body_bytes = 64 * 1024 * 1024;  // larger pushes get 413
  int threads = 2;
};

// Serves a Receiver over plain HTTP: POST to any path (the Pusher uses
// /_eventhorizon_push). A missing or wrong auth token gets 401, another
// method 405; everything else is Receiver::handle's answer. Applications
// with their own HTTP server call Receiver::handle instead.
class Endpoint {
 public:
  // Binds and starts serving on its own threads. `receiver` must outlive the
  // Endpoint. Errors: invalid_argument (address not loopback), and whatever
  // binding reports (e.g. the port is in use).
  [[nodiscard]] static Result<std::unique_ptr<Endpoint>> start(Receiver& receiver, EndpointOptions options);
  ~Endpoint();  // stop()
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  std::uint16_t port() const;
  // "http://<address>:<port>/_eventhorizon_push[?auth=<token>]": what to give
  // the Pusher as --endpoint.
  std::string url() const;
  // Stops accepting, lets in-flight pushes finish, joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit Endpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct PusherProcessOptions {
  std::string endpoint_url;    // --endpoint (e.g. Endpoint::url()); required unless `command` is set
  std::string proxy;           // --proxy ADDR; omitted when empty
  std::string horizon_binary;  // empty: "horizon" next to this program, else "horizon" from PATH
  // If not empty, the whole command line (program, then arguments; the
  // program is looked up in PATH if it has no '/'), instead of
  // `horizon pusher --endpoint URL --stop-on-stdin-eof [--proxy ADDR]`.
  std::vector<std::string> command;
  std::chrono::milliseconds stop_timeout{10'000};  // how long stop() waits before SIGKILL
};

// Runs the Pusher as a child process (fork + exec). The child's stdin is a
// pipe whose write end only this object holds (close-on-exec), and the
// Pusher runs with --stop-on-stdin-eof: when the application exits, even by
// SIGKILL, the pipe closes and the Pusher stops. The child inherits the
// environment (STORE, HORIZON_TOKEN, ...), stdout and stderr.
class PusherProcess {
 public:
  // Errors: invalid_argument (no endpoint_url and no command), internal
  // (pipe/fork failed, or exec failed: the message has the reason).
  [[nodiscard]] static Result<std::unique_ptr<PusherProcess>> start(PusherProcessOptions options);
  ~PusherProcess();  // stop()
  PusherProcess(const PusherProcess&) = delete;
  PusherProcess& operator=(const PusherProcess&) = delete;

  int pid() const;
  // False once the child has exited (reaps it). Non-blocking.
  bool running();
  // Closes the child's stdin, waits up to stop_timeout for it to exit, then
  // SIGKILLs it and reaps it. Returns the wait status (see waitpid(2)).
  // Idempotent: later calls return the same status. Errors: internal
  // (waitpid failed).
  Result<int> stop();

 private:
  struct Impl;
  explicit PusherProcess(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushlib
