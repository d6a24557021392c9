#pragma once
// Every file name of the data directory is built and parsed here (see
// docs/format/data-dir.md). Stream names never become paths: chunk files
// are named by the stream's numeric id.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace horizon::wal {

inline constexpr std::string_view kWalDir = "wal";
inline constexpr std::string_view kChunkDir = "chunks";
inline constexpr std::string_view kSnapshotFile = "snapshot";
inline constexpr std::string_view kSnapshotTempFile = "snapshot.tmp";
// A deleted segment's file kept for the next segment (renamed to its name).
inline constexpr std::string_view kRecycledSegmentFile = "wal/recycled.next";

// "wal/00000000000000000042.log"
std::string segment_path(std::uint64_t segment_no);
// The segment number of a file name in wal/ ("00000000000000000042.log"), if it is one.
std::optional<std::uint64_t> parse_segment_name(std::string_view name);

// "chunks/<stream id, 16 hex digits>.<chunk number, 20 digits>.raw"
std::string chunk_path(std::uint64_t stream_id, std::uint64_t chunk_no);
struct ChunkFileId {
  std::uint64_t stream_id;
  std::uint64_t chunk_no;
};
std::optional<ChunkFileId> parse_chunk_name(std::string_view name);

}  // namespace horizon::wal
