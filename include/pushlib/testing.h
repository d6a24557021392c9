#pragma once
// FakePusher: a stand-in for the Writer and the Pusher in an application's
// unit tests. It keeps streams in memory, writes SubscriptionActivity lines
// to the application's subscription stream like the Writer does, and drives
// a Receiver exactly as a real Pusher would (SPEC §8): it asks for the
// subscription id, asks offsets it does not know, pushes batches with
// correct PtrAfter cursors, follows BehindCursors, and re-pushes after
// incorrect_base_offset. It can inject the faults a real deployment has
// (duplicate deliveries, replies lost after the application committed,
// Pusher restarts, stale offsets) so that a test can assert the
// application's effects happen exactly once, in order.
//
// Thread-safety: none; use one FakePusher from one thread.

#include "pushlib/pushlib.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pushlib {

struct FakePusherOptions {
  std::size_t batch_lines = 100;        // lines per push, at most
  double duplicate_probability = 0.0;   // a push is delivered twice in a row
  double lost_reply_probability = 0.0;  // a push is delivered, its reply lost; the push is sent again
  double restart_probability = 0.0;     // before a push, forget everything learned (a Pusher restart)
  double stale_probability = 0.0;       // push from an older position than the one learned
  std::uint64_t seed = 1;               // faults are pseudo-random from this seed (reproducible)
  std::size_t chunk_bytes = 0;          // rotate a stream's chunk once it passes this size (0: never)
  std::string server = "127.0.0.1";     // the server hint of the cursors
  std::size_t max_pushes = 1'000'000;   // run() fails if delivering needs more pushes
};

struct FakePusherStats {
  std::size_t pushes = 0;                 // requests handed to the Receiver (duplicates included)
  std::size_t duplicates = 0;             // extra deliveries injected
  std::size_t lost_replies = 0;           // replies dropped after delivery
  std::size_t restarts = 0;               // simulated Pusher restarts
  std::size_t stale_pushes = 0;           // pushes sent from an older position on purpose
  std::size_t incorrect_base_offset = 0;  // answers of that code (offset queries included)
  std::size_t server_errors = 0;          // HTTP 5xx answers (the push is retried)
};

class FakePusher {
 public:
  // `subscription_id` is the application's subscription stream (under
  // /_sub/); the fake creates it. `receiver` must outlive the fake.
  // Throws std::invalid_argument if `subscription_id` is not under /_sub/.
  FakePusher(Receiver& receiver, std::string subscription_id, FakePusherOptions options = {});
  ~FakePusher();
  FakePusher(const FakePusher&) = delete;
  FakePusher& operator=(const FakePusher&) = delete;

  // Appends regular lines to `stream`, contiguously in one chunk. The first
  // append creates the stream (a Created line naming the subscription) and
  // subscribes it. The stream is marked as changed for the next
  // SubscriptionActivity line. Returns the cursor after the last line.
  // Errors: invalid_stream_name, invalid_argument (a subscription stream),
  // invalid_line (a line that the Writer would reject).
  [[nodiscard]] Result<std::string> append(std::string_view stream, const std::vector<std::string>& lines);

  // Appends one SubscriptionActivity line to the subscription stream naming
  // the newest cursor of every stream changed since the last one (nothing if
  // none changed), like the Writer's activity round.
  void write_activity();

  // write_activity(), then pushes until the application has accepted every
  // line of every stream, including the subscription stream. Errors:
  // bad_json (the application answered 400 or a malformed reply),
  // invalid_argument (it answered a wrong subscription id, or an
  // AcceptedOffset that is not a line boundary of the stream), internal
  // (no progress possible, too many consecutive 5xx, or max_pushes).
  [[nodiscard]] Result<void> run();

  // The cursor after the last line of `stream` ("" if the stream is unknown).
  std::string end_of(std::string_view stream) const;
  const FakePusherStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushlib
