#include "server/shipper.h"

#include "core/store_keys.h"
#include "core/thread_name.h"
#include "core/timestamp.h"
#include "server/discovery.h"
#include "wal/failpoint.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <random>

namespace horizon::server {

ShipperMetrics::ShipperMetrics(metrics::Registry& r)
    : shipped(r.counter("horizon_chunks_shipped_total", "Sealed chunks uploaded, verified and marked shipped")),
      failures(r.counter("horizon_ship_failures_total", "Failed attempts to ship a sealed chunk")),
      raw_bytes(r.counter("horizon_shipped_raw_bytes_total", "Raw bytes of shipped chunks")),
      stored_bytes(r.counter("horizon_shipped_stored_bytes_total", "Bytes stored for shipped chunks (compressed, "
                                                                   "encrypted)")) {}

Shipper::Shipper(writer::Engine& engine, store::ObjectStore& store, const codec::MasterKey& key, ShipperOptions options,
                 ShipperMetrics* metrics)
    : engine_(engine), store_(store), key_(key), options_(options), metrics_(metrics) {}

Shipper::~Shipper() { stop(); }

Result<void> Shipper::ship_one(const writer::ShipJob& job) {
  auto raw = engine_.read_sealed_chunk(job.stream, job.chunk_no);
  if (!raw) {
    if (raw.error().code == errc::chunk_not_found) return {};  // shipped meanwhile
    return raw.error();
  }
  const codec::ChunkId id{job.stream.str(), job.chunk_no};
  auto object = codec::encode_chunk(key_, id, *raw);
  if (!object) return object.error();
  const std::string key = chunk_key(job.stream, job.chunk_no);
  // A sealed chunk never changes, so the store holds it already only when
  // an upload of it was not marked (a crash in between): the same lines,
  // marked now without a second upload. Other lines under its key come
  // from another history of this data directory (a restored older backup,
  // a copy started elsewhere on the same store): overwriting them would
  // destroy acknowledged lines, so the chunk stays queued and the error
  // says why. An object that does not decode is no one's lines: a store
  // that kept a damaged body of an earlier upload, or a damaged read of it
  // (RELIABILITY B2); it is replaced (the read-back below checks the new
  // one).
  auto existing = store_.get(key);
  if (!existing) return existing.error();
  if (*existing) {
    auto theirs = codec::decode_chunk(key_, id, **existing);
    if (theirs && *theirs == *raw) return mark_shipped(job, raw->size(), (*existing)->size());
    if (theirs) {
      return Error::make(errc::conflict,
                         fmt::format("the store already holds {} with other lines ({} bytes, {} here): another "
                                     "history of this data directory shipped it (a restored older backup, or a copy "
                                     "started elsewhere on the same store); not overwritten",
                                     key, theirs->size(), raw->size()));
    }
    spdlog::warn("{} is in the store but does not decode ({}); uploading it again", key, theirs.error().message);
  }
  if (auto r = store_.put(key, *object); !r) return r.error();
  // Verify before the local copy may go: read back and decode.
  auto back = store_.get(key);
  if (!back) return back.error();
  if (!*back) return Error::make(errc::corruption, fmt::format("{} is missing right after its upload", key));
  auto decoded = codec::decode_chunk(key_, id, **back);
  if (!decoded) return Error::make(errc::corruption, fmt::format("{} does not read back: {}", key, decoded.error().message));
  if (*decoded != *raw) return Error::make(errc::corruption, fmt::format("{} reads back different bytes", key));
  if (auto r = failpoint::hit("ship.after_upload_before_mark"); !r) return r.error();
  return mark_shipped(job, raw->size(), object->size());
}

Result<void> Shipper::mark_shipped(const writer::ShipJob& job, std::size_t raw_bytes, std::size_t stored_bytes) {
  if (auto r = engine_.mark_shipped_sync(job.stream, job.chunk_no); !r) return r.error();
  if (metrics_ != nullptr) {
    metrics_->shipped.inc();
    metrics_->raw_bytes.inc(raw_bytes);
    metrics_->stored_bytes.inc(stored_bytes);
  }
  return {};
}

Result<std::size_t> Shipper::ship_pending() {
  std::size_t n = 0;
  std::size_t failed_in_a_row = 0;
  std::optional<Error> first_failure;
  for (const auto& job : engine_.ship_queue()) {
    if (stopping_.load()) break;  // shutdown: the rest is shipped after the next start
    auto r = ship_one(job);
    if (r) {
      ++n;
      failed_in_a_row = 0;
      continue;
    }
    if (metrics_ != nullptr) metrics_->failures.inc();
    if (!first_failure) {
      first_failure = Error::make(r.error().code, fmt::format("shipping chunk {} of {}: {}", job.chunk_no,
                                                              job.stream.str(), r.error().message));
    }
    // The store is down or slow (not_ready, after its own retries), or
    // fails everything: stop here and back off. A chunk that fails on its
    // own (a damaged local file, an object the store refuses) must not hold
    // back the chunks queued after it.
    if (r.error().code == errc::not_ready || ++failed_in_a_row >= kFailuresPerPass) break;
  }
  // The mark follows the chunks: a pass that shipped some writes it, and
  // one that could not write it tries again after its next pass that had
  // no failure (not while the store is down: that would only add timeouts).
  if (n > 0) mark_pending_ = true;
  if (mark_pending_ && !options_.writer_id.empty() && (n > 0 || !first_failure)) {
    if (auto r = write_history_mark(); r) {
      mark_pending_ = false;
    } else if (!stopping_.load()) {
      spdlog::warn("cannot write the history mark {}: {} (written again after the next pass)", kHistoryKey,
                   r.error().message);
    }
  }
  if (first_failure) return *first_failure;
  return n;
}

Result<void> check_history_mark(store::ObjectStore& store, const std::string& writer_id, std::uint64_t recovered_commit,
                                const std::string& data_dir) {
  auto text = store.get(std::string(kHistoryKey));
  if (!text) return text.error();
  if (!*text) return {};
  auto mark = parse_history_mark(**text);
  if (!mark) {
    spdlog::warn("{} in store {}: {}; ignored (the next shipped chunk writes it again)", kHistoryKey, store.describe(),
                 mark.error().message);
    return {};
  }
  if (mark->writer_id != writer_id) {
    spdlog::warn("{} in store {} names Writer {}, not {}; ignored (the next shipped chunk writes it again)",
                 kHistoryKey, store.describe(), mark->writer_id, writer_id);
    return {};
  }
  if (mark->commit <= recovered_commit) return {};
  return Error::make(
      errc::conflict,
      fmt::format("data directory {} is older than its store: it recovered to WAL commit {}, but this Writer had "
                  "reached commit {} when it last shipped chunks ({}, {} in store {}). It is a restored older backup "
                  "or a copy of the data directory (or its disk lost writes it had confirmed): the appends "
                  "acknowledged after commit {} are not in it, and the "
                  "store may hold chunks of the newer history. Refusing to start. Start the newer data directory if "
                  "it still exists; to go on with this one anyway (docs/operations.md, \"Backups\"), remove {} "
                  "from the store",
                  data_dir, recovered_commit, mark->commit, mark->updated, kHistoryKey, store.describe(),
                  recovered_commit, kHistoryKey));
}

Result<void> Shipper::write_history_mark() {
  HistoryMark mark{options_.writer_id, engine_.last_commit(), Timestamp::now().to_string()};
  return store_.put(std::string(kHistoryKey), serialize_history_mark(mark));
}

void Shipper::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  thread_ = std::thread([this] {
    set_thread_name("eh-ship");
    loop();
    {
      std::lock_guard lock(mu_);
      running_ = false;
    }
    cv_.notify_all();
  });
}

void Shipper::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Shipper::stop(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (!cv_.wait_for(lock, grace, [this] { return !running_; })) {
      spdlog::warn("stopping: the chunk being shipped did not finish within {} ms; cancelling the store's calls "
                   "(it stays queued and ships after the next start)",
                   grace.count());
      store_.cancel();
    }
  }
  if (thread_.joinable()) thread_.join();
}

void Shipper::loop() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = options_.backoff_initial;
  for (;;) {
    std::chrono::milliseconds wait = options_.poll;
    if (!engine_.failed()) {
      auto r = ship_pending();
      if (r) {
        if (streak_.exchange(0) > 0) spdlog::info("shipping works again");
        backoff = options_.backoff_initial;
      } else if (stopping_.load()) {
        return;  // cut short by stop() (a cancelled store call): queued for the next start
      } else {
        const auto streak = ++streak_;
        // Full jitter: a random wait in [0, backoff], then double it (capped).
        wait = std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, backoff.count())(rng));
        backoff = std::min(backoff * 2, options_.backoff_max);
        if (streak == 1 || streak % 20 == 0) {
          spdlog::warn("shipping failed ({} in a row), retrying in {} ms: {}", streak, wait.count(), r.error().message);
        }
      }
    }
    std::unique_lock lock(mu_);
    // A wake-up cuts the poll short, never the back-off after a failure.
    const bool failing = streak_.load() > 0;
    if (cv_.wait_for(lock, wait, [this, failing] { return stopping_.load() || (woken_ && !failing); })) {
      if (stopping_.load()) return;
    }
    woken_ = false;
  }
}

}  // namespace horizon::server
