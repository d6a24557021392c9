#include "core/store_keys.h"

#include "core/digest.h"

#include <fmt/format.h>

#include <charconv>

namespace horizon {

std::string chunk_key(const StreamName& stream, std::uint64_t chunk) {
  std::string key = fmt::format("{}{}/~{:020}.ehc", kChunkKeyPrefix, stream.relative_path(), chunk);
  if (key.size() <= kMaxChunkKeyBytes) return key;
  return fmt::format("{}h/{}/~{:020}.ehc", kChunkKeyPrefix, sha256_hex(stream.str()), chunk);
}

std::optional<ChunkKey> parse_chunk_key(std::string_view key) {
  const std::string_view whole = key;
  if (!key.starts_with(kChunkKeyPrefix) || !key.ends_with(".ehc")) return std::nullopt;
  key.remove_prefix(kChunkKeyPrefix.size());
  const auto tilde = key.rfind("/~");
  if (tilde == std::string_view::npos) return std::nullopt;
  const std::string_view path = key.substr(0, tilde);
  const std::string_view digits = key.substr(tilde + 2, key.size() - tilde - 2 - 4);
  if (digits.size() != 20) return std::nullopt;
  std::uint64_t chunk = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), chunk);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  if (path == "s") return ChunkKey{StreamName::root(), chunk};
  if (!path.starts_with("s/")) return std::nullopt;
  auto name = StreamName::parse(path.substr(1));
  if (!name) return std::nullopt;
  if (chunk_key(*name, chunk) != std::string_view(whole)) return std::nullopt;  // too long: hashed form
  return ChunkKey{*name, chunk};
}

}  // namespace horizon
