#pragma once
// The storage engine of the Writer: sequencing, group commit to the WAL,
// live chunk files, checkpoints, recovery and live reads.
//
// Every request is sequenced under one mutex (the sequencer decides order
// and offsets, no I/O under it), queued, and committed by the single WAL
// owner: all queued requests share one WAL write and one fdatasync, and each
// caller's callback runs only after the sync that covers it. Then the chunk
// bytes are kept in memory and become visible to readers, who never see
// uncommitted bytes and never take the sequencer's lock; the checkpoint
// writes them to the chunk files, unless the chunk is shipped first
// (docs/format/data-dir.md).
//
// Failure policy: a failed WAL write or fdatasync latches the engine into a
// failed state (writes refused with storage_failed, reads keep working); it
// is never retried. ENOSPC on the WAL write is the exception: the partial
// tail is cut off again, the queued requests fail with disk_full, and the
// engine keeps serving (retries succeed once space returns).
//
// Thread-safety: all public member functions are safe to call from any
// thread. Callbacks run on the commit thread (or inside step() in manual
// mode) and must not block.

#include "core/cursor.h"
#include "core/errc.h"
#include "core/timestamp.h"
#include "core/wire.h"
#include "wal/fs.h"
#include "writer/state.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

namespace horizon::writer {

// After a commit: `cursor` is the new end of a stream that `subscription`
// is subscribed to (published as `sub:<subscription> <cursor>`, SPEC §6).
struct Notification {
  StreamName subscription;
  Cursor cursor;
};

struct EngineOptions {
  std::string server = "?";                      // server hint in the cursors the engine writes
  std::uint64_t chunk_size = 8u << 20;           // rotation threshold
  std::uint64_t checkpoint_bytes = 64u << 20;    // checkpoint when the WAL segment passes this
  std::uint64_t max_batch_bytes = 32u << 20;     // cap on one group commit
  // The WAL segment is zero-filled this far ahead of its records (0: off).
  // A commit then overwrites blocks that are already allocated and synced,
  // so its fdatasync flushes the data alone, without a metadata update for
  // a new file size and extent (about 25 % less time per sync on ext4 here).
  std::uint64_t wal_reserve_bytes = 1u << 20;
  std::size_t max_open_files = 256;              // LRU of open chunk files
  bool background = true;                        // commit thread; false: the caller drives step()
  // Sync pacing (commit thread only). When the last group commit held two
  // or more requests -- appenders are concurrent -- the commit thread starts
  // the next WAL sync no sooner than `sync_pacing` times the recent sync
  // duration (a moving average) after the previous sync started; requests
  // arriving meanwhile join that group. Fewer, larger groups: less CPU per
  // append (each fdatasync and each thread hand-off costs), at most
  // (sync_pacing - 1) x the sync time of added latency (capped at
  // max_pacing_wait). Never applies to a lone appender (groups of one) or to
  // callers committing on their own thread. 0 turns it off; otherwise >= 1.
  double sync_pacing = 0;
  std::chrono::microseconds max_pacing_wait{5000};
  // A checkpoint keeps the newest segment file it deletes for the next
  // segment (allocated and written: commits only overwrite it).
  bool recycle_segments = true;
  std::function<Timestamp()> clock = [] { return Timestamp::now(); };
  // Called on the WAL owner after every group commit's fdatasync with its
  // duration in seconds (for metrics); must be cheap and must not block.
  std::function<void(double sync_seconds)> on_sync;
  // Called on the WAL owner after every commit that wrote to streams with
  // subscriptions, once the bytes are readable. Must not block.
  std::function<void(const std::vector<Notification>&)> on_notify;
  // Called on the WAL owner after a commit that sealed chunks (they are in
  // ship_queue() now), e.g. to wake the shipper: a chunk shipped before the
  // next checkpoint is never written to a local file. Must not block.
  std::function<void()> on_seal;
  // Called once per chunk whose local file fails its checksum (RELIABILITY
  // A6), on the reading thread, with the error: the chunk is quarantined
  // (reads and shipping fail) until restart. Must not block.
  std::function<void(const Error&)> on_damaged_chunk;
  // Called once, when the engine latches a failure (writes are refused
  // until restart), with the failure. Must be cheap and must not block.
  std::function<void(const Error&)> on_failure;
  // Called after every checkpoint with its duration in seconds (both
  // halves) and, if it failed, the error: disk_full is retried by the next
  // checkpoint, anything else has latched the engine. Must not block.
  std::function<void(double seconds, const Error* error)> on_checkpoint;
  // Tests: called when the second half of a checkpoint starts (on the
  // checkpoint thread with a commit thread).
  std::function<void()> on_checkpoint_finish;
};

struct AppendOutcome {
  Cursor offset;          // after the last line; or the current end when conflict is true
  bool conflict = false;  // the After precondition failed; nothing was written
};

struct RecoveryReport {
  bool fresh = false;                    // the data directory was new (bootstrapped)
  std::uint64_t commits_replayed = 0;
  std::uint64_t torn_tail_bytes = 0;     // cut off the last segment: a torn record and/or stale bytes of a recycled file
  std::uint64_t snapshot_commit = 0;     // last commit covered by the snapshot
};

// One sealed chunk that the store has not confirmed yet.
struct ShipJob {
  StreamName stream;
  std::uint64_t stream_id;
  std::uint64_t chunk_no;
  std::uint64_t size;
};

struct LiveRead {
  std::string bytes;  // whole raw lines, each ending with '\n'
  Cursor next;        // the cursor after the last returned line
  std::size_t lines = 0;
};

class Engine {
 public:
  // Recovers (or bootstraps "/" and "/_sub" in) the data directory behind
  // `fs`. The caller holds the directory lock (wal::DirLock) for the
  // engine's lifetime; `fs` must outlive the engine.
  [[nodiscard]] static Result<std::unique_ptr<Engine>> open(wal::Fs& fs, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  using AppendCallback = std::function<void(Result<AppendOutcome>)>;
  using DoneCallback = std::function<void(Result<void>)>;

  // Errors: stream_exists, parent_not_found, storage_failed, disk_full.
  void create_stream(const StreamName& name, DoneCallback done);
  // Errors: stream_not_found, storage_failed, disk_full; a failed After is
  // a success with conflict = true. An empty batch is a no-op.
  void append(wire::AppendRequest request, AppendCallback done);

  // For an event-loop caller such as the HTTP API: runs `submit` (one of the
  // asynchronous calls above) and then, if the WAL is free, commits the
  // queue on this thread -- no hand-off to the commit thread and back, two
  // thread wake-ups fewer per request. If another thread is committing, the
  // commit thread takes the request as usual. The caller's thread blocks
  // for one group commit (one fdatasync) at most.
  void submit_and_lead(const std::function<void()>& submit);
  // Requests in the last group commit: 1 means appends come one at a time
  // (a caller may then prefer submit_and_lead).
  std::size_t last_group_size() const { return last_group_size_.load(std::memory_order_relaxed); }
  // Idempotent. Errors: stream_not_found, subscription_not_found,
  // not_a_subscription, subscription_loop, storage_failed, disk_full.
  void subscribe(const StreamName& stream, const StreamName& subscription, DoneCallback done);
  void unsubscribe(const StreamName& stream, const StreamName& subscription, DoneCallback done);
  // Subscription activity (SPEC §7): appends to every subscription stream
  // one SubscriptionActivity line listing, for each of its subscribed
  // streams that changed since the last round, the newest cursor (each
  // stream once), and clears those streams from the durable dirty set in
  // the same commit. Nothing dirty: nothing is written.
  void activity_round(DoneCallback done);
  // Marks a sealed chunk as shipped (the store confirmed it); its bytes in
  // memory are dropped and its local file, if a checkpoint wrote one, is
  // removed after the commit (by the checkpoint thread if there is one).
  // Idempotent.
  void mark_shipped(const StreamName& stream, std::uint64_t chunk_no, DoneCallback done);

  // Blocking forms (they drive step() themselves in manual mode).
  [[nodiscard]] Result<void> create_stream_sync(const StreamName& name);
  [[nodiscard]] Result<AppendOutcome> append_sync(wire::AppendRequest request);
  [[nodiscard]] Result<void> subscribe_sync(const StreamName& stream, const StreamName& subscription);
  [[nodiscard]] Result<void> unsubscribe_sync(const StreamName& stream, const StreamName& subscription);
  [[nodiscard]] Result<void> mark_shipped_sync(const StreamName& stream, std::uint64_t chunk_no);
  [[nodiscard]] Result<void> activity_round_sync();

  // Up to `max_lines` committed raw lines of one chunk from `from` (never
  // crossing into the next chunk: follow the Rotated line). Errors:
  // stream_not_found, chunk_not_found (not held here: read the store),
  // invalid_cursor (beyond the end or not at a line start).
  [[nodiscard]] Result<LiveRead> read(const Cursor& from, std::size_t max_lines) const;
  // All committed bytes of a sealed chunk this Writer still holds (for the
  // shipper). Errors: stream_not_found, chunk_not_found (live or shipped).
  [[nodiscard]] Result<std::string> read_sealed_chunk(const StreamName& stream, std::uint64_t chunk) const;
  // RELIABILITY A6 scrub: checks every chunk this Writer holds the way a
  // read from its start would (check_file_part), so that a chunk file
  // damaged at rest is found and quarantined before anyone reads it.
  // `keep_going` is asked before each chunk with the report so far (false:
  // stop early; a caller may also pace the scrub there). Safe beside
  // commits, checkpoints, reads and shipping.
  struct ScrubReport {
    std::uint64_t chunks = 0;     // checked
    std::uint64_t bytes = 0;      // their committed bytes
    std::uint64_t damaged = 0;    // quarantined (reported through on_damaged_chunk)
    std::uint64_t unchecked = 0;  // no checksum (begun before a version-1 snapshot)
    std::uint64_t errors = 0;     // could not be read (e.g. an I/O error)
    std::optional<Error> first_error;
    bool stopped = false;
  };
  [[nodiscard]] ScrubReport scrub(const std::function<bool(const ScrubReport& so_far)>& keep_going) const;
  // The committed end of a stream.
  [[nodiscard]] Result<Cursor> end_of(const StreamName& stream) const;
  // Committed subscriptions of a stream.
  [[nodiscard]] Result<std::vector<StreamName>> subscriptions_of(const StreamName& stream) const;
  std::vector<StreamName> stream_names() const;
  std::vector<ShipJob> ship_queue() const;
  // The number of the last durable commit (docs/format/wal.md: commit
  // numbers increase by one over the data directory's life; after a
  // recovery, the last one replayed). Only grows while the engine runs.
  std::uint64_t last_commit() const;

  // Starts a new WAL segment, syncs the chunk files, writes an atomic
  // snapshot and drops the old segments; returns when all of it is done
  // (after waiting for a background checkpoint in flight). The checkpoints
  // that the WAL size triggers run their second half on the checkpoint
  // thread instead, while commits go on (with a commit thread).
  [[nodiscard]] Result<void> checkpoint();
  // Manual mode: commits one batch if any is queued; returns whether it did.
  bool step();
  // Drains the queue, checkpoints, stops the commit thread. Idempotent.
  [[nodiscard]] Result<void> close();

  bool failed() const { return failed_.load(); }
  std::optional<Error> failure() const;
  const RecoveryReport& recovery() const { return report_; }
  const std::string& server() const { return options_.server; }

  struct Stats {
    std::uint64_t commits = 0;      // group commits (= WAL fdatasyncs)
    std::uint64_t requests = 0;     // requests committed
    std::uint64_t lines = 0;        // application lines committed
    std::uint64_t wal_bytes = 0;
    std::uint64_t checkpoints = 0;
    std::uint64_t paced_commits = 0;  // group commits the commit thread delayed (sync pacing)
  };
  Stats stats() const;
  // Committed chunk bytes held in memory until a checkpoint writes them to
  // their chunk files (or they are shipped first).
  std::uint64_t chunk_memory_bytes() const;

 private:
  struct Pending;
  class FileCache;
  class Tails;
  class ChunkChecks;
  // Committed bytes [start, end) of a chunk that are held in memory (Tails),
  // for reading outside Tails' lock. The view lets go of its blocks under
  // that lock (`release_mu`): a commit grows a block in place only when no
  // view holds it, and the lock orders a view's reads before that growth.
  struct TailView {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    std::vector<std::shared_ptr<const std::string>> blocks;
    std::mutex* release_mu = nullptr;

    TailView(std::uint64_t s, std::uint64_t e, std::vector<std::shared_ptr<const std::string>> b, std::mutex* mu)
        : start(s), end(e), blocks(std::move(b)), release_mu(mu) {}
    TailView(TailView&& o) noexcept
        : start(o.start), end(o.end), blocks(std::move(o.blocks)), release_mu(std::exchange(o.release_mu, nullptr)) {}
    TailView& operator=(TailView&& o) noexcept {
      if (this != &o) {
        release();
        start = o.start;
        end = o.end;
        blocks = std::move(o.blocks);
        release_mu = std::exchange(o.release_mu, nullptr);
      }
      return *this;
    }
    TailView(const TailView&) = delete;
    TailView& operator=(const TailView&) = delete;
    ~TailView() { release(); }
    void release() noexcept {
      if (release_mu != nullptr && !blocks.empty()) {
        std::lock_guard lock(*release_mu);
        blocks.clear();
      }
      blocks.clear();
    }
  };

  Engine(wal::Fs& fs, EngineOptions options);
  Result<void> recover();
  Result<void> start_segment(std::uint64_t segment_no);
  Result<void> reserve_segment(wal::File& f, std::uint64_t end);
  // Commits the queue on this thread unless another thread holds the WAL
  // (then false). A simulated crash latches the engine and propagates.
  bool commit_if_free();
  Result<void> write_out(std::uint64_t stream_id, std::uint64_t chunk_no);  // checkpoint: memory -> file
  Result<std::string> read_chunk(std::uint64_t id, std::uint64_t chunk, std::uint64_t pos, std::size_t len) const;
  // RELIABILITY A6: before a read takes bytes of a chunk from its file
  // (from byte `first` on), the file's part -- [0, start of the bytes in
  // memory), or all `size` committed bytes -- continued by the bytes in
  // memory must match the chunk's committed CRC32C `crc`. Each file byte is
  // checked once (ChunkChecks); a mismatch quarantines the chunk.
  [[nodiscard]] Result<void> check_file_part(const std::pair<std::uint64_t, std::uint64_t>& key,
                                             const StreamName& stream, std::uint64_t size, std::uint32_t crc,
                                             const std::optional<TailView>& view, std::uint64_t first) const;
  // Quarantines a chunk whose local file is damaged: every read then gets
  // `e`, which is reported once (on_damaged_chunk). Returns `e`.
  Error quarantine(const std::pair<std::uint64_t, std::uint64_t>& key, Error e) const;
  // quarantine() with the error of a local file that failed its checksum.
  Error chunk_damaged(const std::pair<std::uint64_t, std::uint64_t>& key, const StreamName& stream, std::uint32_t got,
                      std::uint32_t committed) const;
  void enqueue(std::unique_ptr<Pending> p);
  void fail_now(std::unique_ptr<Pending> p, const Error& e);
  // Sequencer prologue (mu_ held by `lock`): false, after answering `p`
  // and unlocking, when the engine refuses writes.
  bool seq_accepting(std::unique_lock<std::mutex>& lock, std::unique_ptr<Pending>& p);
  // The pending state of `stream`, or nullptr after answering `p` with
  // stream_not_found and unlocking.
  const StreamState* seq_stream(std::unique_lock<std::mutex>& lock, std::unique_ptr<Pending>& p,
                                const StreamName& stream);
  void commit_loop();
  // Sync pacing: how long the commit thread waits before its next group
  // commit (zero: commit now). commit_mu_ held.
  std::chrono::nanoseconds pacing_wait_locked(std::chrono::steady_clock::time_point now) const;
  // Commits everything queued (up to max_batch_bytes). Returns false if the
  // queue was empty.
  bool commit_batch();
  bool commit_batch_locked();  // commit_mu_ held
  // The state a checkpoint writes, captured by the WAL owner.
  struct CheckpointJob {
    std::chrono::steady_clock::time_point started;
    std::uint64_t segment_no = 0;  // the new segment; older ones go once the snapshot is in place
    std::string snapshot;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> chunks;  // (stream id, chunk) to sync
  };
  Result<void> checkpoint_locked();  // commit_mu_ held; both halves on this thread
  Result<CheckpointJob> begin_checkpoint_locked();
  Result<void> finish_checkpoint(CheckpointJob& job);  // any thread; one at a time
  // Every checkpoint ends here, either half: latches a failure other than
  // lack of space (which the next checkpoint retries) and reports it
  // (on_checkpoint).
  void checkpoint_ended(std::chrono::steady_clock::time_point started, const Error* e);
  // After the second half: keeps a failed job's chunks for the next one,
  // then checkpoint_ended.
  void end_checkpoint(CheckpointJob& job, const Result<void>& r);
  void start_background_checkpoint_locked();
  void wait_for_background_checkpoint();
  void remove_chunk_files(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& chunks);
  void checkpoint_loop();
  void recycle_segment(std::uint64_t segment_no);
  void stop_checkpoint_thread();
  void latch(const Error& e);
  Cursor cursor(const StreamState& s, std::uint64_t chunk, std::uint64_t offset) const;
  // Sequencer helpers (mu_ held): append lines to the pending state and
  // rotate if the chunk passed the threshold.
  void seq_write(StreamState const& s, std::string bytes, std::vector<Op>& ops);
  Result<void> seq_apply(std::vector<Op>& ops, Op op);
  // Submits through `submit(callback)` and waits for the callback (driving
  // step() in manual mode).
  template <class T, class Submit>
  T run_sync(Submit&& submit);

  wal::Fs& fs_;
  const EngineOptions options_;
  RecoveryReport report_;
  std::unique_ptr<FileCache> files_;
  std::unique_ptr<Tails> tails_;  // committed chunk bytes not in their files yet
  std::unique_ptr<ChunkChecks> checks_;  // what the reads' checks of chunk files found

  // Sequencer: pending state and the queue.
  mutable std::mutex mu_;
  std::condition_variable queue_cv_;
  State pending_;                                  // GUARDED_BY(mu_)
  std::deque<std::unique_ptr<Pending>> queue_;     // GUARDED_BY(mu_)
  bool stopping_ = false;                          // GUARDED_BY(mu_)

  // Committed state, read by readers.
  mutable std::shared_mutex committed_mu_;
  State committed_;                                // GUARDED_BY(committed_mu_); written by the WAL owner

  // WAL owner (commit thread, or step() callers serialized by commit_mu_).
  std::mutex commit_mu_;
  std::unique_ptr<wal::File> segment_;
  std::uint64_t segment_no_ = 0;
  std::uint64_t segment_size_ = 0;
  std::uint64_t segment_reserved_ = 0;  // the segment file is zero-filled up to here
  std::atomic<std::size_t> last_group_size_{0};
  // Sync pacing state (commit_mu_ held): when the last sync started and a
  // moving average of sync durations in nanoseconds.
  std::chrono::steady_clock::time_point last_sync_start_{};
  double sync_avg_ns_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> touched_chunks_;  // since the last checkpoint
  std::string payload_buf_;  // the commit record's payload, reused
  std::string record_buf_;

  std::atomic<bool> failed_{false};
  mutable std::mutex failure_mu_;
  std::optional<Error> failure_;

  mutable std::mutex stats_mu_;
  Stats stats_;

  // Checkpoint thread: at most one checkpoint in flight.
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  std::optional<CheckpointJob> ckpt_job_;  // GUARDED_BY(ckpt_mu_)
  bool ckpt_busy_ = false;                 // GUARDED_BY(ckpt_mu_): a job is queued or running
  bool ckpt_stop_ = false;                 // GUARDED_BY(ckpt_mu_)
  bool ckpt_running_ = false;              // GUARDED_BY(ckpt_mu_): the thread takes removals
  std::uint64_t recycled_bytes_ = 0;       // GUARDED_BY(ckpt_mu_): kRecycledSegmentFile is ready, this big
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ckpt_carry_;  // GUARDED_BY(ckpt_mu_)
  // Files of shipped chunks, removed by the checkpoint thread: dropping an
  // 8 MiB file's pages takes milliseconds that no commit should wait for.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ckpt_remove_;  // GUARDED_BY(ckpt_mu_)
  std::thread ckpt_thread_;

  std::thread thread_;
  bool closed_ = false;
};

}  // namespace horizon::writer
