#include "wal/log.h"
#include "wal/harness_test_util.h"

#include "wal/coding.h"
#include "wal/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace horizon::wal {
namespace {

std::string commit_payload(std::uint64_t no, std::size_t extra) {
  std::string p;
  put_u64(p, no);
  p.append(extra, static_cast<char>('a' + no % 26));
  return p;
}

// A segment: header + `n` commit records of varying sizes.
struct Built {
  std::string data;
  std::vector<std::size_t> starts;  // offset of each commit record
};
Built build(std::size_t n) {
  Built b;
  b.data = encode_record(RecordType::segment_header, "hdr");
  for (std::size_t i = 1; i <= n; ++i) {
    b.starts.push_back(b.data.size());
    append_record(b.data, RecordType::commit, commit_payload(i, 10 + (i * 37) % 300));
  }
  return b;
}

TEST(Crc32c, KnownValuesAndHardwareMatchesPortable) {
  EXPECT_EQ(crc32c::value(""), 0u);
  EXPECT_EQ(crc32c::value("123456789"), 0xe3069283u);  // the standard check value
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::value(zeros), 0x8a9136aau);  // RFC 3720 B.4
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 1000, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    EXPECT_EQ(crc32c::value(s), crc32c::extend_portable(0, s));
  }
  EXPECT_EQ(crc32c::unmask(crc32c::mask(0x12345678u)), 0x12345678u);
}

// Large inputs take the three-lane path (blocks of 3 x 4 KiB): every length
// around the block edges, odd alignments, and CRCs continued across calls
// match the byte-at-a-time table.
TEST(Crc32c, ThreeLanePathMatchesPortable) {
  std::mt19937_64 rng(11);
  std::string big(200064, '\0');  // room for the longest length (199,999) at the largest offset (7)
  for (auto& c : big) c = static_cast<char>(rng());
  for (std::size_t len : {12287u, 12288u, 12289u, 12295u, 12296u, 24575u, 24576u, 24577u, 36871u, 199999u}) {
    for (std::size_t offset : {0u, 1u, 3u, 7u}) {
      const std::string_view s(big.data() + offset, len);
      EXPECT_EQ(crc32c::value(s), crc32c::extend_portable(0, s)) << len << " at +" << offset;
    }
  }
  for (int i = 0; i < 50; ++i) {
    const std::size_t len = rng() % 150000, cut = len == 0 ? 0 : rng() % len;
    const std::string_view s(big.data() + rng() % 64, len);
    const auto whole = crc32c::extend_portable(0, s);
    EXPECT_EQ(crc32c::value(s), whole) << len;
    EXPECT_EQ(crc32c::extend(crc32c::value(s.substr(0, cut)), s.substr(cut)), whole) << len << " cut at " << cut;
  }
  const std::string zeros(1 << 20, '\0');
  EXPECT_EQ(crc32c::value(zeros), crc32c::extend_portable(0, zeros));
}

TEST(Log, RoundTrip) {
  auto b = build(5);
  auto scan = scan_segment(b.data, "seg");
  ASSERT_TRUE(scan) << scan.error().message;
  ASSERT_EQ(scan->records.size(), 6u);
  EXPECT_EQ(scan->records[0].type, RecordType::segment_header);
  EXPECT_EQ(scan->records[3].payload, commit_payload(3, 10 + (3 * 37) % 300));
  EXPECT_EQ(scan->valid_end, b.data.size());
  EXPECT_EQ(scan->damaged_bytes, 0u);
}

TEST(Log, EmptySegmentIsClean) {
  auto scan = scan_segment("", "seg");
  ASSERT_TRUE(scan);
  EXPECT_TRUE(scan->records.empty());
}

// RELIABILITY A5: the last 3 records x every byte offset x {truncate,
// zero-fill to 4 KiB, random garbage, stale bytes}. Damage confined to the
// final record is a torn tail (all earlier records kept); damage in an
// earlier record that leaves a later record intact is corruption and must
// refuse, never truncate.
TEST(Log, ExhaustiveTornTailOnTheLastThreeRecords) {
  const auto b = build(8);
  std::mt19937_64 rng(42);
  std::size_t cases = 0, torn = 0, refused = 0;
  for (std::size_t r = b.starts.size() - 3; r < b.starts.size(); ++r) {
    const std::size_t rec_start = b.starts[r];
    const std::size_t rec_end = r + 1 < b.starts.size() ? b.starts[r + 1] : b.data.size();
    for (std::size_t off = rec_start; off < rec_end; ++off) {
      for (int mode = 0; mode < 4; ++mode) {
        std::string d = b.data;
        bool later_records_intact = false;
        switch (mode) {
          case 0:  // truncate: everything after `off` is gone
            d.resize(off);
            break;
          case 1:  // zero-fill from `off` to a 4 KiB boundary (and past the end)
            d.resize(std::max(d.size(), (off / 4096 + 1) * 4096), '\0');
            std::fill(d.begin() + static_cast<std::ptrdiff_t>(off), d.end(), '\0');
            break;
          case 2:  // garbage over the rest of this record only
            for (std::size_t i = off; i < rec_end; ++i) d[i] = static_cast<char>(rng());
            later_records_intact = rec_end < b.data.size();
            break;
          case 3:  // stale bytes: an older version of the region (a different record's bytes)
            for (std::size_t i = off; i < rec_end; ++i) d[i] = b.data[(i - off + b.starts[0]) % rec_start];
            later_records_intact = rec_end < b.data.size();
            break;
        }
        if (d == b.data) continue;  // stale bytes that happen to equal the original
        ++cases;
        auto scan = scan_segment(d, "seg");
        if (later_records_intact) {
          ASSERT_FALSE(scan) << "mode " << mode << " offset " << off << ": mid-log damage must refuse";
          EXPECT_NE(scan.error().message.find("corruption in the middle of the log"), std::string::npos);
          EXPECT_NE(scan.error().message.find("byte " + std::to_string(rec_start)), std::string::npos)
              << scan.error().message;
          ++refused;
          continue;
        }
        ASSERT_TRUE(scan) << "mode " << mode << " offset " << off << ": " << scan.error().message;
        // Every record before the damaged one is kept; nothing partial is returned.
        ASSERT_EQ(scan->records.size(), r + 1) << "mode " << mode << " offset " << off;
        EXPECT_EQ(scan->valid_end, rec_start);
        // A record zeroed from its first byte is indistinguishable from (and
        // as harmless as) space reserved ahead: a clean zero tail.
        const bool zero_tail = d.find_first_not_of('\0', rec_start) == std::string::npos;
        EXPECT_EQ(scan->damaged_bytes, zero_tail ? 0 : d.size() - rec_start);
        EXPECT_EQ(scan->zero_bytes, zero_tail ? d.size() - rec_start : 0);
        ++torn;
      }
    }
  }
  std::printf("torn-tail cases: %zu (torn tails recovered: %zu, mid-log refusals: %zu)\n", cases, torn, refused);
  EXPECT_GT(cases, 1000u);
}

void mid_log_damage_checks() {
  auto b = build(10);
  for (std::size_t r = 0; r + 1 < b.starts.size(); ++r) {
    for (std::size_t bit = 0; bit < 8; ++bit) {
      std::string d = b.data;
      d[b.starts[r] + 12] = static_cast<char>(d[b.starts[r] + 12] ^ (1 << bit));
      auto scan = scan_segment(d, "seg");
      ASSERT_FALSE(scan) << "record " << r;
      EXPECT_EQ(scan.error().code, errc::corruption);
    }
  }
}


TEST(Log, ChecksumMismatchInTheMiddleRefuses) { mid_log_damage_checks(); }

// RELIABILITY H: the check above fails when recovery cuts the log at any
// damaged record (the truncate_at_any_damage mutant: silent loss of the
// acknowledged commits after it).
TEST(HarnessH, TruncatingAtAnyDamageIsCaught) {
  horizon::testing::expect_mutant_caught(mutant::Id::truncate_at_any_damage, mid_log_damage_checks);
}

TEST(Log, EveryBitFlipIsDetected) {
  // RELIABILITY A6 at the framing level: a single bit flip anywhere in any
  // record either refuses (mid-log) or is a torn tail of the final record;
  // it is never returned as a valid, different record.
  auto b = build(4);
  std::size_t detected = 0;
  for (std::size_t i = 0; i < b.data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string d = b.data;
      d[i] = static_cast<char>(d[i] ^ (1 << bit));
      auto scan = scan_segment(d, "seg");
      if (!scan) {
        ++detected;
        continue;
      }
      ASSERT_LT(scan->valid_end, d.size()) << "flip at " << i << " bit " << bit << " went unnoticed";
      for (const auto& rec : scan->records) {
        ASSERT_EQ(b.data.substr(rec.offset, kHeaderSize + rec.payload.size()),
                  d.substr(rec.offset, kHeaderSize + rec.payload.size()));
      }
      ++detected;
    }
  }
  EXPECT_EQ(detected, b.data.size() * 8);
}

// The engine zero-fills a segment ahead of its records (EngineOptions::
// wal_reserve_bytes): zeros after the last record are a clean end in any
// segment, zeros after a partial record are a torn tail, and a valid
// record after zeros is still corruption.
TEST(Log, ZeroTailIsACleanEndInAnySegment) {
  const auto b = build(5);
  auto scan = scan_segment(b.data + std::string(10000, '\0'), "seg");
  ASSERT_TRUE(scan) << scan.error().message;
  EXPECT_EQ(scan->records.size(), b.starts.size() + 1);  // and the header
  EXPECT_EQ(scan->valid_end, b.data.size());
  EXPECT_EQ(scan->zero_bytes, 10000u);
  EXPECT_EQ(scan->damaged_bytes, 0u);
  // Only zeros: a segment whose header never reached the disk.
  auto empty = scan_segment(std::string(4096, '\0'), "seg");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->records.empty());
  EXPECT_EQ(empty->zero_bytes, 4096u);

  // Half of the last record, then zeros: a torn tail (the engine cuts it
  // in the last segment; in any other the gap in the commit numbers before
  // the next segment refuses, see the engine's recovery).
  const std::string torn = b.data.substr(0, b.starts.back() + 7) + std::string(5000, '\0');
  auto t = scan_segment(torn, "seg");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->valid_end, b.starts.back());
  EXPECT_EQ(t->damaged_bytes, torn.size() - b.starts.back());
  EXPECT_EQ(t->zero_bytes, 0u);

  // A record zeroed out in the middle, a valid one after it: refuse.
  std::string hole = b.data;
  std::fill(hole.begin() + static_cast<std::ptrdiff_t>(b.starts[2]),
            hole.begin() + static_cast<std::ptrdiff_t>(b.starts[3]), '\0');
  auto h = scan_segment(hole + std::string(100, '\0'), "seg");
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("corruption in the middle of the log"), std::string::npos);
}

// A segment header announcing its first commit, then commits from there.
std::string segment(std::uint64_t first, std::uint64_t n, std::size_t extra) {
  std::string hdr("EHWAL\0\0\0", 8);
  put_u32(hdr, 1);
  put_u64(hdr, 9);  // segment number (not checked here)
  put_u64(hdr, first);
  std::string d = encode_record(RecordType::segment_header, hdr);
  for (std::uint64_t c = first; c < first + n; ++c) append_record(d, RecordType::commit, commit_payload(c, extra));
  return d;
}

// A recycled segment file: the new life's records overwrite the start of the
// old one's; what follows (older commits, an old header, the rest of a
// record cut in the middle) is stale and ends the segment, in any segment.
TEST(Log, StaleRecordsOfARecycledFileEndTheSegment) {
  const std::string old_life = segment(100, 40, 200);
  for (std::size_t n : {0u, 1u, 5u, 17u}) {
    std::string fresh = segment(500, n, 150);
    ASSERT_LT(fresh.size(), old_life.size());
    const std::string file = fresh + old_life.substr(fresh.size());
    auto scan = scan_segment(file, "wal/9.log", 499);
    ASSERT_TRUE(scan) << n << ": " << scan.error().message;
    EXPECT_EQ(scan->records.size(), n + 1) << n;
    EXPECT_EQ(scan->valid_end, fresh.size()) << n;
    EXPECT_EQ(scan->damaged_bytes, file.size() - fresh.size()) << n;
  }
  // Nothing new yet, and the header's block zeroed (recycle_segment): the
  // stale commits are at or below the floor, the segment has no header.
  const std::string headless = std::string(4096, '\0') + old_life;
  auto scan = scan_segment(headless, "wal/9.log", 499);
  ASSERT_TRUE(scan) << scan.error().message;
  EXPECT_TRUE(scan->records.empty());
  EXPECT_EQ(scan->damaged_bytes, headless.size());
  // Without the floor those commits would advance the log: corruption.
  EXPECT_FALSE(scan_segment(headless, "wal/9.log"));
  // A commit above the floor after the damage still proves corruption.
  std::string bad = segment(500, 3, 50);
  const std::size_t cut = bad.size();
  bad += std::string(30, 'x');
  append_record(bad, RecordType::commit, commit_payload(504, 50));
  EXPECT_FALSE(scan_segment(bad, "wal/9.log", 499));
  EXPECT_TRUE(scan_segment(bad.substr(0, cut) + std::string(30, 'x'), "wal/9.log", 499));
}

TEST(Log, UnknownTypeIsCorruptionButSafeToIgnoreTypesPass) {
  std::string d = encode_record(RecordType::segment_header, "h");
  d += encode_record(static_cast<RecordType>(0x81), "future");
  append_record(d, RecordType::commit, commit_payload(1, 3));
  auto ok = scan_segment(d, "seg");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->records.size(), 3u);
  std::string bad = encode_record(RecordType::segment_header, "h") + encode_record(static_cast<RecordType>(9), "x");
  auto scan = scan_segment(bad, "seg");
  ASSERT_FALSE(scan);
  EXPECT_NE(scan.error().message.find("unknown record type 9"), std::string::npos);
}

}  // namespace
}  // namespace horizon::wal
