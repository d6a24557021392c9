// RELIABILITY A6: corruption at rest. A data directory is built once (four
// streams, sealed and live chunks in chunk files, a snapshot, a WAL segment
// with commits after it), then every trial starts from a copy of it with one
// fault -- a single flipped bit, or a 4 KiB block zeroed, overwritten by a
// block from elsewhere (misdirected write) or restored to its content before
// the last checkpoint (lost write) -- in the WAL before its last record, a
// chunk file or the snapshot, opens the engine and reads every stream back.
// Oracle: a fault that changed bytes is detected (the engine refuses to open
// with `corruption`, or a read of the damaged chunk fails with `corruption`
// while every other stream reads back whole, and the scrub that runs first
// finds it); nothing is ever served that
// differs from what was acknowledged, and no stream silently ends early.
//
// The WAL's last record is left out on purpose: damage there is
// indistinguishable from a torn write, which recovery cuts and reports
// (RELIABILITY A5).

#include "wal/filename.h"
#include "wal/log.h"
#include "wal/sim_fs.h"
#include "writer/engine.h"
#include "writer/test_util.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace horizon::writer {
namespace {

using testing::append_req;
using testing::read_stream;
using testing::sn;

using Image = std::map<std::string, std::string>;  // path -> content

EngineOptions options() {
  EngineOptions o;
  o.background = false;
  o.server = "h";
  o.chunk_size = 4096;
  o.checkpoint_bytes = 1u << 30;  // only the explicit checkpoint
  o.wal_reserve_bytes = 8192;
  o.clock = [] { return Timestamp::parse("2026-11-28T12:00:00.000Z").value(); };
  return o;
}

Image image_of(wal::SimFs& fs) {
  Image out;
  for (std::string_view dir : {std::string_view(""), wal::kWalDir, wal::kChunkDir}) {
    auto names = fs.list(std::string(dir));
    if (!names) continue;
    for (const auto& name : *names) {
      const std::string path = dir.empty() ? name : std::string(dir) + "/" + name;
      out[path] = fs.read_all(path).value();
    }
  }
  return out;
}

// The streams appended to, in order of creation (after "/" and "/_sub").
const std::vector<StreamName>& streams() {
  static const std::vector<StreamName> s = {sn("/a"), sn("/b"), sn("/c"), sn("/a/d")};
  return s;
}

// Every stream, indexed by stream id - 1: ids are given in order of creation.
const std::vector<StreamName>& all_streams() {
  static const std::vector<StreamName> s = {StreamName::root(), sn("/_sub"), sn("/a"), sn("/b"), sn("/c"), sn("/a/d")};
  return s;
}

// The stream a chunk file belongs to.
StreamName owner(const std::string& path) {
  auto id = wal::parse_chunk_name(path.substr(wal::kChunkDir.size() + 1));
  EXPECT_TRUE(id && id->stream_id >= 1 && id->stream_id <= all_streams().size()) << path;
  return id ? all_streams().at(static_cast<std::size_t>(id->stream_id - 1)) : StreamName::root();
}

// Every line of every stream, meta lines included, as read back.
using Contents = std::map<StreamName, std::vector<std::string>>;

struct Baseline {
  Image before_checkpoint_write;  // the image after phase 1, before its checkpoint
  Image final;
  Contents contents;
  std::map<StreamName, std::vector<std::string>> acked;  // application lines
  std::string wal_path;
  std::uint64_t wal_middle_end = 0;  // offset of the last WAL record
};

Baseline build_baseline() {
  Baseline b;
  wal::SimFs fs(1);
  auto e = std::move(Engine::open(fs, options()).value());
  for (const auto& s : streams()) EXPECT_TRUE(e->create_stream_sync(s));
  std::mt19937_64 rng(6);
  auto phase = [&](int appends, const char* tag) {
    for (int i = 0; i < appends; ++i) {
      const StreamName& s = streams()[rng() % streams().size()];
      std::vector<std::string> lines;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < n; ++k) {
        lines.push_back(fmt::format("{}-{}-{}-{}", tag, i, k, std::string(20 + rng() % 80, static_cast<char>('a' + rng() % 26))));
      }
      EXPECT_TRUE(e->append_sync(append_req(s, lines)));
      auto& acked = b.acked[s];
      acked.insert(acked.end(), lines.begin(), lines.end());
    }
  };
  phase(160, "one");
  b.before_checkpoint_write = image_of(fs);
  EXPECT_TRUE(e->checkpoint());
  phase(80, "two");
  e.reset();  // a kill: the WAL holds phase two
  b.final = image_of(fs);

  for (const auto& [path, content] : b.final) {
    if (!path.starts_with(std::string(wal::kWalDir) + "/") || !wal::parse_segment_name(path.substr(wal::kWalDir.size() + 1))) continue;
    EXPECT_TRUE(b.wal_path.empty()) << "one WAL segment expected";
    b.wal_path = path;
    auto scan = wal::scan_segment(content, path).value();
    EXPECT_GE(scan.records.size(), 40u);
    b.wal_middle_end = scan.records.back().offset;
  }

  wal::SimFs copy(2);
  for (const auto& [path, content] : b.final) copy.set_content(path, content);
  auto again = std::move(Engine::open(copy, options()).value());
  for (const auto& s : all_streams()) {
    auto lines = read_stream(*again, s).value();
    std::vector<std::string> regular;
    for (const auto& l : lines) {
      b.contents[s].push_back(l.line.is_meta() ? "/" + l.line.meta_type + " " + l.line.content : l.line.content);
      if (!l.line.is_meta()) regular.push_back(l.line.content);
    }
    EXPECT_EQ(regular, b.acked[s]) << s.str();
  }
  // The id order holds: each stream's chunk files hold only its own lines.
  for (const auto& [path, content] : b.final) {
    if (!path.starts_with(std::string(wal::kChunkDir) + "/")) continue;
    for (const auto& [s, lines] : b.acked) {
      for (const auto& l : lines) {
        EXPECT_TRUE(s == owner(path) || content.find(" " + l + "\n") == std::string::npos) << path << " " << l;
      }
    }
  }
  return b;
}

enum class Fault { bit_flip, zero_block, misdirected_block, lost_write };

const char* name(Fault f) {
  switch (f) {
    case Fault::bit_flip: return "bit flip";
    case Fault::zero_block: return "zeroed block";
    case Fault::misdirected_block: return "misdirected block";
    case Fault::lost_write: return "lost write";
  }
  return "?";
}

struct Target {
  std::string path;
  std::uint64_t limit;  // faults stay below this offset
  enum Kind { wal, chunk, snapshot } kind;
};

struct Tally {
  std::uint64_t trials = 0, unchanged = 0, refused_to_open = 0, detected_on_read = 0;
  std::uint64_t served_corrupt = 0, undetected = 0;
};

TEST(CorruptionA6, EveryFaultAtRestIsDetectedAndNothingCorruptIsServed) {
  const Baseline b = build_baseline();
  ASSERT_FALSE(b.wal_path.empty());
  std::vector<Target> by_kind[3];
  for (const auto& [path, content] : b.final) {
    if (path == b.wal_path) {
      by_kind[Target::wal].push_back({path, b.wal_middle_end, Target::wal});
    } else if (path.starts_with(std::string(wal::kChunkDir) + "/") && !content.empty()) {
      by_kind[Target::chunk].push_back({path, content.size(), Target::chunk});
    } else if (path == wal::kSnapshotFile) {
      by_kind[Target::snapshot].push_back({path, content.size(), Target::snapshot});
    }
  }
  ASSERT_EQ(by_kind[Target::wal].size(), 1u);
  ASSERT_GE(by_kind[Target::chunk].size(), 8u) << "sealed and live chunks of four streams";
  ASSERT_EQ(by_kind[Target::snapshot].size(), 1u);
  std::map<Fault, Tally> tallies;
  std::mt19937_64 rng(2026);
  constexpr int kBitFlips = 10'000, kBlockFaults = 1'000;
  for (int trial = 0; trial < kBitFlips + kBlockFaults; ++trial) {
    const Fault fault = trial < kBitFlips ? Fault::bit_flip : static_cast<Fault>(1 + trial % 3);
    const auto& kind = by_kind[rng() % 3];
    const Target& t = kind[rng() % kind.size()];
    const std::string& original = b.final.at(t.path);
    std::uint64_t at = 0;
    std::string bytes;
    if (fault == Fault::bit_flip) {
      at = rng() % t.limit;
      bytes = std::string(1, static_cast<char>(original[at] ^ (1 << (rng() % 8))));
    } else {
      at = (rng() % ((t.limit + 4095) / 4096)) * 4096;
      const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(4096, t.limit - at));
      if (fault == Fault::zero_block) {
        bytes.assign(len, '\0');
      } else if (fault == Fault::misdirected_block) {
        auto src = b.final.begin();
        std::advance(src, static_cast<long>(rng() % b.final.size()));
        const std::uint64_t from = src->second.empty() ? 0 : (rng() % ((src->second.size() + 4095) / 4096)) * 4096;
        bytes = src->second.substr(std::min<std::size_t>(from, src->second.size()), len);
        bytes.resize(len, '\0');
      } else {
        auto old = b.before_checkpoint_write.find(t.path);
        const std::string prior = old == b.before_checkpoint_write.end() ? std::string() : old->second;
        bytes = at < prior.size() ? prior.substr(at, len) : std::string();
        bytes.resize(len, '\0');
      }
    }
    Tally& tally = tallies[fault];
    ++tally.trials;
    const bool changed = original.compare(at, bytes.size(), bytes) != 0;
    if (!changed) ++tally.unchanged;

    wal::SimFs fs(static_cast<std::uint64_t>(trial));
    for (const auto& [path, content] : b.final) fs.set_content(path, content);
    fs.corrupt(t.path, at, bytes);
    const std::string what = fmt::format("trial {}: {} at {} of {} ({} bytes)", trial, name(fault), at, t.path,
                                         bytes.size());
    auto e = Engine::open(fs, options());
    if (!e) {
      EXPECT_EQ(e.error().code, errc::corruption) << what << ": " << e.error().message;
      EXPECT_TRUE(changed) << what << ": an unchanged directory was refused: " << e.error().message;
      ++tally.refused_to_open;
      continue;
    }
    // The scrub finds a damaged chunk file before anything reads it.
    const auto scrub = (*e)->scrub([](const auto&) { return true; });
    EXPECT_EQ(scrub.errors, 0u) << what;
    EXPECT_EQ(scrub.damaged, t.kind == Target::chunk && changed ? 1u : 0u) << what;
    int failed_streams = 0;
    bool wrong = false;
    StreamName failed = StreamName::root();
    for (const auto& s : all_streams()) {
      auto lines = read_stream(**e, s);
      if (!lines) {
        EXPECT_EQ(lines.error().code, errc::corruption) << what << ": " << s.str() << ": " << lines.error().message;
        ++failed_streams;
        failed = s;
        continue;
      }
      std::vector<std::string> got;
      for (const auto& l : *lines) got.push_back(l.line.is_meta() ? "/" + l.line.meta_type + " " + l.line.content : l.line.content);
      if (got != b.contents.at(s)) {
        wrong = true;
        ADD_FAILURE() << what << ": " << s.str() << " served " << got.size() << " lines that differ from the "
                      << b.contents.at(s).size() << " acknowledged (served corrupt or cut short)";
      }
    }
    if (wrong) ++tally.served_corrupt;
    if (failed_streams > 0) {
      ++tally.detected_on_read;
      EXPECT_EQ(failed_streams, 1) << what << ": only the damaged stream may fail";
      EXPECT_EQ(t.kind, Target::chunk) << what;
      if (t.kind == Target::chunk) {
        EXPECT_EQ(failed, owner(t.path)) << what;
      }
    } else if (changed && !wrong) {
      ++tally.undetected;
      ADD_FAILURE() << what << ": changed bytes, yet the engine opened and served everything as acknowledged";
    }
    if (::testing::Test::HasFailure()) break;  // one failing trial says enough
  }
  for (const auto& [fault, t] : tallies) {
    fmt::print("A6 {:>18}: {:>6} trials, {:>4} changed nothing, {:>5} refused at open, {:>5} quarantined by the "
               "scrub and failing reads, "
               "{} served corrupt, {} undetected\n",
               name(fault), t.trials, t.unchanged, t.refused_to_open, t.detected_on_read, t.served_corrupt,
               t.undetected);
    EXPECT_EQ(t.served_corrupt, 0u);
    EXPECT_EQ(t.undetected, 0u);
  }
}

}  // namespace
}  // namespace horizon::writer
