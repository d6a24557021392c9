#pragma once
// Encoding and scanning of WAL segments (framing in record_format.h,
// documented in docs/format/wal.md).
//
// Recovery policy (the only one): a torn tail is tolerated, everything else
// is corruption. A record is "damaged" when its header, length, type or CRC
// is wrong. If no valid record follows a damaged one in the last segment,
// the damage is a torn tail (an unsynced write cut by a crash): it is
// reported and truncated. A damaged record followed by a valid one, or any
// damage in a segment that is not the last, is corruption: recovery stops
// with an error naming the segment and byte offset, and nothing is
// truncated.
//
// Thread-safety: pure functions.

#include "core/errc.h"
#include "wal/record_format.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::wal {

// Header + payload, ready to write.
std::string encode_record(RecordType type, std::string_view payload);
// Appends the encoding to `out` (avoids a copy of large payloads).
void append_record(std::string& out, RecordType type, std::string_view payload);

struct ScannedRecord {
  RecordType type;
  std::string_view payload;  // points into the scanned data
  std::uint64_t offset;      // of the header
};

struct SegmentScan {
  std::vector<ScannedRecord> records;
  std::uint64_t valid_end = 0;      // just past the last valid record
  std::uint64_t damaged_bytes = 0;  // bytes after valid_end that are neither zeros nor records (a torn tail
                                    // and/or stale bytes of a recycled file), 0 if clean
  std::uint64_t zero_bytes = 0;     // all-zero bytes after valid_end (space reserved ahead), not damage
};

// Scans one segment. `name` is used in messages. The commit number of a
// commit record is the first 8 bytes of its payload; commits must advance:
// one at or below `floor` (the last commit before this segment), below the
// first commit the segment header announces, or not above the one before
// it is stale data and ends the segment, like a segment header anywhere
// but at the start (a recycled segment file still holds its former
// records). A record found after the end counts as proof of corruption
// only if it is of a known type and a commit that advances the numbering.
// Zero bytes from the end of the last valid record to the end of the data
// are space the engine reserved ahead of its writes, a clean end; other
// bytes are damaged_bytes: a torn tail for the caller to cut in the last
// segment, stale bytes in any other (see docs/format/wal.md).
[[nodiscard]] Result<SegmentScan> scan_segment(std::string_view data, std::string_view name,
                                               std::uint64_t floor = 0);

}  // namespace horizon::wal
