#include "writer/engine.h"
#include "core/thread_name.h"

#include "core/meta.h"
#include "core/raw_line.h"
#include "wal/coding.h"
#include "wal/crc32c.h"
#include "wal/failpoint.h"
#include "wal/mutant.h"
#include "wal/filename.h"
#include "wal/log.h"
#include "wal/record_format.h"

#include <fmt/format.h>
#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <list>
#include <map>
#include <set>

namespace horizon::writer {

using wal::File;
using wal::OpenMode;

// ---------------------------------------------------------------------------
// Open chunk files, LRU-bounded. Files are shared_ptrs so that a reader keeps
// its fd while the cache evicts or the shipper removes the file.
class Engine::FileCache {
 public:
  FileCache(wal::Fs& fs, std::size_t capacity) : fs_(fs), capacity_(std::max<std::size_t>(capacity, 2)) {}

  Result<std::shared_ptr<File>> get(std::uint64_t id, std::uint64_t chunk, bool create) {
    const Key key{id, chunk};
    std::lock_guard lock(mu_);
    if (auto it = map_.find(key); it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
    auto f = fs_.open(wal::chunk_path(id, chunk), create ? OpenMode::create : OpenMode::read_write);
    if (!f) return f.error();
    std::shared_ptr<File> file(std::move(*f));
    lru_.push_front(key);
    map_.emplace(key, std::make_pair(file, lru_.begin()));
    while (map_.size() > capacity_) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
    return file;
  }

  void drop(std::uint64_t id, std::uint64_t chunk) {
    std::lock_guard lock(mu_);
    if (auto it = map_.find(Key{id, chunk}); it != map_.end()) {
      lru_.erase(it->second.second);
      map_.erase(it);
    }
  }

  void clear() {
    std::lock_guard lock(mu_);
    map_.clear();
    lru_.clear();
  }

 private:
  using Key = std::pair<std::uint64_t, std::uint64_t>;
  wal::Fs& fs_;
  const std::size_t capacity_;
  std::mutex mu_;
  std::list<Key> lru_;
  std::map<Key, std::pair<std::shared_ptr<File>, std::list<Key>::iterator>> map_;
};

// Committed chunk bytes that are not in their chunk file yet. The WAL holds
// them durably; the checkpoint writes them out before it lets the WAL go, and
// a chunk shipped before that is never written locally at all (each line
// reaches the disk once, in the WAL, instead of twice). Per chunk: the file
// holds [0, start), the blocks hold [start, end), in order. A reader or the
// checkpoint copies the block pointers under the lock and reads outside it; a
// block changes (grows) only while nobody else holds it. At most about two
// checkpoints' worth of WAL bytes are held (more only while checkpoints fail
// for lack of space).
class Engine::Tails {
 public:
  using Key = std::pair<std::uint64_t, std::uint64_t>;
  using View = TailView;

  // Bytes at `offset` of a chunk; they continue the held ones (the first
  // ones of a chunk may start anywhere: the file holds what comes before).
  Result<void> append(const Key& key, std::uint64_t offset, std::string bytes) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = map_.try_emplace(key);
    Tail& t = it->second;
    if (fresh || t.blocks.empty()) {
      t.start = offset;
      t.end = offset;
    }
    if (offset != t.end) {
      return Error::make(errc::corruption, fmt::format("chunk {} of stream id {}: bytes at {} do not continue its end {}",
                                                       key.second, key.first, offset, t.end));
    }
    t.end += bytes.size();
    total_ += bytes.size();
    // Small commits (batches of a line or two) grow the last block in
    // place while nobody else holds it (a reader or the checkpoint copies
    // the pointer under this lock), instead of one block per commit.
    if (!t.blocks.empty() && t.blocks.back().use_count() == 1 &&
        t.blocks.back()->size() + bytes.size() <= kGrowBlock) {
      t.blocks.back()->append(bytes);
    } else {
      t.blocks.push_back(std::make_shared<std::string>(std::move(bytes)));
    }
    return {};
  }

  std::optional<View> view(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || it->second.blocks.empty()) return std::nullopt;
    return std::optional<View>(std::in_place, it->second.start, it->second.end,
                               std::vector<std::shared_ptr<const std::string>>(it->second.blocks.begin(),
                                                                               it->second.blocks.end()),
                               &mu_);
  }

  // The file now holds everything below `upto` (a block end): forget those blocks.
  void written(const Key& key, std::uint64_t upto) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return;
    Tail& t = it->second;
    while (!t.blocks.empty() && t.start + t.blocks.front()->size() <= upto) {
      t.start += t.blocks.front()->size();
      total_ -= t.blocks.front()->size();
      t.blocks.pop_front();
    }
    if (t.blocks.empty()) map_.erase(it);
  }

  void drop(const Key& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return;
    for (const auto& b : it->second.blocks) total_ -= b->size();
    map_.erase(it);
  }

  std::uint64_t bytes() const {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  static constexpr std::size_t kGrowBlock = 256 * 1024;
  struct Tail {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    std::deque<std::shared_ptr<std::string>> blocks;  // only append() changes one, and only if it is the sole owner
  };
  mutable std::mutex mu_;
  std::map<Key, Tail> map_;
  std::uint64_t total_ = 0;
};

// RELIABILITY A6 for reads: what the checks of chunk files found. Per
// chunk, the prefix of its file already checked against the chunk's
// committed CRC32C (with that prefix's CRC, so that the next check reads only
// the bytes a checkpoint wrote since), or the error of a file that failed: the
// chunk is quarantined, every read of it fails the same way until restart.
class Engine::ChunkChecks {
 public:
  using Key = std::pair<std::uint64_t, std::uint64_t>;
  struct Seen {
    std::uint64_t upto = 0;  // file bytes [0, upto) matched
    std::uint32_t crc = 0;   // CRC32C of those bytes
    std::optional<Error> damaged;
  };

  Seen get(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    return it == map_.end() ? Seen{} : it->second;
  }

  void checked(const Key& key, std::uint64_t upto, std::uint32_t crc) {
    std::lock_guard lock(mu_);
    Seen& s = map_[key];
    if (!s.damaged && upto > s.upto) {
      s.upto = upto;
      s.crc = crc;
    }
  }

  // Quarantines the chunk; true the first time (to report it once).
  bool damaged(const Key& key, const Error& e) {
    std::lock_guard lock(mu_);
    Seen& s = map_[key];
    if (s.damaged) return false;
    s.damaged = e;
    return true;
  }

  void drop(const Key& key) {
    std::lock_guard lock(mu_);
    map_.erase(key);
  }

 private:
  mutable std::mutex mu_;
  std::map<Key, Seen> map_;
};

// One sequenced request waiting for its group commit.
struct Engine::Pending {
  std::vector<Op> ops;
  std::size_t bytes = 0;
  std::size_t app_lines = 0;
  AppendCallback on_append;
  DoneCallback on_done;
  AppendOutcome outcome{Cursor::beginning(StreamName::root()), false};
  std::vector<std::pair<std::uint64_t, std::uint64_t>> remove_files;

  void complete(const Error* e) {
    if (on_append) {
      if (e != nullptr) {
        on_append(*e);
      } else {
        on_append(outcome);
      }
    } else if (on_done) {
      if (e != nullptr) {
        on_done(*e);
      } else {
        on_done(Result<void>());
      }
    }
  }
};

namespace {

constexpr std::uint64_t kCheckpointAfterReplay = 10'000;
constexpr std::size_t kRecycleHeaderBlock = 4096;  // zeroed at the start of a recycled segment file
constexpr std::size_t kWriteOutBatch = 1u << 20;   // chunk bytes per pwrite at a checkpoint
constexpr std::size_t kCheckRead = 1u << 20;       // chunk file bytes per pread when a read checks a file

// The committed size and checksum of a chunk of `s` that the Writer holds
// (its live chunk or a sealed one not shipped yet).
struct HeldChunk {
  std::uint64_t size = 0;
  std::optional<std::uint32_t> crc;
};
std::optional<HeldChunk> held_chunk(const StreamState& s, std::uint64_t chunk) {
  if (chunk == s.chunk_no) return HeldChunk{s.size, s.crc};
  auto it = s.sealed.find(chunk);
  if (it == s.sealed.end()) return std::nullopt;
  auto c = s.sealed_crc.find(chunk);
  return HeldChunk{it->second, c == s.sealed_crc.end() ? std::nullopt : std::optional<std::uint32_t>(c->second)};
}

Error engine_closed() { return Error::make(errc::not_ready, "the storage engine is shut down"); }

// Every directory fsync of the engine goes through here (harness mutant
// no_dir_fsync, wal/mutant.h).
Result<void> sync_dir(wal::Fs& fs, const std::string& dir) {
  if (mutant::active(mutant::Id::no_dir_fsync)) return {};
  return fs.sync_dir(dir);
}

std::size_t op_bytes(const Op& op) {
  if (const auto* w = std::get_if<OpChunkWrite>(&op)) return w->bytes.size() + 32;
  return 64;
}

Result<std::string> read_whole(wal::Fs& fs, const std::string& path) {
  auto f = fs.open(path, OpenMode::read_only);
  if (!f) return f.error();
  auto size = (*f)->size();
  if (!size) return size.error();
  return (*f)->pread(0, static_cast<std::size_t>(*size));
}

}  // namespace

Engine::Engine(wal::Fs& fs, EngineOptions options)
    : fs_(fs), options_(std::move(options)), files_(std::make_unique<FileCache>(fs, options_.max_open_files)),
      tails_(std::make_unique<Tails>()), checks_(std::make_unique<ChunkChecks>()) {}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  stop_checkpoint_thread();  // lets a checkpoint in flight finish (it only completes what is durable)
  std::deque<std::unique_ptr<Pending>> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(queue_);
  }
  const Error e = engine_closed();
  for (auto& p : rest) p->complete(&e);
}

Result<std::unique_ptr<Engine>> Engine::open(wal::Fs& fs, EngineOptions options) {
  std::unique_ptr<Engine> engine(new Engine(fs, std::move(options)));
  if (auto r = engine->recover(); !r) return r.error();
  if (engine->report_.fresh) {
    // Bootstrap: the root and the parent of all subscription streams.
    for (const char* name : {"/", "/_sub"}) {
      std::optional<Result<void>> result;
      engine->create_stream(StreamName::parse(name).value(), [&result](Result<void> r) { result = std::move(r); });
      engine->commit_batch();
      if (!result || !*result) {
        return result ? result->error() : Error::make(errc::internal, "bootstrap commit did not complete");
      }
    }
  }
  // After a long replay, checkpoint at once so that crash loops do not make
  // every restart longer (not fatal on a full disk: the WAL still has it all).
  if (engine->report_.commits_replayed >= kCheckpointAfterReplay) {
    if (auto r = engine->checkpoint(); !r && r.error().code != errc::disk_full) return r.error();
  }
  if (engine->options_.background) {
    engine->ckpt_running_ = true;  // no other thread yet
    engine->ckpt_thread_ = std::thread([e = engine.get()] {
      set_thread_name("eh-checkpoint");
      e->checkpoint_loop();
    });
    engine->thread_ = std::thread([e = engine.get()] {
      set_thread_name("eh-commit");
      // Sync pacing sleeps for tens of microseconds: the default 50 us timer
      // slack would double them.
      if (e->options_.sync_pacing > 0) (void)prctl(PR_SET_TIMERSLACK, 5000UL, 0UL, 0UL, 0UL);
      e->commit_loop();
    });
  }
  return engine;
}

// ---------------------------------------------------------------------------
// Recovery

namespace {
// A failed fsync/fdatasync is never retried as if nothing happened
// (fsyncgate): whatever errno it had, it becomes storage_failed and latches.
Error sync_failed(const Error& e) { return Error::make(errc::storage_failed, e.message); }
}  // namespace

Result<void> Engine::start_segment(std::uint64_t segment_no) {
  // A file of that number can only be the leftover of a failed attempt (no
  // commit ever goes to a segment before it becomes current): start over.
  const std::string path = wal::segment_path(segment_no);
  if (auto r = fs_.remove(path); !r) return r.error();
  std::uint64_t recycled = 0;  // bytes of a recycled file: allocated and written, stale beyond the header
  {
    std::lock_guard lock(ckpt_mu_);
    std::swap(recycled, recycled_bytes_);
  }
  if (recycled > 0) {
    if (auto r = fs_.rename(std::string(wal::kRecycledSegmentFile), path); !r) recycled = 0;
  }
  auto f = fs_.open(path, OpenMode::create);
  if (!f) return f.error();
  std::string payload(wal::kSegmentMagic, sizeof wal::kSegmentMagic);
  wal::put_u32(payload, wal::kFormatVersion);
  wal::put_u64(payload, segment_no);
  wal::put_u64(payload, committed_.last_commit_no + 1);
  const std::string header = wal::encode_record(wal::RecordType::segment_header, payload);
  const std::uint64_t current_reserved = segment_reserved_;  // of the segment that stays current on failure
  segment_reserved_ = recycled;
  Result<void> w = (*f)->pwrite(header, 0);
  if (w) w = reserve_segment(**f, header.size());
  if (!w) {
    segment_reserved_ = current_reserved;
    (void)fs_.remove(path);
    return w.error();
  }
  if (auto r = (*f)->sync(); !r) return sync_failed(r.error());
  if (auto r = failpoint::hit("wal.rotate.after_create_before_dirsync"); !r) return r.error();
  if (auto r = sync_dir(fs_, std::string(wal::kWalDir)); !r) return sync_failed(r.error());
  segment_ = std::move(*f);
  segment_no_ = segment_no;
  segment_size_ = header.size();
  return {};
}

// Writes the chunk's bytes held in memory to its file and syncs it; they
// are then dropped from memory. A chunk with nothing in memory is synced.
Result<void> Engine::write_out(std::uint64_t stream_id, std::uint64_t chunk_no) {
  const Tails::Key key{stream_id, chunk_no};
  auto view = tails_->view(key);
  auto f = files_->get(stream_id, chunk_no, view.has_value());
  if (!f) return f.error();
  if (view) {
    // Consecutive blocks go out in writes of up to 1 MiB.
    std::uint64_t at = view->start;
    std::string batch;
    auto flush = [&]() -> Result<void> {
      if (batch.empty()) return {};
      auto r = (*f)->pwrite(batch, at);
      at += batch.size();
      batch.clear();
      return r;
    };
    for (const auto& block : view->blocks) {
      if (batch.size() + block->size() > kWriteOutBatch) {
        if (auto r = flush(); !r) return r;
      }
      if (block->size() >= kWriteOutBatch) {
        if (auto r = (*f)->pwrite(*block, at); !r) return r;
        at += block->size();
        continue;
      }
      batch += *block;
    }
    if (auto r = flush(); !r) return r;
    if (auto r = failpoint::hit("chunk.after_write"); !r) return r;
  }
  if (auto r = (*f)->sync(); !r) return sync_failed(r.error());
  if (view) tails_->written(key, view->end);
  return {};
}

// Keeps the segment file zero-filled well past `end` (the end of the record
// about to be written), in steps of wal_reserve_bytes, so that most commits
// overwrite blocks an earlier fdatasync already allocated. The zeros go to
// the page cache here and become durable with the next sync; a crash before
// that leaves a shorter file or a partly zero tail, both a clean end.
Result<void> Engine::reserve_segment(wal::File& f, std::uint64_t end) {
  const std::uint64_t step = options_.wal_reserve_bytes;
  if (step == 0 || end + step / 4 <= segment_reserved_) return {};
  const std::uint64_t from = std::max(segment_reserved_, end);
  const std::uint64_t to = end + step;
  if (auto r = f.pwrite(std::string(to - from, '\0'), from); !r) {
    // Out of space, but the record still fits into what was reserved
    // earlier: write it (the partial zeros are harmless).
    if (r.error().code == errc::disk_full && end <= segment_reserved_) return {};
    return r;
  }
  segment_reserved_ = to;
  return {};
}

Result<void> Engine::recover() {
  auto refuse = [](const Error& e) {
    return Error::make(e.code, "recovery: " + e.message + " -- refusing to start");
  };
  for (auto dir : {wal::kWalDir, wal::kChunkDir}) {
    if (auto r = fs_.mkdirs(std::string(dir)); !r) return r.error();
  }
  // The directories themselves are durable only once the root is synced.
  if (auto r = sync_dir(fs_, ""); !r) return r.error();
  if (auto r = fs_.remove(std::string(wal::kSnapshotTempFile)); !r) return r.error();
  if (auto r = fs_.remove(std::string(wal::kRecycledSegmentFile)); !r) return r.error();  // maybe half-made

  State st;
  std::uint64_t replay_from = 1;
  auto has_snapshot = fs_.exists(std::string(wal::kSnapshotFile));
  if (!has_snapshot) return has_snapshot.error();
  if (*has_snapshot) {
    auto data = read_whole(fs_, std::string(wal::kSnapshotFile));
    if (!data) return data.error();
    auto snap = State::decode_snapshot(*data);
    if (!snap) return refuse(snap.error());
    st = std::move(snap->state);
    replay_from = snap->replay_from_segment;
    report_.snapshot_commit = st.last_commit_no;
  }

  auto names = fs_.list(std::string(wal::kWalDir));
  if (!names) return names.error();
  std::vector<std::uint64_t> segments;
  for (const auto& n : *names) {
    if (auto no = wal::parse_segment_name(n)) segments.push_back(*no);
  }
  std::sort(segments.begin(), segments.end());
  std::erase_if(segments, [&](std::uint64_t s) { return s < replay_from; });

  if (!*has_snapshot && segments.empty()) {
    auto chunks = fs_.list(std::string(wal::kChunkDir));
    if (!chunks) return chunks.error();
    if (!chunks->empty()) {
      return refuse(Error::make(errc::corruption, "chunk files exist but there is neither a snapshot nor a WAL"));
    }
    report_.fresh = true;
    committed_ = st;
    pending_ = st;
    return start_segment(1);
  }
  if (segments.empty() || segments.front() != replay_from) {
    return refuse(Error::make(errc::corruption,
                              fmt::format("WAL segment {} is missing (the snapshot says replay starts there)",
                                          wal::segment_path(replay_from))));
  }
  for (std::size_t i = 1; i < segments.size(); ++i) {
    if (segments[i] != segments[i - 1] + 1) {
      return refuse(Error::make(errc::corruption,
                                fmt::format("WAL segment {} is missing", wal::segment_path(segments[i - 1] + 1))));
    }
  }

  for (std::size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    const std::string path = wal::segment_path(segments[i]);
    auto data = read_whole(fs_, path);
    if (!data) return data.error();
    auto scan = wal::scan_segment(*data, path, st.last_commit_no);
    if (!scan) return refuse(scan.error());
    bool header_ok = false;
    for (const auto& rec : scan->records) {
      if (rec.type == wal::RecordType::segment_header) {
        wal::Decoder d(rec.payload, path + " header");
        std::uint32_t version = 0;
        std::uint64_t no = 0, first = 0;
        const bool magic = rec.payload.substr(0, 8) == std::string_view(wal::kSegmentMagic, 8);
        wal::Decoder dd(rec.payload.substr(std::min<std::size_t>(8, rec.payload.size())), path + " header");
        if (!magic || !dd.u32(version) || !dd.u64(no) || !dd.u64(first) || no != segments[i] ||
            version != wal::kFormatVersion || rec.offset != 0) {
          return refuse(Error::make(errc::corruption, fmt::format("{}: bad segment header", path)));
        }
        // The segments before it end exactly where it starts (the first one
        // replayed may start inside the snapshot): a commit lost at the end
        // of a segment is a gap here.
        if (i == 0 ? first > st.last_commit_no + 1 : first != st.last_commit_no + 1) {
          return refuse(Error::make(errc::corruption,
                                    fmt::format("{} starts at commit {} but the log before it ends at commit {} "
                                                "(missing commits)",
                                                path, first, st.last_commit_no)));
        }
        header_ok = true;
        continue;
      }
      if (rec.type != wal::RecordType::commit) continue;  // safe-to-ignore types
      if (!header_ok) return refuse(Error::make(errc::corruption, fmt::format("{}: no segment header", path)));
      wal::Decoder d(rec.payload, path);
      std::uint64_t commit_no = 0;
      if (!d.u64(commit_no)) return refuse(d.error());
      if (commit_no <= report_.snapshot_commit && report_.commits_replayed == 0) continue;  // in the snapshot
      if (commit_no != st.last_commit_no + 1) {
        return refuse(Error::make(errc::corruption, fmt::format("{} byte {}: commit {} follows commit {} (missing "
                                                                "commits)",
                                                                path, rec.offset, commit_no, st.last_commit_no)));
      }
      auto ops = decode_ops(rec.payload.substr(8), fmt::format("{} commit {}", path, commit_no));
      if (!ops) return refuse(ops.error());
      for (const auto& op : *ops) {
        if (auto r = st.apply(op, State::Checksums::keep); !r) {
          return refuse(Error::make(errc::corruption, fmt::format("{} commit {}: {}", path, commit_no,
                                                                  r.error().message)));
        }
        if (const auto* w = std::get_if<OpChunkWrite>(&op)) {
          if (auto r = tails_->append({w->stream_id, w->chunk_no}, w->offset, w->bytes); !r) {
            return refuse(Error::make(errc::corruption, fmt::format("{} commit {}: {}", path, commit_no,
                                                                    r.error().message)));
          }
        } else if (const auto* sh = std::get_if<OpShipped>(&op)) {
          tails_->drop({sh->stream_id, sh->chunk_no});
        }
      }
      st.last_commit_no = commit_no;
      ++report_.commits_replayed;
    }
    if (last) {
      auto f = fs_.open(path, OpenMode::read_write);
      if (!f) return f.error();
      if (scan->damaged_bytes > 0) {
        report_.torn_tail_bytes = scan->damaged_bytes;
        if (auto r = (*f)->truncate(scan->valid_end); !r) return r.error();
        if (auto r = (*f)->sync(); !r) return r.error();
      }
      segment_ = std::move(*f);
      segment_no_ = segments[i];
      segment_size_ = scan->valid_end;
      segment_reserved_ = scan->valid_end + scan->zero_bytes;
      if (!header_ok) {
        // The crash hit while the segment was being started: write its header again.
        std::string payload(wal::kSegmentMagic, sizeof wal::kSegmentMagic);
        wal::put_u32(payload, wal::kFormatVersion);
        wal::put_u64(payload, segments[i]);
        wal::put_u64(payload, st.last_commit_no + 1);
        const std::string header = wal::encode_record(wal::RecordType::segment_header, payload);
        if (auto r = segment_->truncate(0); !r) return r.error();
        segment_reserved_ = 0;
        if (auto r = segment_->pwrite(header, 0); !r) return r.error();
        if (auto r = segment_->sync(); !r) return r.error();
        segment_size_ = header.size();
      }
    }
  }

  // Chunk files: every held chunk must have at least its committed bytes
  // (shorter means synced data was lost), except those the WAL replay just
  // put back into memory: the file must reach where they start, and is cut
  // there (anything beyond was never synced; the checkpoint writes it
  // again). Files no longer held are removed.
  std::set<std::pair<std::uint64_t, std::uint64_t>> held;
  for (const auto& [id, s] : st.streams()) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> chunks(s.sealed.begin(), s.sealed.end());
    chunks.emplace_back(s.chunk_no, s.size);
    for (auto [chunk, size] : chunks) {
      held.emplace(id, chunk);
      touched_chunks_.emplace_back(id, chunk);
      if (auto view = tails_->view({id, chunk})) {
        if (view->end != size) {
          return refuse(Error::make(errc::corruption,
                                    fmt::format("chunk {} of stream {}: the WAL holds bytes up to {} but {} were "
                                                "committed",
                                                chunk, s.name.str(), view->end, size)));
        }
        size = view->start;
        if (size == 0) {  // everything is in memory; a file, if any, is cut to nothing
          auto f = files_->get(id, chunk, false);
          if (f) {
            if (auto r = (*f)->truncate(0); !r) return r.error();
          } else if (f.error().code != errc::chunk_not_found) {
            return f.error();
          }
          continue;
        }
      }
      auto f = files_->get(id, chunk, size == 0);
      if (!f) {
        return refuse(Error::make(errc::corruption, fmt::format("chunk file {} of stream {} is missing: {}",
                                                                wal::chunk_path(id, chunk), s.name.str(),
                                                                f.error().message)));
      }
      auto have = (*f)->size();
      if (!have) return have.error();
      if (*have < size) {
        return refuse(Error::make(errc::corruption,
                                  fmt::format("chunk file {} of stream {} has {} bytes but {} were committed",
                                              wal::chunk_path(id, chunk), s.name.str(), *have, size)));
      }
      if (*have > size) {
        if (auto r = (*f)->truncate(size); !r) return r.error();
      }
    }
  }
  auto chunk_files = fs_.list(std::string(wal::kChunkDir));
  if (!chunk_files) return chunk_files.error();
  for (const auto& n : *chunk_files) {
    auto id = wal::parse_chunk_name(n);
    if (id && !held.contains({id->stream_id, id->chunk_no})) {
      if (auto r = fs_.remove(std::string(wal::kChunkDir) + "/" + n); !r) return r.error();
    }
  }
  committed_ = st;
  pending_ = std::move(st);
  return {};
}

// ---------------------------------------------------------------------------
// Sequencer

Cursor Engine::cursor(const StreamState& s, std::uint64_t chunk, std::uint64_t offset) const {
  return Cursor(s.name, static_cast<std::int64_t>(chunk), static_cast<std::int64_t>(offset), options_.server);
}

Result<void> Engine::seq_apply(std::vector<Op>& ops, Op op) {
  if (auto r = pending_.apply(op); !r) {
    return Error::make(errc::internal, "sequencer produced an inconsistent operation: " + r.error().message);
  }
  ops.push_back(std::move(op));
  return {};
}

void Engine::seq_write(const StreamState& s_in, std::string bytes, std::vector<Op>& ops) {
  const std::uint64_t id = s_in.id;
  const std::uint64_t chunk = s_in.chunk_no;
  (void)seq_apply(ops, OpChunkWrite{id, chunk, s_in.size, std::move(bytes)});
  const StreamState& s = *pending_.find(id);
  if (s.size < options_.chunk_size) return;
  const Timestamp ts = options_.clock();
  const std::uint64_t end_before = s.size;
  std::string rotated = encode_meta_line(RotatedMeta{cursor(s, chunk + 1, 0), ts});
  const std::uint64_t rotated_len = rotated.size();
  (void)seq_apply(ops, OpChunkWrite{id, chunk, end_before, std::move(rotated)});
  (void)seq_apply(ops, OpRotate{id, chunk, end_before + rotated_len, end_before});
  const StreamState& now = *pending_.find(id);
  (void)seq_apply(ops, OpChunkWrite{id, chunk + 1, 0, encode_meta_line(CreatedMeta{now.subscriptions, ts})});
}

void Engine::fail_now(std::unique_ptr<Pending> p, const Error& e) { p->complete(&e); }

bool Engine::seq_accepting(std::unique_lock<std::mutex>& lock, std::unique_ptr<Pending>& p) {
  auto f = failure();
  if (!f && !stopping_) return true;
  lock.unlock();
  fail_now(std::move(p), f ? *f : engine_closed());
  return false;
}

const StreamState* Engine::seq_stream(std::unique_lock<std::mutex>& lock, std::unique_ptr<Pending>& p,
                                      const StreamName& stream) {
  const StreamState* s = pending_.find(stream);
  if (s != nullptr) return s;
  lock.unlock();
  fail_now(std::move(p), Error::make(errc::stream_not_found, fmt::format("stream {} does not exist", stream.str())));
  return nullptr;
}

namespace {
// Set while a blocking call submits its request: that caller commits the
// queue itself when the WAL is free (no hand-off to the commit thread and
// back), and wakes the commit thread only if it cannot.
thread_local bool t_caller_commits = false;
}  // namespace

void Engine::submit_and_lead(const std::function<void()>& submit) {
  {
    t_caller_commits = true;
    struct Reset {
      ~Reset() { t_caller_commits = false; }
    } reset;
    submit();
  }
  (void)commit_if_free();
  bool more = false;
  {
    std::lock_guard lock(mu_);
    more = !queue_.empty();
  }
  if (more) queue_cv_.notify_one();
}

bool Engine::commit_if_free() {
  std::unique_lock owner(commit_mu_, std::try_to_lock);
  if (!owner.owns_lock()) return false;
  try {
    commit_batch_locked();
  } catch (const failpoint::SimulatedCrash& c) {
    latch(Error::make(errc::storage_failed, "simulated crash at " + c.where));
    throw;
  }
  return true;
}

void Engine::enqueue(std::unique_ptr<Pending> p) {
  for (const auto& op : p->ops) p->bytes += op_bytes(op);
  queue_.push_back(std::move(p));
  if (!t_caller_commits) queue_cv_.notify_one();
}

void Engine::create_stream(const StreamName& name, DoneCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_done = std::move(done);
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  if (pending_.find(name) != nullptr) {
    lock.unlock();
    return fail_now(std::move(p), Error::make(errc::stream_exists, fmt::format("stream {} exists already", name.str())));
  }
  if (!name.is_root() && pending_.find(name.parent()) == nullptr) {
    lock.unlock();
    return fail_now(std::move(p), Error::make(errc::parent_not_found,
                                              fmt::format("cannot create {}: parent stream {} does not exist",
                                                          name.str(), name.parent().str())));
  }
  const Timestamp ts = options_.clock();
  const std::uint64_t id = pending_.next_stream_id();
  (void)seq_apply(p->ops, OpCreateStream{id, name.str()});
  const StreamState& child = *pending_.find(id);
  const Cursor start = cursor(child, 0, 0);
  seq_write(child, encode_meta_line(CreatedMeta{{}, ts}), p->ops);
  if (!name.is_root()) {
    const StreamState& parent = *pending_.find(name.parent());
    seq_write(parent, encode_meta_line(ChildStreamCreatedMeta{name, start, ts}), p->ops);
  }
  enqueue(std::move(p));
}

void Engine::append(wire::AppendRequest request, AppendCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_append = std::move(done);
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  const StreamState* s = seq_stream(lock, p, request.stream);
  if (s == nullptr) return;
  const Cursor end = cursor(*s, s->chunk_no, s->size);
  if (request.after) {
    const Position want{static_cast<std::uint64_t>(request.after->chunk()),
                        static_cast<std::uint64_t>(request.after->offset())};
    if (!(want == s->end()) && !(s->rotation_alias && *s->rotation_alias == want)) {
      lock.unlock();
      p->outcome = AppendOutcome{end, true};
      return p->complete(nullptr);
    }
  }
  if (request.lines.empty()) {
    lock.unlock();
    p->outcome = AppendOutcome{end, false};
    return p->complete(nullptr);
  }
  std::size_t total = 0;
  for (const auto& l : request.lines) total += l.size() + 2;
  std::string bytes;
  bytes.reserve(total);
  for (const auto& l : request.lines) {
    bytes += ' ';
    bytes += l;
    bytes += '\n';
  }
  p->app_lines = request.lines.size();
  p->outcome = AppendOutcome{cursor(*s, s->chunk_no, s->size + total), false};
  seq_write(*s, std::move(bytes), p->ops);
  enqueue(std::move(p));
}

void Engine::subscribe(const StreamName& stream, const StreamName& subscription, DoneCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_done = std::move(done);
  if (!subscription.is_subscription()) {
    return fail_now(std::move(p), Error::make(errc::not_a_subscription,
                                              fmt::format("{} is not a stream under /_sub/", subscription.str())));
  }
  if (stream.is_subscription() || stream.str() == kSubscriptionsParent) {
    return fail_now(std::move(p), Error::make(errc::subscription_loop,
                                              fmt::format("{} is a subscription stream and cannot be subscribed "
                                                          "to anything",
                                                          stream.str())));
  }
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  const StreamState* s = seq_stream(lock, p, stream);
  if (s == nullptr) return;
  if (pending_.find(subscription) == nullptr) {
    lock.unlock();
    return fail_now(std::move(p), Error::make(errc::subscription_not_found,
                                              fmt::format("subscription stream {} does not exist",
                                                          subscription.str())));
  }
  // Already subscribed: nothing to write, but answer only after the sync
  // that covers the earlier subscribe (it may still be queued).
  if (!s->subscribed(subscription)) {
    const std::uint64_t id = s->id;
    (void)seq_apply(p->ops, OpSubscribe{id, subscription.str()});
    seq_write(*pending_.find(id), encode_meta_line(SubscribedMeta{subscription, options_.clock()}), p->ops);
  }
  enqueue(std::move(p));
}

void Engine::unsubscribe(const StreamName& stream, const StreamName& subscription, DoneCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_done = std::move(done);
  if (!subscription.is_subscription()) {
    return fail_now(std::move(p), Error::make(errc::not_a_subscription,
                                              fmt::format("{} is not a stream under /_sub/", subscription.str())));
  }
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  const StreamState* s = seq_stream(lock, p, stream);
  if (s == nullptr) return;
  if (s->subscribed(subscription)) {
    const std::uint64_t id = s->id;
    seq_write(*s, encode_meta_line(UnsubscribedMeta{subscription, options_.clock()}), p->ops);
    (void)seq_apply(p->ops, OpUnsubscribe{id, subscription.str()});
  }
  enqueue(std::move(p));
}

void Engine::mark_shipped(const StreamName& stream, std::uint64_t chunk_no, DoneCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_done = std::move(done);
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  const StreamState* s = seq_stream(lock, p, stream);
  if (s == nullptr) return;
  if (!s->sealed.contains(chunk_no)) {
    if (chunk_no >= s->chunk_no) {
      lock.unlock();
      return fail_now(std::move(p), Error::make(errc::chunk_not_found,
                                                fmt::format("chunk {} of {} is not sealed", chunk_no, stream.str())));
    }
  } else {
    (void)seq_apply(p->ops, OpShipped{s->id, chunk_no});
    p->remove_files.emplace_back(s->id, chunk_no);
  }
  enqueue(std::move(p));
}

void Engine::activity_round(DoneCallback done) {
  auto p = std::make_unique<Pending>();
  p->on_done = std::move(done);
  std::unique_lock lock(mu_);
  if (!seq_accepting(lock, p)) return;
  if (pending_.dirty().empty()) {
    lock.unlock();
    return p->complete(nullptr);
  }
  std::map<StreamName, std::vector<Cursor>> per_subscription;
  OpClearDirty clear;
  for (const auto& [id, pos] : pending_.dirty()) {
    clear.stream_ids.push_back(id);
    const StreamState* s = pending_.find(id);
    if (s == nullptr) continue;
    for (const auto& sub : s->subscriptions) per_subscription[sub].push_back(cursor(*s, pos.chunk, pos.offset));
  }
  const Timestamp ts = options_.clock();
  for (auto& [sub, cursors] : per_subscription) {
    const StreamState* target = pending_.find(sub);
    if (target == nullptr) continue;  // never the case today (subscribe checks); never fatal
    seq_write(*target, encode_meta_line(SubscriptionActivityMeta{std::move(cursors), ts}), p->ops);
  }
  (void)seq_apply(p->ops, std::move(clear));
  enqueue(std::move(p));
}

// ---------------------------------------------------------------------------
// Group commit (the WAL owner)

void Engine::latch(const Error& e) {
  std::optional<Error> first;
  {
    std::lock_guard lock(failure_mu_);
    if (!failure_) {
      failure_ = Error::make(errc::storage_failed, "storage failed, writes are refused until restart: " + e.message);
      first = failure_;
    }
    failed_.store(true);
  }
  if (first && options_.on_failure) options_.on_failure(*first);
}

std::optional<Error> Engine::failure() const {
  if (!failed_.load()) return std::nullopt;
  std::lock_guard lock(failure_mu_);
  return failure_;
}

bool Engine::commit_batch() {
  std::lock_guard owner(commit_mu_);
  return commit_batch_locked();
}

bool Engine::commit_batch_locked() {
  std::vector<std::unique_ptr<Pending>> batch;
  {
    std::lock_guard lock(mu_);
    std::size_t bytes = 0;
    while (!queue_.empty() && (batch.empty() || bytes + queue_.front()->bytes <= options_.max_batch_bytes)) {
      bytes += queue_.front()->bytes;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (batch.empty()) return false;
  auto fail_all = [&batch](const Error& e) {
    for (auto& p : batch) p->complete(&e);
  };
  if (auto f = failure()) {
    fail_all(*f);
    return true;
  }
  std::uint32_t op_count = 0;
  for (const auto& p : batch) op_count += static_cast<std::uint32_t>(p->ops.size());
  if (op_count == 0) {  // only idempotent no-ops: everything before them is already synced
    for (auto& p : batch) p->complete(nullptr);
    return true;
  }

  const std::uint64_t commit_no = committed_.last_commit_no + 1;
  // The payload buffer keeps its capacity from commit to commit (up to
  // 4 MiB; record_buf_ keeps its own): no allocations as it grows.
  std::string& payload = payload_buf_;
  payload.clear();
  wal::put_u64(payload, commit_no);
  wal::put_u32(payload, op_count);
  for (const auto& p : batch) {
    for (const auto& op : p->ops) encode_op(payload, op);
  }
  record_buf_.clear();
  wal::append_record(record_buf_, wal::RecordType::commit, payload);
  if (payload.capacity() > (4u << 20)) payload = std::string();

  // Out of space (a chunk file or the WAL cannot grow): forget the failed
  // requests and those sequenced on top of them, cut the WAL's partial tail
  // off again; the engine stays up. Chunk bytes written past the committed
  // ends are invisible and overwritten by the next commit.
  auto give_back = [&](const Error& cause) {
    segment_reserved_ = segment_size_;
    if (auto t = segment_->truncate(segment_size_); !t) {
      latch(t.error());
      fail_all(*failure());
      return true;
    }
    std::deque<std::unique_ptr<Pending>> rest;
    {
      std::lock_guard lock(mu_);
      pending_ = committed_;
      rest.swap(queue_);
    }
    const Error e = Error::make(errc::disk_full, "no space left on the Writer's disk: " + cause.message);
    fail_all(e);
    for (auto& p : rest) p->complete(&e);
    return true;
  };

  Result<void> wrote = reserve_segment(*segment_, segment_size_ + record_buf_.size());
  if (wrote) wrote = segment_->pwrite(record_buf_, segment_size_);
  if (!wrote) {
    if (wrote.error().code == errc::disk_full) return give_back(wrote.error());
    latch(wrote.error());
    fail_all(*failure());
    return true;
  }
  if (auto r = failpoint::hit("wal.after_write_before_sync"); !r) {
    latch(r.error());
    fail_all(*failure());
    return true;
  }
  const auto sync_started = std::chrono::steady_clock::now();
  Result<void> synced;
  if (!mutant::active(mutant::Id::ack_before_sync)) synced = segment_->sync();
  if (!synced && mutant::active(mutant::Id::retry_sync_after_eio)) synced = segment_->sync();
  if (!synced) {
    latch(synced.error());  // never retried: the kernel may have dropped the pages (fsyncgate)
    fail_all(*failure());
    return true;
  }
  const auto sync_ended = std::chrono::steady_clock::now();
  {
    const double ns = static_cast<double>(std::chrono::nanoseconds(sync_ended - sync_started).count());
    sync_avg_ns_ = sync_avg_ns_ == 0 ? ns : 0.875 * sync_avg_ns_ + 0.125 * ns;
    last_sync_start_ = sync_started;
  }
  if (options_.on_sync) options_.on_sync(std::chrono::duration<double>(sync_ended - sync_started).count());
  segment_size_ += record_buf_.size();
  if (auto r = failpoint::hit("wal.after_sync_before_ack"); !r) {
    latch(r.error());
    fail_all(*failure());
    return true;
  }

  bool sealed = false;  // the commit sealed chunks
  // Durable: make it visible. The chunk bytes go to memory first (the
  // checkpoint writes them to the chunk files), then the committed ends
  // move, so a reader never finds an end without its bytes. Consecutive
  // writes that continue each other in one chunk (a group of appends to one
  // stream) become one block.
  {
    const OpChunkWrite* run = nullptr;  // first write of the pending run
    std::string joined;
    auto flush_run = [&]() -> Result<void> {
      if (run == nullptr) return {};
      const Tails::Key key{run->stream_id, run->chunk_no};
      if (touched_chunks_.empty() || touched_chunks_.back() != key) touched_chunks_.push_back(key);
      auto r = tails_->append(key, run->offset, std::move(joined));
      run = nullptr;
      joined.clear();
      return r;
    };
    Result<void> r;
    for (const auto& p : batch) {
      for (const auto& op : p->ops) {
        const auto* w = std::get_if<OpChunkWrite>(&op);
        if (w == nullptr || !r) continue;
        if (run == nullptr || w->stream_id != run->stream_id || w->chunk_no != run->chunk_no ||
            w->offset != run->offset + joined.size()) {
          r = flush_run();
          run = w;
        }
        joined += w->bytes;
      }
    }
    if (r) r = flush_run();
    if (!r) latch(r.error());  // acknowledged below all the same: the WAL has it
  }
  std::vector<Notification> notes;
  {
    std::unique_lock lock(committed_mu_);
    std::vector<std::uint64_t> written;
    for (const auto& p : batch) {
      for (const auto& op : p->ops) {
        if (auto r = committed_.apply(op, State::Checksums::keep); !r) {
          latch(r.error());
          break;
        }
        if (const auto* w = std::get_if<OpChunkWrite>(&op)) written.push_back(w->stream_id);
        if (std::holds_alternative<OpRotate>(op)) sealed = true;
      }
    }
    committed_.last_commit_no = commit_no;
    if (options_.on_notify) {
      std::sort(written.begin(), written.end());
      written.erase(std::unique(written.begin(), written.end()), written.end());
      for (auto id : written) {
        const StreamState* s = committed_.find(id);
        if (s == nullptr) continue;
        for (const auto& sub : s->subscriptions) notes.push_back(Notification{sub, cursor(*s, s->chunk_no, s->size)});
      }
    }
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> shipped;
  for (const auto& p : batch) {
    for (const auto& [id, chunk] : p->remove_files) {
      files_->drop(id, chunk);
      tails_->drop({id, chunk});
      checks_->drop({id, chunk});
      shipped.emplace_back(id, chunk);
    }
  }
  if (!shipped.empty()) {
    bool queued = false;
    {
      std::lock_guard lock(ckpt_mu_);
      if (ckpt_running_) {
        ckpt_remove_.insert(ckpt_remove_.end(), shipped.begin(), shipped.end());
        queued = true;
      }
    }
    if (queued) {
      ckpt_cv_.notify_all();
    } else {
      remove_chunk_files(shipped);
    }
  }
  {
    std::lock_guard lock(stats_mu_);
    ++stats_.commits;
    stats_.requests += batch.size();
    last_group_size_.store(batch.size(), std::memory_order_relaxed);
    for (const auto& p : batch) stats_.lines += p->app_lines;
    stats_.wal_bytes += record_buf_.size();
  }
  // The data is durable: acknowledge (even if applying it latched the
  // engine; recovery replays it from the WAL).
  for (auto& p : batch) p->complete(nullptr);
  if (!notes.empty()) options_.on_notify(notes);
  if (options_.on_seal && sealed) options_.on_seal();

  if (segment_size_ >= options_.checkpoint_bytes && !failed()) {
    if (options_.background) {
      start_background_checkpoint_locked();
    } else {
      (void)checkpoint_locked();  // a failure is latched or retried by the next one
    }
  }
  return true;
}

bool Engine::step() { return commit_batch(); }

void Engine::commit_loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_ && queue_.empty()) return;
    }
    try {
      std::lock_guard owner(commit_mu_);
      const auto wait = pacing_wait_locked(std::chrono::steady_clock::now());
      if (wait.count() > 0) {
        std::this_thread::sleep_for(wait);
        std::lock_guard lock(stats_mu_);
        ++stats_.paced_commits;
      }
      commit_batch_locked();
    } catch (const failpoint::SimulatedCrash& c) {
      latch(Error::make(errc::storage_failed, "simulated crash at " + c.where));
      return;
    }
  }
}

std::chrono::nanoseconds Engine::pacing_wait_locked(std::chrono::steady_clock::time_point now) const {
  using std::chrono::nanoseconds;
  if (options_.sync_pacing <= 0 || last_group_size_.load(std::memory_order_relaxed) < 2) return nanoseconds(0);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return nanoseconds(0);
    std::uint64_t queued = 0;
    for (const auto& p : queue_) queued += p->bytes;
    if (queued >= options_.max_batch_bytes) return nanoseconds(0);  // the group is full already
  }
  const auto deadline = last_sync_start_ + nanoseconds(static_cast<std::int64_t>(options_.sync_pacing * sync_avg_ns_));
  if (deadline <= now) return nanoseconds(0);
  return std::min<nanoseconds>(deadline - now, options_.max_pacing_wait);
}

// ---------------------------------------------------------------------------
// Checkpoint

Result<void> Engine::checkpoint() {
  std::lock_guard owner(commit_mu_);
  if (auto f = failure()) return *f;
  // Out of space while creating files is not sticky: the old segment and
  // snapshot still describe everything, and the next checkpoint retries.
  // Any other failure has latched the engine (checkpoint_ended).
  return checkpoint_locked();
}

// A checkpoint has two halves. The WAL owner begins it: it starts a new
// segment (later commits go there) and encodes the committed state as the
// snapshot that will replay from that segment. The rest -- syncing the chunk
// files written since the last checkpoint, writing the snapshot, deleting
// the older segments -- needs no WAL owner and, with a commit thread, runs on
// the checkpoint thread while commits go on. Until the snapshot is renamed
// into place, recovery uses the old one and replays the old segments and the
// new one, so a crash at any point in between loses nothing.
Result<Engine::CheckpointJob> Engine::begin_checkpoint_locked() {
  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t old_segment = segment_no_;
  if (auto r = start_segment(old_segment + 1); !r) {
    const Error e = r.error();
    checkpoint_ended(started, &e);
    return e;
  }
  CheckpointJob job;
  job.started = started;
  job.segment_no = segment_no_;
  job.snapshot = committed_.encode_snapshot(segment_no_);
  job.chunks.swap(touched_chunks_);
  {
    std::lock_guard lock(ckpt_mu_);
    job.chunks.insert(job.chunks.end(), ckpt_carry_.begin(), ckpt_carry_.end());
    ckpt_carry_.clear();
  }
  return job;
}

Result<void> Engine::finish_checkpoint(CheckpointJob& job) {
  if (options_.on_checkpoint_finish) options_.on_checkpoint_finish();
  std::sort(job.chunks.begin(), job.chunks.end());
  job.chunks.erase(std::unique(job.chunks.begin(), job.chunks.end()), job.chunks.end());
  // Shipped meanwhile (its file may be gone): nothing to keep durable.
  auto gone = [this](std::uint64_t id, std::uint64_t chunk) {
    std::shared_lock lock(committed_mu_);
    const StreamState* s = committed_.find(id);
    return s == nullptr || (s->chunk_no != chunk && !s->sealed.contains(chunk));
  };
  for (const auto& [id, chunk] : job.chunks) {
    if (gone(id, chunk)) continue;
    if (auto r = write_out(id, chunk); !r) {
      if (r.error().code == errc::chunk_not_found && gone(id, chunk)) continue;
      return r.error();
    }
  }
  if (auto r = sync_dir(fs_, std::string(wal::kChunkDir)); !r) return sync_failed(r.error());
  if (auto r = failpoint::hit("checkpoint.after_chunk_sync"); !r) return r.error();

  const std::string tmp(wal::kSnapshotTempFile);
  {
    auto f = fs_.open(tmp, OpenMode::create);
    if (!f) return f.error();
    if (auto r = (*f)->truncate(0); !r) return r.error();
    if (auto r = (*f)->pwrite(job.snapshot, 0); !r) return r.error();
    if (!mutant::active(mutant::Id::rename_without_sync)) {
      if (auto r = (*f)->sync(); !r) return sync_failed(r.error());
    }
  }
  if (auto r = failpoint::hit("meta.after_tmp_write"); !r) return r.error();
  if (auto r = fs_.rename(tmp, std::string(wal::kSnapshotFile)); !r) return r.error();
  if (auto r = failpoint::hit("meta.after_rename_before_dirsync"); !r) return r.error();
  if (auto r = sync_dir(fs_, ""); !r) return sync_failed(r.error());

  if (auto r = failpoint::hit("checkpoint.before_segment_delete"); !r) return r.error();
  auto names = fs_.list(std::string(wal::kWalDir));
  if (!names) return names.error();
  std::optional<std::uint64_t> newest_old;
  for (const auto& n : *names) {
    auto no = wal::parse_segment_name(n);
    if (no && *no < job.segment_no && (!newest_old || *no > *newest_old)) newest_old = *no;
  }
  if (newest_old && options_.recycle_segments) recycle_segment(*newest_old);
  for (const auto& n : *names) {
    auto no = wal::parse_segment_name(n);
    if (no && *no < job.segment_no) {
      if (auto r = fs_.remove(std::string(wal::kWalDir) + "/" + n); !r) return r.error();
    }
  }
  if (auto r = sync_dir(fs_, std::string(wal::kWalDir)); !r) return sync_failed(r.error());
  std::lock_guard lock(stats_mu_);
  ++stats_.checkpoints;
  return {};
}

void Engine::checkpoint_ended(std::chrono::steady_clock::time_point started, const Error* e) {
  if (e != nullptr && e->code != errc::disk_full) latch(*e);
  if (options_.on_checkpoint) {
    options_.on_checkpoint(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), e);
  }
}

// A failed second half leaves the old snapshot and all segments in place;
// the next checkpoint syncs these chunks too.
void Engine::end_checkpoint(CheckpointJob& job, const Result<void>& r) {
  if (r) return checkpoint_ended(job.started, nullptr);
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_carry_.insert(ckpt_carry_.end(), job.chunks.begin(), job.chunks.end());
  }
  const Error e = r.error();
  checkpoint_ended(job.started, &e);
}

Result<void> Engine::checkpoint_locked() {
  wait_for_background_checkpoint();
  auto job = begin_checkpoint_locked();
  if (!job) return job.error();
  auto r = finish_checkpoint(*job);
  end_checkpoint(*job, r);
  return r;
}

void Engine::start_background_checkpoint_locked() {
  {
    std::lock_guard lock(ckpt_mu_);
    if (ckpt_busy_) return;  // the segment grows past the threshold until that one is done
  }
  auto job = begin_checkpoint_locked();
  if (!job) return;  // latched, or out of space for the new segment: the next commit retries
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_job_ = std::move(*job);
    ckpt_busy_ = true;
  }
  ckpt_cv_.notify_all();
}

void Engine::wait_for_background_checkpoint() {
  std::unique_lock lock(ckpt_mu_);
  ckpt_cv_.wait(lock, [this] { return !ckpt_busy_; });
}

// Keeps an old segment's file for the next segment instead of deleting it
// (checkpoint step 5): its blocks are allocated and written, so commits into
// it only overwrite, and each fdatasync writes the records alone -- no
// zeros reserved on the way, no block allocation. Its first block is zeroed
// (and synced) so that a crash between the rename to the next segment's
// name and that segment's header leaves a segment without a header, which
// recovery writes again; what follows is stale (older commits) and ends the
// log (docs/format/wal.md). Best effort: a failure only costs the speed-up.
void Engine::recycle_segment(std::uint64_t segment_no) {
  {
    std::lock_guard lock(ckpt_mu_);
    if (recycled_bytes_ > 0) return;  // one is waiting already
  }
  const std::string file(wal::kRecycledSegmentFile);
  if (auto r = fs_.rename(wal::segment_path(segment_no), file); !r) return;
  auto f = fs_.open(file, OpenMode::read_write);
  Result<std::uint64_t> size = f ? (*f)->size() : Result<std::uint64_t>(f.error());
  Result<void> r = size ? Result<void>() : Result<void>(size.error());
  if (r && *size < 2 * kRecycleHeaderBlock) r = Error::make(errc::internal, "too small to recycle");
  if (r) r = (*f)->pwrite(std::string(kRecycleHeaderBlock, '\0'), 0);
  if (r) r = (*f)->sync();
  if (!r) {
    if (f) f->reset();
    (void)fs_.remove(file);
    return;
  }
  std::lock_guard lock(ckpt_mu_);
  recycled_bytes_ = *size;
}

// A leftover (a crash before the removal) is removed by the next recovery.
void Engine::remove_chunk_files(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& chunks) {
  for (const auto& [id, chunk] : chunks) (void)fs_.remove(wal::chunk_path(id, chunk));
}

void Engine::checkpoint_loop() {
  std::unique_lock lock(ckpt_mu_);
  for (;;) {
    ckpt_cv_.wait(lock, [this] { return ckpt_stop_ || ckpt_job_.has_value() || !ckpt_remove_.empty(); });
    if (!ckpt_remove_.empty()) {
      std::vector<std::pair<std::uint64_t, std::uint64_t>> chunks;
      chunks.swap(ckpt_remove_);
      lock.unlock();
      remove_chunk_files(chunks);
      lock.lock();
      continue;
    }
    if (!ckpt_job_) {  // stopping, nothing in flight
      ckpt_running_ = false;
      return;
    }
    CheckpointJob job = std::move(*ckpt_job_);
    ckpt_job_.reset();
    lock.unlock();
    try {
      end_checkpoint(job, finish_checkpoint(job));
    } catch (const failpoint::SimulatedCrash& c) {
      latch(Error::make(errc::storage_failed, "simulated crash at " + c.where));
    }
    lock.lock();
    ckpt_busy_ = false;
    ckpt_cv_.notify_all();
  }
}

Result<void> Engine::close() {
  if (closed_) return {};
  closed_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  while (commit_batch()) {
  }
  auto r = checkpoint();  // the failure, if the engine has latched
  stop_checkpoint_thread();
  return r;
}

void Engine::stop_checkpoint_thread() {
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_stop_ = true;
  }
  ckpt_cv_.notify_all();
  if (ckpt_thread_.joinable()) ckpt_thread_.join();
}

// ---------------------------------------------------------------------------
// Blocking helpers

template <class T, class Submit>
T Engine::run_sync(Submit&& submit) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  t_caller_commits = true;
  submit([promise](T r) { promise->set_value(std::move(r)); });
  t_caller_commits = false;
  auto ready = [&future] { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
  if (!options_.background) {
    while (!ready()) {
      if (!step()) return T(Error::make(errc::internal, "request was neither queued nor completed"));
    }
    return future.get();
  }
  // Leader/follower: commit the queue ourselves while the WAL is free; if
  // someone else holds it, the commit thread takes our request next.
  while (!ready()) {
    if (commit_if_free()) continue;
    queue_cv_.notify_one();
    future.wait();
  }
  return future.get();
}

Result<void> Engine::create_stream_sync(const StreamName& name) {
  return run_sync<Result<void>>([&](DoneCallback cb) { create_stream(name, std::move(cb)); });
}
Result<AppendOutcome> Engine::append_sync(wire::AppendRequest request) {
  return run_sync<Result<AppendOutcome>>([&](AppendCallback cb) { append(std::move(request), std::move(cb)); });
}
Result<void> Engine::subscribe_sync(const StreamName& stream, const StreamName& subscription) {
  return run_sync<Result<void>>([&](DoneCallback cb) { subscribe(stream, subscription, std::move(cb)); });
}
Result<void> Engine::unsubscribe_sync(const StreamName& stream, const StreamName& subscription) {
  return run_sync<Result<void>>([&](DoneCallback cb) { unsubscribe(stream, subscription, std::move(cb)); });
}
Result<void> Engine::mark_shipped_sync(const StreamName& stream, std::uint64_t chunk_no) {
  return run_sync<Result<void>>([&](DoneCallback cb) { mark_shipped(stream, chunk_no, std::move(cb)); });
}
Result<void> Engine::activity_round_sync() {
  return run_sync<Result<void>>([&](DoneCallback cb) { activity_round(std::move(cb)); });
}

// ---------------------------------------------------------------------------
// Reads

// Bytes [pos, pos + len) of a held chunk (fewer past the end of what is
// there): the file for what it holds, memory for the rest. The memory part
// only ever moves to the file, so a file read after taking the view finds
// at least the view's start.
Result<std::string> Engine::read_chunk(std::uint64_t id, std::uint64_t chunk, std::uint64_t pos,
                                       std::size_t len) const {
  const auto view = tails_->view({id, chunk});
  std::string out;
  if (!view || pos < view->start) {
    const std::size_t from_file =
        view ? static_cast<std::size_t>(std::min<std::uint64_t>(len, view->start - pos)) : len;
    auto f = files_->get(id, chunk, false);
    if (!f) return f.error();
    auto b = (*f)->pread(pos, from_file);
    if (!b) return b.error();
    out = std::move(*b);
    if (!view || out.size() < from_file) return out;
    pos += from_file;
    len -= from_file;
  }
  std::uint64_t at = view->start;
  for (const auto& block : view->blocks) {
    if (len == 0) break;
    const std::uint64_t block_end = at + block->size();
    if (pos >= at && pos < block_end) {
      const auto skip = static_cast<std::size_t>(pos - at);
      const std::size_t take = std::min(len, block->size() - skip);
      out.append(*block, skip, take);
      pos += take;
      len -= take;
    }
    at = block_end;
  }
  return out;
}

Result<LiveRead> Engine::read(const Cursor& from, std::size_t max_lines) const {
  std::uint64_t id = 0, limit = 0;
  const auto chunk = static_cast<std::uint64_t>(from.chunk());
  const auto offset = static_cast<std::uint64_t>(from.offset());
  StreamName name;
  std::optional<std::uint32_t> crc;
  std::optional<Tails::View> view;
  {
    std::shared_lock lock(committed_mu_);
    const StreamState* s = committed_.find(from.stream());
    if (s == nullptr) {
      return Error::make(errc::stream_not_found, fmt::format("stream {} does not exist", from.stream().str()));
    }
    if (from.chunk() < 0) return Error::make(errc::invalid_cursor, "cannot read from an offset query cursor");
    if (auto held = held_chunk(*s, chunk)) {
      limit = held->size;
      crc = held->crc;
    } else {
      return Error::make(errc::chunk_not_found,
                         fmt::format("chunk {} of {} is not held by this Writer{}", chunk, from.stream().str(),
                                     chunk < s->chunk_no ? " (it is in the store)" : " (it does not exist yet)"));
    }
    id = s->id;
    name = s->name;
    // Under the lock: the bytes in memory then reach at least `limit` (a
    // commit adds them before it moves the committed end).
    view = tails_->view({id, chunk});
  }
  if (offset > limit) {
    return Error::make(errc::invalid_cursor, fmt::format("cursor {} is beyond the end of its chunk ({} bytes)",
                                                         from.to_string(), limit));
  }
  auto gone = [&] {
    return Error::make(errc::chunk_not_found,
                       fmt::format("chunk {} of {} is no longer held by this Writer", chunk, name.str()));
  };
  if (crc) {
    // The read starts at offset - 1 (the line-start check below).
    if (auto r = check_file_part({id, chunk}, name, limit, *crc, view, offset > 0 ? offset - 1 : 0); !r) {
      return r.error().code == errc::chunk_not_found ? gone() : r.error();
    }
  }
  if (offset > 0) {
    auto prev = read_chunk(id, chunk, offset - 1, 1);
    if (!prev) return prev.error().code == errc::chunk_not_found ? gone() : prev.error();
    if (*prev != "\n") {
      return Error::make(errc::invalid_cursor, fmt::format("cursor {} is not at the start of a line",
                                                           from.to_string()));
    }
  }
  LiveRead out{{}, from.with_server(options_.server), 0};
  std::uint64_t pos = offset;
  std::size_t window = 64 * 1024;
  while (pos < limit && out.lines < max_lines) {
    auto buf = read_chunk(id, chunk, pos, static_cast<std::size_t>(std::min<std::uint64_t>(window, limit - pos)));
    if (!buf) return buf.error().code == errc::chunk_not_found ? gone() : buf.error();
    if (buf->empty()) {
      return Error::make(errc::corruption, fmt::format("chunk {} of {} is shorter than its committed size {}", chunk,
                                                       name.str(), limit));
    }
    RawLineSplitter split(*buf);
    std::size_t used = 0;
    while (out.lines < max_lines) {
      auto line = split.next();
      if (!line) break;
      used = split.consumed();
      ++out.lines;
    }
    if (used == 0) {  // a line longer than the window
      window *= 4;
      continue;
    }
    out.bytes.append(*buf, 0, used);
    pos += used;
  }
  out.next = Cursor(name, from.chunk(), static_cast<std::int64_t>(pos), options_.server);
  return out;
}

Result<std::string> Engine::read_sealed_chunk(const StreamName& stream, std::uint64_t chunk) const {
  std::uint64_t id = 0, size = 0;
  std::optional<std::uint32_t> crc;
  {
    std::shared_lock lock(committed_mu_);
    const StreamState* s = committed_.find(stream);
    if (s == nullptr) return Error::make(errc::stream_not_found, fmt::format("stream {} does not exist", stream.str()));
    auto it = s->sealed.find(chunk);
    if (it == s->sealed.end()) {
      return Error::make(errc::chunk_not_found, fmt::format("chunk {} of {} is not a sealed chunk held here", chunk,
                                                            stream.str()));
    }
    id = s->id;
    size = it->second;
    if (auto c = s->sealed_crc.find(chunk); c != s->sealed_crc.end()) crc = c->second;
  }
  if (auto seen = checks_->get({id, chunk}); seen.damaged) return *seen.damaged;  // quarantined
  auto bytes = read_chunk(id, chunk, 0, static_cast<std::size_t>(size));
  if (!bytes) {
    if (bytes.error().code != errc::chunk_not_found) return bytes.error();
    return Error::make(errc::chunk_not_found, fmt::format("chunk {} of {} is gone", chunk, stream.str()));
  }
  if (bytes->size() != size) {
    return Error::make(errc::corruption, fmt::format("chunk {} of {} has {} bytes, {} committed", chunk, stream.str(),
                                                     bytes->size(), size));
  }
  if (crc) {
    if (const auto got = crc32c::value(*bytes); got != *crc) return chunk_damaged({id, chunk}, stream, got, *crc);
  }
  return bytes;
}

Engine::ScrubReport Engine::scrub(const std::function<bool(const ScrubReport& so_far)>& keep_going) const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> chunks;
  {
    std::shared_lock lock(committed_mu_);
    for (const auto& [id, s] : committed_.streams()) {
      for (const auto& [chunk, size] : s.sealed) chunks.emplace_back(id, chunk);
      chunks.emplace_back(id, s.chunk_no);
    }
  }
  std::sort(chunks.begin(), chunks.end());  // file name order
  ScrubReport report;
  for (const auto& key : chunks) {
    if (!keep_going(report)) {
      report.stopped = true;
      break;
    }
    StreamName name;
    std::optional<HeldChunk> held;
    std::optional<TailView> view;
    {
      std::shared_lock lock(committed_mu_);
      const StreamState* s = committed_.find(key.first);
      if (s == nullptr || !(held = held_chunk(*s, key.second))) continue;  // shipped meanwhile
      name = s->name;
      view = tails_->view(key);
    }
    if (!held->crc) {
      ++report.unchecked;
      continue;
    }
    auto r = check_file_part(key, name, held->size, *held->crc, view, 0);
    ++report.chunks;
    report.bytes += held->size;
    if (r) continue;
    if (r.error().code == errc::corruption) {
      ++report.damaged;
    } else if (r.error().code != errc::chunk_not_found) {  // chunk_not_found: shipped meanwhile
      ++report.errors;
      if (!report.first_error) report.first_error = r.error();
    }
  }
  return report;
}

Error Engine::chunk_damaged(const std::pair<std::uint64_t, std::uint64_t>& key, const StreamName& stream, std::uint32_t got,
                            std::uint32_t committed) const {
  auto e = Error::make(errc::corruption,
                       fmt::format("chunk {} of {}: its local file {} fails its checksum (CRC32C {:08x}, {:08x} "
                                   "committed): the file was damaged on disk; the chunk is quarantined (neither "
                                   "served nor shipped) until the Writer restarts",
                                   key.second, stream.str(), wal::chunk_path(key.first, key.second), got, committed));
  return quarantine(key, std::move(e));
}

Error Engine::quarantine(const std::pair<std::uint64_t, std::uint64_t>& key, Error e) const {
  if (checks_->damaged(key, e) && options_.on_damaged_chunk) options_.on_damaged_chunk(e);
  return e;
}

Result<void> Engine::check_file_part(const std::pair<std::uint64_t, std::uint64_t>& key, const StreamName& stream, std::uint64_t size,
                                     std::uint32_t crc, const std::optional<TailView>& view,
                                     std::uint64_t first) const {
  // The file holds [0, start) and memory the rest. A checkpoint may have
  // written bytes of a commit that is not visible yet (memory is added
  // before the committed end moves): never check past `size`.
  const std::uint64_t file_end = view ? std::min(view->start, size) : size;
  if (first >= file_end) return {};  // the read is served from memory
  auto seen = checks_->get(key);
  if (seen.damaged) return *seen.damaged;
  if (seen.upto >= file_end) return {};
  auto f = files_->get(key.first, key.second, false);
  if (!f) return f.error();
  std::uint32_t prefix = seen.crc;
  for (std::uint64_t pos = seen.upto; pos < file_end;) {
    auto b = (*f)->pread(pos, static_cast<std::size_t>(std::min<std::uint64_t>(kCheckRead, file_end - pos)));
    if (!b) return b.error();
    if (b->empty()) {
      return quarantine(key, Error::make(errc::corruption,
                                         fmt::format("chunk {} of {}: its local file {} ends at {} bytes, {} were "
                                                     "written to it: the file was damaged on disk; the chunk is "
                                                     "quarantined until the Writer restarts",
                                                     key.second, stream.str(), wal::chunk_path(key.first, key.second),
                                                     pos, file_end)));
    }
    prefix = crc32c::extend(prefix, *b);
    pos += b->size();
  }
  // The rest of the committed bytes are in memory.
  std::uint32_t whole = prefix;
  if (view) {
    std::uint64_t at = view->start;
    for (const auto& block : view->blocks) {
      if (at >= size) break;
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(block->size(), size - at));
      whole = crc32c::extend(whole, std::string_view(*block).substr(0, take));
      at += take;
    }
  }
  if (whole != crc) return chunk_damaged(key, stream, whole, crc);
  checks_->checked(key, file_end, prefix);
  return {};
}

Result<Cursor> Engine::end_of(const StreamName& stream) const {
  std::shared_lock lock(committed_mu_);
  const StreamState* s = committed_.find(stream);
  if (s == nullptr) return Error::make(errc::stream_not_found, fmt::format("stream {} does not exist", stream.str()));
  return cursor(*s, s->chunk_no, s->size);
}

Result<std::vector<StreamName>> Engine::subscriptions_of(const StreamName& stream) const {
  std::shared_lock lock(committed_mu_);
  const StreamState* s = committed_.find(stream);
  if (s == nullptr) return Error::make(errc::stream_not_found, fmt::format("stream {} does not exist", stream.str()));
  return s->subscriptions;
}

std::vector<StreamName> Engine::stream_names() const {
  std::shared_lock lock(committed_mu_);
  std::vector<StreamName> out;
  for (const auto& [name, id] : committed_.names()) out.push_back(name);
  return out;
}

std::uint64_t Engine::last_commit() const {
  std::shared_lock lock(committed_mu_);
  return committed_.last_commit_no;
}

std::vector<ShipJob> Engine::ship_queue() const {
  std::shared_lock lock(committed_mu_);
  std::vector<ShipJob> out;
  for (const auto& [name, id] : committed_.names()) {
    const StreamState& s = *committed_.find(id);
    for (const auto& [chunk, size] : s.sealed) out.push_back(ShipJob{name, id, chunk, size});
  }
  return out;
}

std::uint64_t Engine::chunk_memory_bytes() const { return tails_->bytes(); }

Engine::Stats Engine::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

}  // namespace horizon::writer
