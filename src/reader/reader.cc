#include "reader/reader.h"

#include "core/store_keys.h"
#include "wal/crc32c.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace horizon::reader {

namespace fs = std::filesystem;

namespace {

// A cache file name: the store key is long and may contain '/': use a
// checksum-free stable encoding (hex of the key) to stay injective.
std::string cache_name(const std::string& key) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  if (out.size() > 240) {  // keep within NAME_MAX: long keys get a CRC suffix of the rest
    out = out.substr(0, 200) + fmt::format("-{:08x}-{}", crc32c::value(key), key.size());
  }
  return out + ".raw";
}

// A cache file is the decoded chunk followed by a trailer: "EHRC", the
// CRC-32C of the chunk and its size (little-endian u32, u64). Cache files
// are written without fsync (a cache), so after a power loss one may be
// empty, short or zero-filled under its final name: the trailer catches
// that, and a file that fails it is removed and read again from the store.
constexpr std::string_view kCacheMagic = "EHRC";
constexpr std::size_t kTrailerSize = 16;

std::string cache_trailer(std::string_view data, std::uint32_t crc) {
  std::string t(kCacheMagic);
  const std::uint64_t size = data.size();
  for (int i = 0; i < 4; ++i) t += static_cast<char>((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) t += static_cast<char>((size >> (8 * i)) & 0xff);
  return t;
}

// A cache file's chunk, its trailer checked: missing if the file cannot be
// opened, damaged if it is short or fails the check. Read in pieces into
// the final string, each piece CRC'd while it is still in the CPU's cache.
enum class CacheRead { hit, missing, damaged };
CacheRead read_cache_file(const fs::path& p, std::string& out) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return CacheRead::missing;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kTrailerSize)) {
    ::close(fd);
    return CacheRead::damaged;
  }
  const auto total = static_cast<std::size_t>(st.st_size);
  std::string bytes(total, '\0');
  constexpr std::size_t kPiece = 256 * 1024;
  const std::size_t data_size = total - kTrailerSize;
  std::uint32_t crc = 0;
  std::size_t done = 0;
  while (done < total) {
    const ssize_t n = ::read(fd, bytes.data() + done, std::min(kPiece, total - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const std::size_t end = done + static_cast<std::size_t>(n);
    if (done < data_size) crc = crc32c::extend(crc, std::string_view(bytes).substr(done, std::min(end, data_size) - done));
    done = end;
  }
  ::close(fd);
  if (done != total) return CacheRead::damaged;
  const std::string_view data(bytes.data(), data_size);
  if (std::string_view(bytes).substr(data_size) != cache_trailer(data, crc)) return CacheRead::damaged;
  bytes.resize(data_size);
  out = std::move(bytes);
  return CacheRead::hit;
}

// Writes `data` and its trailer to a private temp file (0600: the chunk is
// plaintext) and renames it over `path`. False if any step failed (nothing
// is left behind then).
bool write_cache_file(const fs::path& path, std::string_view data) {
  const std::string tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  const std::string trailer = cache_trailer(data, crc32c::value(data));
  bool ok = true;
  for (std::string_view part : {data, std::string_view(trailer)}) {
    while (ok && !part.empty()) {
      const ssize_t n = ::write(fd, part.data(), part.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok = false;
      else part.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  ok = (::close(fd) == 0) && ok;
  std::error_code ec;
  if (ok) fs::rename(tmp, path, ec);
  if (!ok || ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace

Reader::Reader(ReaderOptions options) : options_(std::move(options)) {
  if (!options_.cache_dir.empty()) {
    // The cache holds plaintext chunks: only its owner may enter it (also
    // one made by a version that did not restrict it).
    std::error_code ec;
    fs::create_directories(options_.cache_dir, ec);
    fs::permissions(options_.cache_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
}

void Reader::account_cached(std::uint64_t bytes) {
  // One scan of the directory per Reader, then a running total, so that a
  // cache of thousands of chunks is not listed again at every insertion;
  // only past the bound is it listed (and trimmed). Other processes
  // sharing the directory are seen at that scan.
  if (!cache_bytes_) {
    evict_if_needed();
    return;
  }
  *cache_bytes_ += bytes;
  if (*cache_bytes_ > options_.cache_max_bytes) evict_if_needed();
}

void Reader::evict_if_needed() {
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  std::uint64_t total = 0;
  // A temp file older than an hour was left by a reader that died while
  // writing it (a live one finishes in well under a second): removed.
  const auto stale_before = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& e : fs::directory_iterator(options_.cache_dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    if (e.path().extension() != ".raw") {
      std::error_code ignored;
      if (e.path().filename().string().find(".raw.tmp") != std::string::npos &&
          e.last_write_time(ignored) < stale_before && !ignored) {
        fs::remove(e.path(), ignored);
      }
      continue;
    }
    total += e.file_size(ec);
    files.emplace_back(e.last_write_time(ec), e.path());
  }
  cache_bytes_ = total;
  if (total <= options_.cache_max_bytes) return;
  std::sort(files.begin(), files.end());
  for (const auto& [t, p] : files) {
    if (total <= options_.cache_max_bytes) break;
    const auto size = fs::file_size(p, ec);
    if (!ec && fs::remove(p, ec)) total -= size;
  }
  cache_bytes_ = total;
}

Result<std::shared_ptr<const std::string>> Reader::sealed_chunk(const StreamName& stream, std::uint64_t chunk) {
  const std::string key = chunk_key(stream, chunk);
  if (hot_ && hot_->first == key) return hot_->second;
  fs::path cached;
  if (!options_.cache_dir.empty()) {
    // Keyed by the store too: two stores hold different objects under the same key.
    const std::string where = options_.store != nullptr ? options_.store->describe() : std::string("no-store");
    cached = fs::path(options_.cache_dir) / cache_name(where + "\n" + key);
    std::string contents;
    const CacheRead got = read_cache_file(cached, contents);
    if (got == CacheRead::hit) {
      ++stats_.cache_hits;
      std::error_code ec;
      fs::last_write_time(cached, fs::file_time_type::clock::now(), ec);  // LRU touch
      auto data = std::make_shared<const std::string>(std::move(contents));
      hot_.emplace(key, data);
      return data;
    }
    if (got == CacheRead::damaged) {
      ++stats_.cache_damaged;  // torn by a power loss, or altered: never data
      std::error_code ec;
      fs::remove(cached, ec);
    }
  }
  if (options_.store == nullptr) {
    return Error::make(errc::chunk_not_found, fmt::format("chunk {} of {} is not held by the Writer and no store is "
                                                          "configured",
                                                          chunk, stream.str()));
  }
  if (options_.key == nullptr) {
    return Error::make(errc::invalid_argument, fmt::format("chunk {} of {} is sealed in the store: reading it needs "
                                                           "HORIZON_KEY",
                                                           chunk, stream.str()));
  }
  ++stats_.store_gets;
  auto object = options_.store->get(key);
  if (!object) return object.error();
  if (!*object) {
    return Error::make(errc::chunk_not_found, fmt::format("chunk {} of {} is neither held by the Writer nor in store "
                                                          "{} (object {})",
                                                          chunk, stream.str(), options_.store->describe(), key));
  }
  auto raw = codec::decode_chunk(*options_.key, codec::ChunkId{stream.str(), chunk}, **object);
  if (!raw) {
    return Error::make(errc::corruption, fmt::format("object {} in store {} failed its integrity check: {}", key,
                                                     options_.store->describe(), raw.error().message));
  }
  auto data = std::make_shared<const std::string>(std::move(*raw));
  if (!cached.empty() && write_cache_file(cached, *data)) account_cached(data->size() + kTrailerSize);
  hot_.emplace(key, data);
  return data;
}

Result<std::vector<Line>> Reader::read(const Cursor& from, std::size_t max_lines) {
  std::vector<Line> out;
  if (from.is_offset_query()) return Error::make(errc::invalid_cursor, "cannot read from an offset query cursor");
  Cursor at = Cursor(from.stream(), from.chunk(), from.offset());
  while (out.size() < max_lines) {
    // The lines to parse: the live answer, or a view into the sealed chunk
    // (kept alive by `whole`; never copied, so a small batch does not copy
    // the chunk's remainder on every call).
    std::string live_bytes;
    std::string_view bytes;
    bool from_live = false;
    std::shared_ptr<const std::string> whole;
    std::optional<Error> unreachable;  // why the Writer could not be asked, if it could not
    if (options_.live) {
      auto live = options_.live(at, max_lines - out.size());
      if (live) {
        ++stats_.live_reads;
        live_bytes = std::move(*live);
        bytes = live_bytes;
        from_live = true;
      } else if (live.error().code != errc::chunk_not_found && live.error().code != errc::not_ready) {
        if (!out.empty()) break;  // return what we have; the next read reports the error
        return live.error();
      } else if (live.error().code == errc::not_ready && options_.store == nullptr) {
        if (!out.empty()) break;
        return live.error();
      } else if (live.error().code == errc::not_ready) {
        unreachable = live.error();
      }
    }
    if (!from_live) {
      auto chunk = sealed_chunk(at.stream(), static_cast<std::uint64_t>(at.chunk()));
      if (!chunk) {
        if (!out.empty()) break;  // e.g. the Writer is down and this chunk is still live there
        if (unreachable && chunk.error().code == errc::chunk_not_found) {
          // Most likely still live in a Writer this reader could not reach:
          // say why (a refused connection, a certificate that did not
          // verify, ...) instead of only that the store lacks it.
          return Error::make(errc::not_ready,
                             fmt::format("chunk {} of {} is not in store {}, and the Writer, which holds the chunks "
                                         "not yet shipped, could not be asked: {}",
                                         at.chunk(), at.stream().str(), options_.store->describe(),
                                         unreachable->message));
        }
        return chunk.error();
      }
      whole = *chunk;
      const auto offset = static_cast<std::size_t>(at.offset());
      if (offset > whole->size()) {
        return Error::make(errc::invalid_cursor, fmt::format("cursor {} is beyond the end of its sealed chunk ({} bytes)",
                                                             at.to_string(), whole->size()));
      }
      if (offset > 0 && (*whole)[offset - 1] != '\n') {
        return Error::make(errc::invalid_cursor, fmt::format("cursor {} is not at the start of a line", at.to_string()));
      }
      bytes = std::string_view(*whole).substr(offset);
    }
    if (bytes.empty()) break;  // the end of the stream (a sealed chunk always ends with Rotated)
    RawLineSplitter split(bytes);
    bool rotated = false;
    while (out.size() < max_lines) {
      auto l = split.next();
      if (!l) break;
      auto parsed = parse_raw_line(*l);
      if (!parsed) {
        return Error::make(errc::corruption, fmt::format("{} at {}: {}", from_live ? "live chunk" : "sealed chunk",
                                                         at.to_string(), parsed.error().message));
      }
      Cursor after(at.stream(), at.chunk(), at.offset() + static_cast<std::int64_t>(split.consumed()));
      if (parsed->meta_type == "Rotated") {
        after = Cursor(at.stream(), at.chunk() + 1, 0);
        rotated = true;
      }
      out.push_back(Line{std::move(*parsed), after});
      if (rotated) break;
    }
    if (rotated) {
      at = out.back().ptr_after;
      continue;
    }
    if (!from_live) break;  // a sealed chunk without a Rotated line at its end: stop there
    if (split.consumed() == 0) break;
    at = Cursor(at.stream(), at.chunk(), at.offset() + static_cast<std::int64_t>(split.consumed()));
    // A live read returns at most what we asked for; if it was cut short by
    // its own limit, ask again, else we are at the end.
  }
  return out;
}

}  // namespace horizon::reader
