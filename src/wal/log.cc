#include "wal/log.h"
#include "wal/mutant.h"

#include "wal/coding.h"
#include "wal/crc32c.h"

#include <fmt/format.h>

#include <algorithm>

namespace horizon::wal {
namespace {

std::uint32_t record_crc(std::string_view length_type_payload) { return crc32c::value(length_type_payload); }

bool known_type(std::uint8_t t) {
  return t == static_cast<std::uint8_t>(RecordType::segment_header) ||
         t == static_cast<std::uint8_t>(RecordType::commit) || (t & kSafeToIgnoreMask) != 0;
}

// The record at `pos` if it is intact: header fits, length sane, CRC matches,
// type not zero.
std::optional<ScannedRecord> try_record(std::string_view data, std::size_t pos) {
  if (data.size() - pos < kHeaderSize) return std::nullopt;
  const std::uint32_t length = get_u32_at(data, pos + 4);
  if (length > kMaxRecordPayload || length > data.size() - pos - kHeaderSize) return std::nullopt;
  const auto type = static_cast<std::uint8_t>(data[pos + 8]);
  if (type == static_cast<std::uint8_t>(RecordType::zero)) return std::nullopt;
  const std::uint32_t stored = crc32c::unmask(get_u32_at(data, pos));
  if (stored != record_crc(data.substr(pos + 4, 5 + length))) return std::nullopt;
  return ScannedRecord{static_cast<RecordType>(type), data.substr(pos + kHeaderSize, length), pos};
}

std::uint64_t commit_no_of(const ScannedRecord& r) {
  if (r.type != RecordType::commit || r.payload.size() < 8) return 0;
  return get_u64_at(r.payload, 0);
}

}  // namespace

void append_record(std::string& out, RecordType type, std::string_view payload) {
  const std::size_t start = out.size();
  put_u32(out, 0);  // CRC placeholder
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u8(out, static_cast<std::uint8_t>(type));
  out.append(payload);
  const std::uint32_t crc = crc32c::mask(record_crc(std::string_view(out).substr(start + 4)));
  for (std::size_t i = 0; i < 4; ++i) out[start + i] = static_cast<char>((crc >> (8 * i)) & 0xffu);
}

std::string encode_record(RecordType type, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  append_record(out, type, payload);
  return out;
}

Result<SegmentScan> scan_segment(std::string_view data, std::string_view name, std::uint64_t floor) {
  SegmentScan scan;
  std::size_t pos = 0;
  std::uint64_t last_commit = floor;  // a commit at or below it is stale
  while (pos < data.size()) {
    auto rec = try_record(data, pos);
    if (rec && !known_type(static_cast<std::uint8_t>(rec->type))) {
      return Error::make(errc::corruption, fmt::format("WAL segment {}: unknown record type {} at byte {}", name,
                                                       static_cast<int>(rec->type), pos));
    }
    if (!rec) break;
    // A segment header anywhere but at the start, or a commit that does not
    // advance the numbering, is stale data (a recycled file's former life),
    // not a record of this log.
    if (rec->type == RecordType::segment_header && pos != 0) break;
    if (rec->type == RecordType::segment_header) {
      // u64 number of the first commit the segment may hold, after the
      // magic, the version and the segment number.
      if (rec->payload.size() >= 28) {
        const std::uint64_t first = get_u64_at(rec->payload, 20);
        if (first > 0) last_commit = std::max(last_commit, first - 1);
      }
    }
    if (rec->type == RecordType::commit) {
      const std::uint64_t no = commit_no_of(*rec);
      if (no <= last_commit) break;
      last_commit = no;
    }
    scan.records.push_back(*rec);
    pos += kHeaderSize + rec->payload.size();
  }
  scan.valid_end = pos;
  if (data.find_first_not_of('\0', pos) == std::string_view::npos) {
    scan.zero_bytes = data.size() - pos;
    return scan;
  }

  // Damage at `pos`. Is there any valid record after it that advances the
  // log? An intact stale record is stepped over whole (a recycled file's
  // former records follow each other; nothing new starts inside one).
  const bool mutant_cut = mutant::active(mutant::Id::truncate_at_any_damage);  // harness test only
  for (std::size_t q = pos + 1; !mutant_cut && q + kHeaderSize <= data.size(); ++q) {
    auto later = try_record(data, q);
    if (!later || !known_type(static_cast<std::uint8_t>(later->type))) continue;
    if (later->type == RecordType::segment_header ||
        (later->type == RecordType::commit && commit_no_of(*later) <= last_commit)) {
      q += kHeaderSize + later->payload.size() - 1;
      continue;
    }
    return Error::make(errc::corruption,
                       fmt::format("WAL segment {}: damaged record at byte {} is followed by a valid record at "
                                   "byte {}; this is corruption in the middle of the log, not a torn tail. "
                                   "Refusing to start (nothing was truncated).",
                                   name, pos, q));
  }
  // In the last segment a torn tail (and stale bytes), cut by recovery. In
  // any other: stale bytes of a recycled file, which no commit ever follows
  // in that segment; a lost commit shows as a gap in the numbering instead.
  scan.damaged_bytes = data.size() - pos;
  return scan;
}

}  // namespace horizon::wal
