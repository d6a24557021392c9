#include "reader/reader.h"

#include "core/store_keys.h"
#include "wal/crc32c.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
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

// The whole file in one sized read (no stream-buffer growth and copy);
// nullopt if it cannot be opened or read completely (the caller then reads
// the store).
Result<std::optional<std::string>> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary | std::ios::ate);
  if (!in) return std::optional<std::string>();
  const std::streamoff size = in.tellg();
  if (size < 0) return std::optional<std::string>();
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) return std::optional<std::string>();
  return std::optional<std::string>(std::move(bytes));
}

}  // namespace

Reader::Reader(ReaderOptions options) : options_(std::move(options)) {
  if (!options_.cache_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options_.cache_dir, ec);
  }
}

void Reader::evict_if_needed() {
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  std::uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(options_.cache_dir, ec)) {
    if (!e.is_regular_file(ec) || e.path().extension() != ".raw") continue;
    total += e.file_size(ec);
    files.emplace_back(e.last_write_time(ec), e.path());
  }
  if (total <= options_.cache_max_bytes) return;
  std::sort(files.begin(), files.end());
  for (const auto& [t, p] : files) {
    if (total <= options_.cache_max_bytes) break;
    const auto size = fs::file_size(p, ec);
    if (fs::remove(p, ec)) total -= size;
  }
}

Result<std::shared_ptr<const std::string>> Reader::sealed_chunk(const StreamName& stream, std::uint64_t chunk) {
  const std::string key = chunk_key(stream, chunk);
  if (hot_ && hot_->first == key) return hot_->second;
  fs::path cached;
  if (!options_.cache_dir.empty()) {
    // Keyed by the store too: two stores hold different objects under the same key.
    const std::string where = options_.store != nullptr ? options_.store->describe() : std::string("no-store");
    cached = fs::path(options_.cache_dir) / cache_name(where + "\n" + key);
    auto bytes = read_file(cached);
    if (bytes && *bytes) {
      ++stats_.cache_hits;
      std::error_code ec;
      fs::last_write_time(cached, fs::file_time_type::clock::now(), ec);  // LRU touch
      auto data = std::make_shared<const std::string>(std::move(**bytes));
      hot_.emplace(key, data);
      return data;
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
  if (!cached.empty()) {
    // Atomic: write a private temp file, then rename over the cache name.
    const fs::path tmp = cached.string() + fmt::format(".tmp{}", ::getpid());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(data->data(), static_cast<std::streamsize>(data->size()));
    }
    std::error_code ec;
    fs::rename(tmp, cached, ec);
    if (ec) fs::remove(tmp, ec);
    evict_if_needed();
  }
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
