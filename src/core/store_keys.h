#pragma once
// The keys of objects in the store (SPEC §9), built in one place: sealed
// chunks and the discovery record. Stream names map through
// StreamName::relative_path (injective, traversal-proof); the chunk file
// name starts with '~', which no stream segment can contain, so a chunk
// key never collides with a child stream's prefix.
//
//   chunks/s/tenants/acme/~00000000000000000003.ehc
//
// A name long enough to make that key longer than S3's limit of 1024 bytes
// (names of 991..1024 bytes) is replaced by the lowercase hex SHA-256 of the
// name under "h" (a namespace no "s" key can reach); the chunk's header and
// authenticated data still bind the full name (docs/format/chunk-object.md):
//
//   chunks/h/<64 hex digits>/~00000000000000000003.ehc
//
// Thread-safety: pure functions.

#include "core/stream_name.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace horizon {

inline constexpr std::string_view kChunkKeyPrefix = "chunks/";
inline constexpr std::size_t kMaxChunkKeyBytes = 1024;  // S3's key limit (store::kMaxKeyBytes)

std::string chunk_key(const StreamName& stream, std::uint64_t chunk);

struct ChunkKey {
  StreamName stream;
  std::uint64_t chunk;
};
// The inverse of chunk_key for the "s" form; nullopt for anything else
// (a hashed key names no stream by itself).
std::optional<ChunkKey> parse_chunk_key(std::string_view key);

}  // namespace horizon
