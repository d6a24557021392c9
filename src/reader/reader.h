#pragma once
// Reads any cursor of any stream, wherever its bytes are: the live tail
// (and sealed chunks the Writer still holds) through the Writer's liveread,
// sealed chunks from the store through a bounded local cache of decrypted
// chunk files. Follows Rotated lines across chunks. If the Writer is
// unreachable, sealed chunks are still read from the store.
//
// Integrity: a sealed chunk that fails authentication or decoding is an
// error naming the object; it is never returned as data (and not cached).
//
// The cache directory (mode 0700, files 0600: they are plaintext) holds each
// decoded chunk with a CRC-32C trailer; a file that fails it (a power loss
// tore it; cache files are not fsync'ed) is removed and the chunk read from
// the store again. The bound is kept by one listing per Reader and a running
// total after it; a listing also removes temp files an hour old (left by a
// reader killed while writing one).
//
// Thread-safety: a Reader is used by one thread at a time; several Readers
// may share one cache directory (files are replaced atomically).

#include "codec/chunk_codec.h"
#include "core/cursor.h"
#include "core/errc.h"
#include "core/raw_line.h"
#include "store/object_store.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace horizon::reader {

struct Line {
  RawLine line;
  Cursor ptr_after;  // the cursor after this line (the next chunk's start after Rotated)
};

// Reads raw lines from the Writer (POST /writer/liveread). Must return
// errc::chunk_not_found when the Writer does not hold the chunk, and
// errc::not_ready when the Writer cannot be reached.
using LiveSource = std::function<Result<std::string>(const Cursor& from, std::size_t max_lines)>;

struct ReaderOptions {
  store::ObjectStore* store = nullptr;           // may be null: live only
  const codec::MasterKey* key = nullptr;         // needed for sealed chunks
  LiveSource live;                               // may be empty: store only
  std::string cache_dir;                         // empty: no disk cache (memory only, one chunk)
  std::uint64_t cache_max_bytes = 1ull << 30;    // LRU by size
};

class Reader {
 public:
  explicit Reader(ReaderOptions options);

  // Up to `max_lines` lines from `from` (fewer at the end of the stream).
  [[nodiscard]] Result<std::vector<Line>> read(const Cursor& from, std::size_t max_lines);

  struct Stats {
    std::uint64_t live_reads = 0, store_gets = 0, cache_hits = 0;
    std::uint64_t cache_damaged = 0;  // cache files that failed their check (removed, read from the store)
  };
  const Stats& stats() const { return stats_; }

 private:
  // Whole decoded bytes of a sealed chunk (cache, else store).
  Result<std::shared_ptr<const std::string>> sealed_chunk(const StreamName& stream, std::uint64_t chunk);
  void evict_if_needed();
  void account_cached(std::uint64_t bytes);

  ReaderOptions options_;
  Stats stats_;
  std::optional<std::uint64_t> cache_bytes_;  // the cache directory's size, known after its first scan
  // The last sealed chunk used, kept in memory for sequential reads.
  std::optional<std::pair<std::string, std::shared_ptr<const std::string>>> hot_;
};

}  // namespace horizon::reader
