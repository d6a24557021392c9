#pragma once
// WAL record framing. Documented in docs/format/wal.md (the golden test
// wal_format_test.cc checks the document's example byte for byte).
//
//   +---------------+------------+---------+-------------------+
//   | masked CRC32C | length u32 | type u8 | payload (length)  |
//   +---------------+------------+---------+-------------------+
//   CRC32C covers length, type and payload (not the CRC itself).
//
// One commit record is written per group commit, followed by one
// fdatasync; the next record is written only after that sync returned. So
// a damaged record followed by any valid record is corruption in the middle
// of the log; a damaged record with nothing valid after it is a torn tail.

#include <cstddef>
#include <cstdint>

namespace horizon::wal {

inline constexpr std::size_t kHeaderSize = 4 + 4 + 1;
inline constexpr std::uint32_t kMaxRecordPayload = 64u << 20;  // 64 MiB

enum class RecordType : std::uint8_t {
  // Never written: a zero-filled (preallocated or torn) area reads as type 0
  // with length 0, and its CRC does not match, so it is never valid.
  zero = 0,
  segment_header = 1,  // first record of every segment
  commit = 2,          // one group commit: commit number + operations
};
// Types with this bit set may be skipped by a reader that does not know them
// (forward compatibility); unknown types without it are corruption.
inline constexpr std::uint8_t kSafeToIgnoreMask = 0x80;

// Segment header payload: magic, format version, segment number, number of
// the first commit the segment may contain.
inline constexpr char kSegmentMagic[8] = {'E', 'H', 'W', 'A', 'L', '\0', '\0', '\0'};
inline constexpr std::uint32_t kFormatVersion = 1;

}  // namespace horizon::wal
