#include "wal/filename.h"

#include <fmt/format.h>

#include <charconv>

namespace horizon::wal {
namespace {

std::optional<std::uint64_t> parse_fixed(std::string_view s, std::size_t digits, int base) {
  if (s.size() != digits) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  for (char c : s) {
    if (base == 16 ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) : !(c >= '0' && c <= '9')) {
      return std::nullopt;
    }
  }
  return v;
}

}  // namespace

std::string segment_path(std::uint64_t segment_no) { return fmt::format("{}/{:020}.log", kWalDir, segment_no); }

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (!name.ends_with(".log")) return std::nullopt;
  return parse_fixed(name.substr(0, name.size() - 4), 20, 10);
}

std::string chunk_path(std::uint64_t stream_id, std::uint64_t chunk_no) {
  return fmt::format("{}/{:016x}.{:020}.raw", kChunkDir, stream_id, chunk_no);
}

std::optional<ChunkFileId> parse_chunk_name(std::string_view name) {
  if (name.size() != 16 + 1 + 20 + 4 || name[16] != '.' || !name.ends_with(".raw")) return std::nullopt;
  auto id = parse_fixed(name.substr(0, 16), 16, 16);
  auto chunk = parse_fixed(name.substr(17, 20), 20, 10);
  if (!id || !chunk) return std::nullopt;
  return ChunkFileId{*id, *chunk};
}

}  // namespace horizon::wal
