#pragma once
// The shipper: takes the engine's durable queue of sealed chunks, encodes
// each (zstd + AES-256-GCM, codec/), uploads it to the store, verifies it
// by reading it back and decoding it, marks it shipped durably (a WAL
// commit), and only then lets the engine free its local copy.
//
// Idempotent at every step: a crash before the mark finds the object in
// the store at the next start, with the same lines, and marks it without a
// second upload; a crash after the mark finds nothing left to do. An object
// under the chunk's key with other lines (another history of this data
// directory: a restored older backup, or a copy started elsewhere on the
// same store) is never overwritten: the chunk stays queued with a conflict
// error (RELIABILITY A2: no chunk shipped twice with different bytes). One
// that does not decode (a damaged body a faulty store kept) is uploaded
// again. After each pass that shipped chunks it writes the history mark
// (docs/format/history-mark.md), by which a later start recognises an
// older copy of the data directory. While the store is down it
// retries forever with capped exponential backoff and full jitter; appends
// are never affected (they only touch the local disk).
//
// Thread-safety: start/stop from one thread; ship_pending is for tests and
// must not run concurrently with the background loop.

#include "codec/chunk_codec.h"
#include "core/errc.h"
#include "metrics/metrics.h"
#include "store/object_store.h"
#include "writer/engine.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace horizon::server {

struct ShipperOptions {
  std::chrono::milliseconds poll{250};          // how often the queue is looked at when idle
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{60'000};
  // Not empty: after each pass that shipped chunks, the history mark
  // (discovery.h, kHistoryKey) is written with this Writer id and the
  // engine's last commit.
  std::string writer_id;
};

struct ShipperMetrics {
  explicit ShipperMetrics(metrics::Registry& registry);
  metrics::Counter& shipped;
  metrics::Counter& failures;
  metrics::Counter& raw_bytes;
  metrics::Counter& stored_bytes;
};

class Shipper {
 public:
  Shipper(writer::Engine& engine, store::ObjectStore& store, const codec::MasterKey& key, ShipperOptions options,
          ShipperMetrics* metrics);
  ~Shipper();  // stop()
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Ships everything queued now. A chunk that fails is skipped (it stays
  // queued) and the next ones are tried, so that one chunk that cannot ship
  // does not hold back the others; the pass stops at a not_ready failure
  // (the store is down: every other chunk would wait out the same
  // timeouts), after kFailuresPerPass failures in a row (the store refuses
  // everything), and after the chunk in flight once stop() was called (the
  // rest stays queued for the next start). Returns how many chunks were
  // shipped, or the first failure of the pass (the caller backs off).
  [[nodiscard]] Result<std::size_t> ship_pending();
  static constexpr std::size_t kFailuresPerPass = 3;
  void start();
  // Looks at the queue now instead of at the next poll (a chunk was sealed).
  void wake();
  // Waits for the chunk in flight, not for the backlog: up to `grace`, then
  // the store's calls are cancelled (ObjectStore::cancel, which cannot be
  // undone) and the chunk stays queued for the next start. Without the
  // cancel an s3:// upload to a stalled server could hold a SIGTERM for
  // minutes (stall timeout x attempts).
  void stop(std::chrono::milliseconds grace = kStopGrace);
  static constexpr std::chrono::milliseconds kStopGrace{5'000};
  // Consecutive failures so far (0 when the last attempt succeeded).
  std::uint64_t failure_streak() const { return streak_.load(); }

 private:
  Result<void> ship_one(const writer::ShipJob& job);
  // The chunk is in the store, verified: the engine may free it.
  Result<void> mark_shipped(const writer::ShipJob& job, std::size_t raw_bytes, std::size_t stored_bytes);
  void loop();
  Result<void> write_history_mark();

  writer::Engine& engine_;
  store::ObjectStore& store_;
  const codec::MasterKey& key_;
  const ShipperOptions options_;
  ShipperMetrics* metrics_;
  std::atomic<std::uint64_t> streak_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};  // written under mu_ (for cv_), read anywhere
  bool mark_pending_ = false;          // chunks shipped since the last history mark (ship_pending's thread)
  bool woken_ = false;                 // GUARDED_BY(mu_)
  bool running_ = false;               // GUARDED_BY(mu_): the loop thread has not returned yet
  std::thread thread_;
};

// At start, after the engine recovered to `recovered_commit`: refuses
// (errc::conflict, the message says what happened and what to do) when the
// store's history mark says this Writer had reached a later durable commit
// when it last shipped chunks: the data directory is an older copy (a
// restored backup, or a copy of it) than the history the store holds. A
// missing mark passes; a damaged one, or one of another Writer, is logged
// and passes (the next shipped chunk rewrites it). Store errors are
// returned as they are.
[[nodiscard]] Result<void> check_history_mark(store::ObjectStore& store, const std::string& writer_id,
                                              std::uint64_t recovered_commit, const std::string& data_dir);

}  // namespace horizon::server
