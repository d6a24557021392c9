#pragma once
// The Pusher (SPEC §8): a stateless process next to one application that
// delivers every stream of the application's subscription to its HTTP
// endpoint, in order, exactly once (together with pushlib's transactional
// offset check). It learns the subscription id and the application's
// positions from the application itself, reads with the reader (live from
// the Writer, sealed from the store), pushes batches of at most
// `batch_lines`, keeps every stream that is behind moving with at most
// `max_in_flight` pushes at a time, wakes at once on pub/sub hints and also
// re-reads the subscription stream every `poll` (pub/sub is only a hint).
// A failed push (error status, timeout, unexpected answer) is retried, for
// that stream only, with capped exponential backoff and full jitter.
//
// It never moves a stream's position except to an offset the application
// confirmed (AcceptedOffset, BehindCursors).
//
// Thread-safety: run() blocks the calling thread; wake()/stop() may be
// called from any thread.

#include "core/cursor.h"
#include "core/errc.h"
#include "reader/reader.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace horizon::pusher {

struct PusherOptions {
  std::string endpoint;  // the application's push URL
  std::size_t batch_lines = 1000;
  std::size_t max_in_flight = 5;
  std::chrono::milliseconds poll{2000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
  std::chrono::milliseconds app_timeout{30'000};
  // A reader per worker thread (a Reader is used by one thread at a time).
  std::function<std::unique_ptr<reader::Reader>()> make_reader;
  // Called once the subscription id is known (e.g. to SUB its pub/sub topic).
  std::function<void(const std::string& subscription)> on_subscription;
};

struct StreamProgress {
  std::string position;  // the application's confirmed position
  std::uint64_t pushed_lines = 0;
  std::uint64_t failures = 0;
};

class Pusher {
 public:
  explicit Pusher(PusherOptions options);
  ~Pusher();
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  // Runs until stop(). Returns an error only for a configuration problem.
  [[nodiscard]] Result<void> run();
  void stop();
  // A hint that `stream` has new lines (pub/sub NOTIFY).
  void wake(const StreamName& stream);
  std::map<std::string, StreamProgress> progress() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace horizon::pusher
