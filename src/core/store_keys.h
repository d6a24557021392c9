#pragma once
// The keys of objects in the store (SPEC §9), built in one place: sealed
// chunks and the discovery record. Stream names map through
// StreamName::relative_path (injective, traversal-proof); the chunk file
// name starts with '~', which no stream segment can contain, so a chunk
// key never collides with a child stream's prefix.
//
//   chunks/s/tenants/acme/~00000000000000000003.ehc
//
// Thread-safety: pure functions.

#include "core/stream_name.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace horizon {

inline constexpr std::string_view kChunkKeyPrefix = "chunks/";

std::string chunk_key(const StreamName& stream, std::uint64_t chunk);

struct ChunkKey {
  StreamName stream;
  std::uint64_t chunk;
};
// The inverse of chunk_key; nullopt for anything else.
std::optional<ChunkKey> parse_chunk_key(std::string_view key);

}  // namespace horizon
