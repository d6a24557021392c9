#include "writer/engine.h"

#include "wal/failpoint.h"
#include "wal/filename.h"
#include "wal/forwarding_fs.h"
#include "wal/log.h"
#include "wal/sim_fs.h"
#include "writer/test_util.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace horizon::writer {
namespace {

using testing::append_req;
using testing::read_stream;
using testing::sn;

EngineOptions manual(std::uint64_t chunk_size = 8u << 20) {
  EngineOptions o;
  o.background = false;
  o.server = "127.0.0.1";
  o.chunk_size = chunk_size;
  o.clock = [] { return Timestamp::parse("2017-03-31T11:09:00.643Z").value(); };
  return o;
}

std::vector<std::string> contents(const std::vector<testing::ReadLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.line.is_meta() ? "/" + l.line.meta_type : l.line.content);
  return out;
}

TEST(Engine, FreshDirectoryBootstrapsRootAndSub) {
  wal::SimFs fs(1);
  auto e = Engine::open(fs, manual());
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE((*e)->recovery().fresh);
  EXPECT_EQ((*e)->stream_names(), (std::vector<StreamName>{sn("/"), sn("/_sub")}));
  auto root = read_stream(**e, sn("/"));
  ASSERT_TRUE(root);
  ASSERT_EQ(root->size(), 2u);
  EXPECT_EQ(root->at(0).line.encode(),
            "/Created {\"subscription_ids\":[],\"ts\":\"2017-03-31T11:09:00.643Z\"}\n");
  EXPECT_EQ(root->at(1).line.encode(),
            "/ChildStreamCreated {\"name\":\"/_sub\",\"cursor\":\"/_sub:0:0:127.0.0.1\",\"ts\":"
            "\"2017-03-31T11:09:00.643Z\"}\n");
}

TEST(Engine, CreateAppendReadAndErrors) {
  wal::SimFs fs(2);
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/tenants")));
  ASSERT_TRUE(e->create_stream_sync(sn("/tenants/acme")));
  auto exists = e->create_stream_sync(sn("/tenants"));
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().code, errc::stream_exists);
  auto orphan = e->create_stream_sync(sn("/nope/child"));
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code, errc::parent_not_found);
  EXPECT_NE(orphan.error().message.find("parent stream /nope does not exist"), std::string::npos);

  auto a = e->append_sync(append_req(sn("/tenants/acme"), {"l1", "l2"}));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_FALSE(a->conflict);
  // Created is 65 bytes; " l1\n" and " l2\n" are 4 each.
  EXPECT_EQ(a->offset.to_string(), "/tenants/acme:0:73:127.0.0.1");
  auto missing = e->append_sync(append_req(sn("/nope"), {"x"}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::stream_not_found);

  auto lines = read_stream(*e, sn("/tenants/acme"));
  ASSERT_TRUE(lines);
  EXPECT_EQ(contents(*lines), (std::vector<std::string>{"/Created", "l1", "l2"}));
  EXPECT_EQ(lines->back().after, a->offset);
  auto parent = read_stream(*e, sn("/tenants"));
  ASSERT_TRUE(parent);
  EXPECT_EQ(contents(*parent), (std::vector<std::string>{"/Created", "/ChildStreamCreated"}));

  // Reads: from the middle, limits, errors.
  auto part = e->read(Cursor::parse("/tenants/acme:0:65").value(), 1);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->bytes, " l1\n");
  EXPECT_EQ(part->next.to_string(), "/tenants/acme:0:69:127.0.0.1");
  auto mid = e->read(Cursor::parse("/tenants/acme:0:66").value(), 1);
  ASSERT_FALSE(mid);
  EXPECT_EQ(mid.error().code, errc::invalid_cursor);
  auto beyond = e->read(Cursor::parse("/tenants/acme:0:74").value(), 1);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, errc::invalid_cursor);
  auto at_end = e->read(Cursor::parse("/tenants/acme:0:73").value(), 10);
  ASSERT_TRUE(at_end);
  EXPECT_EQ(at_end->lines, 0u);
  auto no_chunk = e->read(Cursor::parse("/tenants/acme:1:0").value(), 1);
  ASSERT_FALSE(no_chunk);
  EXPECT_EQ(no_chunk.error().code, errc::chunk_not_found);
}

TEST(Engine, AfterPreconditionAndEmptyAppend) {
  wal::SimFs fs(3);
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  auto end = e->end_of(sn("/a")).value();
  auto ok = e->append_sync(append_req(sn("/a"), {"x"}, end));
  ASSERT_TRUE(ok);
  EXPECT_FALSE(ok->conflict);
  auto stale = e->append_sync(append_req(sn("/a"), {"y"}, end));
  ASSERT_TRUE(stale);
  EXPECT_TRUE(stale->conflict);
  EXPECT_EQ(stale->offset, ok->offset);  // the current end
  auto chained = e->append_sync(append_req(sn("/a"), {"y"}, ok->offset));
  ASSERT_TRUE(chained);
  EXPECT_FALSE(chained->conflict);
  auto empty = e->append_sync(append_req(sn("/a"), {}));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->offset, chained->offset);
  EXPECT_EQ(contents(read_stream(*e, sn("/a")).value()), (std::vector<std::string>{"/Created", "x", "y"}));
}

TEST(Engine, RotationNeverSplitsABatchAndChainsChunks) {
  wal::SimFs fs(4);
  auto e = std::move(Engine::open(fs, manual(200)).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/_sub/s")));
  ASSERT_TRUE(e->create_stream_sync(sn("/r")));
  ASSERT_TRUE(e->subscribe_sync(sn("/r"), sn("/_sub/s")));
  std::vector<Cursor> acks;
  for (int i = 0; i < 20; ++i) {
    auto a = e->append_sync(append_req(sn("/r"), {"batch" + std::to_string(i) + "-a", "batch" + std::to_string(i) + "-b"}));
    ASSERT_TRUE(a);
    acks.push_back(a->offset);
    // The Offset of an append just before a rotation is still a valid After.
    auto next = e->append_sync(append_req(sn("/r"), {}, a->offset));
    ASSERT_TRUE(next);
    EXPECT_FALSE(next->conflict) << i;
  }
  auto lines = read_stream(*e, sn("/r")).value();
  std::int64_t last_chunk = 0;
  std::size_t rotations = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (l.line.meta_type == "Rotated") {
      ++rotations;
      ASSERT_LT(i + 1, lines.size());
      ASSERT_EQ(lines[i + 1].line.meta_type, "Created");
      auto created = lines[i + 1].line.meta().value();
      EXPECT_EQ(std::get<CreatedMeta>(created).subscription_ids, (std::vector<StreamName>{sn("/_sub/s")}));
    }
    if (l.line.content.ends_with("-a")) {
      ASSERT_LT(i + 1, lines.size());
      EXPECT_EQ(lines[i + 1].line.content, l.line.content.substr(0, l.line.content.size() - 2) + "-b");
      EXPECT_EQ(lines[i + 1].after.chunk(), l.after.chunk()) << "batch split across chunks";
    }
    EXPECT_GE(l.after.chunk(), last_chunk);
    last_chunk = l.after.chunk();
  }
  EXPECT_GE(rotations, 3u);
  std::size_t sealed_r = 0;
  for (const auto& job : e->ship_queue()) sealed_r += job.stream == sn("/r") ? 1u : 0u;
  EXPECT_EQ(sealed_r, rotations);
  for (std::size_t i = 0; i < acks.size(); ++i) {
    auto it = std::find_if(lines.begin(), lines.end(), [&](const auto& l) {
      return l.line.content == "batch" + std::to_string(i) + "-b";
    });
    ASSERT_NE(it, lines.end());
    EXPECT_EQ(it->after, acks[i]);
  }
  // Shipping frees the local copy: liveread then says chunk_not_found.
  ASSERT_TRUE(e->mark_shipped_sync(sn("/r"), 0));
  ASSERT_TRUE(e->mark_shipped_sync(sn("/r"), 0));  // idempotent
  auto gone = e->read(Cursor::parse("/r:0:0").value(), 1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, errc::chunk_not_found);
  EXPECT_FALSE(fs.exists(wal::chunk_path(2 + 2, 0)).value());
}

TEST(Engine, SubscribeIsIdempotentAndValidated) {
  wal::SimFs fs(5);
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  ASSERT_TRUE(e->create_stream_sync(sn("/_sub/x")));
  ASSERT_TRUE(e->subscribe_sync(sn("/a"), sn("/_sub/x")));
  ASSERT_TRUE(e->subscribe_sync(sn("/a"), sn("/_sub/x")));
  EXPECT_EQ(e->subscriptions_of(sn("/a")).value(), (std::vector<StreamName>{sn("/_sub/x")}));
  EXPECT_EQ(contents(read_stream(*e, sn("/a")).value()), (std::vector<std::string>{"/Created", "/Subscribed"}));
  EXPECT_EQ(e->subscribe_sync(sn("/a"), sn("/_sub/none")).error().code, errc::subscription_not_found);
  EXPECT_EQ(e->subscribe_sync(sn("/none"), sn("/_sub/x")).error().code, errc::stream_not_found);
  EXPECT_EQ(e->subscribe_sync(sn("/a"), sn("/a")).error().code, errc::not_a_subscription);
  EXPECT_EQ(e->subscribe_sync(sn("/_sub/x"), sn("/_sub/x")).error().code, errc::subscription_loop);
  ASSERT_TRUE(e->unsubscribe_sync(sn("/a"), sn("/_sub/x")));
  ASSERT_TRUE(e->unsubscribe_sync(sn("/a"), sn("/_sub/x")));
  EXPECT_TRUE(e->subscriptions_of(sn("/a")).value().empty());
  EXPECT_EQ(contents(read_stream(*e, sn("/a")).value()),
            (std::vector<std::string>{"/Created", "/Subscribed", "/Unsubscribed"}));
}

std::vector<SubscriptionActivityMeta> activity_lines(const Engine& e, const char* sub) {
  std::vector<SubscriptionActivityMeta> out;
  for (const auto& l : read_stream(e, sn(sub)).value()) {
    if (l.line.meta_type == "SubscriptionActivity") out.push_back(std::get<SubscriptionActivityMeta>(l.line.meta().value()));
  }
  return out;
}

TEST(Engine, ActivityRoundListsEachChangedStreamOnceWithItsNewestCursor) {
  wal::SimFs fs(11);
  std::vector<Notification> notes;
  auto opts = manual();
  opts.on_notify = [&notes](const std::vector<Notification>& n) { notes.insert(notes.end(), n.begin(), n.end()); };
  auto e = std::move(Engine::open(fs, opts).value());
  for (const char* s : {"/a", "/b", "/c", "/_sub/x", "/_sub/y"}) ASSERT_TRUE(e->create_stream_sync(sn(s)));
  ASSERT_TRUE(e->subscribe_sync(sn("/a"), sn("/_sub/x")));
  ASSERT_TRUE(e->subscribe_sync(sn("/b"), sn("/_sub/x")));
  ASSERT_TRUE(e->subscribe_sync(sn("/b"), sn("/_sub/y")));
  ASSERT_TRUE(e->activity_round_sync());  // the Subscribed lines made /a and /b dirty
  notes.clear();
  ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {"1"})));
  auto a2 = e->append_sync(append_req(sn("/a"), {"2"})).value();
  auto b1 = e->append_sync(append_req(sn("/b"), {"1"})).value();
  ASSERT_TRUE(e->append_sync(append_req(sn("/c"), {"unsubscribed"})));
  // Pub/sub hints: one per (subscription, append), with the new end.
  ASSERT_EQ(notes.size(), 4u);
  EXPECT_EQ(notes[1].subscription, sn("/_sub/x"));
  EXPECT_EQ(notes[1].cursor, a2.offset);
  const auto before_x = activity_lines(*e, "/_sub/x").size();
  ASSERT_TRUE(e->activity_round_sync());
  auto x = activity_lines(*e, "/_sub/x");
  ASSERT_EQ(x.size(), before_x + 1);
  EXPECT_EQ(x.back().activity, (std::vector<Cursor>{a2.offset, b1.offset}));
  auto y = activity_lines(*e, "/_sub/y");
  ASSERT_FALSE(y.empty());
  EXPECT_EQ(y.back().activity, (std::vector<Cursor>{b1.offset}));
  // Nothing changed since: a round writes nothing.
  const auto end_x = e->end_of(sn("/_sub/x")).value();
  ASSERT_TRUE(e->activity_round_sync());
  EXPECT_EQ(e->end_of(sn("/_sub/x")).value(), end_x);
}

TEST(Engine, DirtyStreamsSurviveACrashAndAreAnnouncedOnce) {
  wal::SimFs fs(12);
  Cursor a1 = Cursor::beginning(sn("/a"));
  {
    auto e = std::move(Engine::open(fs, manual()).value());
    for (const char* s : {"/a", "/_sub/x"}) ASSERT_TRUE(e->create_stream_sync(sn(s)));
    ASSERT_TRUE(e->subscribe_sync(sn("/a"), sn("/_sub/x")));
    a1 = e->append_sync(append_req(sn("/a"), {"1"})).value().offset;
  }
  fs.restart();  // power cut before any activity round
  {
    auto e = std::move(Engine::open(fs, manual()).value());
    ASSERT_TRUE(e->activity_round_sync());
    auto x = activity_lines(*e, "/_sub/x");
    ASSERT_EQ(x.size(), 1u);
    EXPECT_EQ(x.back().activity, (std::vector<Cursor>{a1}));
  }
  fs.restart();  // and after the round: announced once, not again
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->activity_round_sync());
  EXPECT_EQ(activity_lines(*e, "/_sub/x").size(), 1u);
}

TEST(Engine, GroupCommitSharesOneSync) {
  wal::SimFs fs(6);
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  const auto before = e->stats().commits;
  std::vector<Result<AppendOutcome>> results;
  for (int i = 0; i < 50; ++i) {
    e->append(append_req(sn("/a"), {"l" + std::to_string(i)}),
              [&results](Result<AppendOutcome> r) { results.push_back(std::move(r)); });
  }
  EXPECT_TRUE(results.empty());  // nobody is answered before the sync
  ASSERT_TRUE(e->step());
  EXPECT_EQ(results.size(), 50u);
  EXPECT_EQ(e->stats().commits, before + 1);
}

TEST(Engine, RecoversAfterCleanCloseAndAfterKill) {
  wal::SimFs fs(7);
  {
    auto e = std::move(Engine::open(fs, manual(300)).value());
    ASSERT_TRUE(e->create_stream_sync(sn("/a")));
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {"x" + std::to_string(i)})));
    ASSERT_TRUE(e->close());
  }
  std::vector<std::string> expect;
  {
    auto e = std::move(Engine::open(fs, manual(300)).value());
    EXPECT_FALSE(e->recovery().fresh);
    EXPECT_EQ(e->recovery().commits_replayed, 0u);  // everything was in the snapshot
    for (int i = 30; i < 40; ++i) ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {"x" + std::to_string(i)})));
    expect = contents(read_stream(*e, sn("/a")).value());
  }  // no close: a kill
  fs.restart();  // and a power cut
  auto e = std::move(Engine::open(fs, manual(300)).value());
  EXPECT_EQ(e->recovery().commits_replayed, 10u);
  EXPECT_EQ(contents(read_stream(*e, sn("/a")).value()), expect);
}

TEST(Engine, MidLogCorruptionRefusesToStart) {
  wal::SimFs fs(8);
  {
    auto e = std::move(Engine::open(fs, manual()).value());
    ASSERT_TRUE(e->create_stream_sync(sn("/a")));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {"x"})));
  }
  const std::string seg = wal::segment_path(1);
  const std::string before = fs.read_all(seg).value();
  fs.corrupt(seg, 200, "\xff");
  auto e = Engine::open(fs, manual());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, errc::corruption);
  EXPECT_NE(e.error().message.find("refusing to start"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("wal/00000000000000000001.log"), std::string::npos) << e.error().message;
  EXPECT_EQ(fs.read_all(seg).value().size(), before.size());  // nothing truncated
}

TEST(Engine, CorruptSnapshotRefusesToStart) {
  wal::SimFs fs(9);
  {
    auto e = std::move(Engine::open(fs, manual()).value());
    ASSERT_TRUE(e->create_stream_sync(sn("/a")));
    ASSERT_TRUE(e->close());
  }
  fs.corrupt("snapshot", 30, "\x01");
  auto e = Engine::open(fs, manual());
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("snapshot"), std::string::npos);
}

TEST(Engine, FdatasyncFailureLatchesAndIsNeverRetried) {
  // RELIABILITY A7 at the engine level, for the k-th sync, k = 1..200.
  std::uint64_t latched = 0;
  for (std::uint64_t k = 1; k <= 200; ++k) {
    wal::SimFs fs(100 + k);
    std::set<std::string> acked;
    std::vector<std::string> reported;  // on_failure
    {
      auto opts = manual(400);
      opts.on_failure = [&reported](const Error& e) { reported.push_back(e.message); };
      auto e = std::move(Engine::open(fs, opts).value());
      ASSERT_TRUE(e->create_stream_sync(sn("/a")));
      fs.fail_sync(k, errc::storage_failed);
      bool failed_seen = false;
      for (int i = 0; i < 80; ++i) {
        if (i == 40) (void)e->checkpoint();  // checkpoint syncs count too
        const std::string line = "k" + std::to_string(k) + "-" + std::to_string(i);
        auto r = e->append_sync(append_req(sn("/a"), {line}));
        if (r) {
          ASSERT_FALSE(failed_seen) << "acknowledged after a failed fdatasync (k=" << k << ")";
          acked.insert(line);
        } else {
          EXPECT_EQ(r.error().code, errc::storage_failed);
          failed_seen = true;
        }
      }
      EXPECT_EQ(reported.size(), e->failed() ? 1u : 0u);  // once, when it latched
      if (!reported.empty()) {
        EXPECT_EQ(reported.front(), e->failure()->message);
        EXPECT_NE(reported.front().find("Input/output error"), std::string::npos) << reported.front();
      }
      if (failed_seen) {
        ++latched;
        EXPECT_TRUE(e->failed());
        EXPECT_TRUE(read_stream(*e, sn("/a")));  // reads keep working
        EXPECT_FALSE(e->create_stream_sync(sn("/b")));
      }
    }
    fs.restart();
    auto e = Engine::open(fs, manual(400));
    ASSERT_TRUE(e) << e.error().message;
    auto lines = contents(read_stream(**e, sn("/a")).value());
    for (const auto& l : acked) EXPECT_NE(std::find(lines.begin(), lines.end(), l), lines.end()) << l;
  }
  EXPECT_GE(latched, 75u);  // the k-th sync fell inside the 80 appends for most k
}

TEST(Engine, DiskFullIsACleanErrorAndResumes) {
  // RELIABILITY A9: ENOSPC -> disk_full, no corrupt tail, reads continue,
  // writes resume when space returns, and a restart while full succeeds.
  // Appends go on while their WAL records fit into the space reserved
  // ahead (their chunk bytes wait in memory); then they fail cleanly.
  wal::SimFs fs(10);
  auto opts = manual(1u << 20);
  opts.wal_reserve_bytes = 16 * 1024;
  std::vector<std::string> checkpoints;  // on_checkpoint: "ok" or the error code
  opts.on_checkpoint = [&checkpoints](double seconds, const Error* e) {
    EXPECT_GE(seconds, 0.0);
    checkpoints.push_back(e == nullptr ? "ok" : std::string(info(e->code).wire_code));
  };
  opts.on_failure = [](const Error& e) { ADD_FAILURE() << "latched: " << e.message; };
  auto e = std::move(Engine::open(fs, opts).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  std::vector<std::string> acked;
  const std::string pad(1000, 'p');
  for (int cycle = 0; cycle < 20; ++cycle) {
    fs.set_capacity(1);  // anything that grows a file fails
    bool full = false;
    for (int i = 0; i < 100 && !full; ++i) {
      const std::string line = fmt::format("full{}-{}-{}", cycle, i, pad);
      auto r = e->append_sync(append_req(sn("/a"), {line}));
      if (r) {
        acked.push_back(line);
        continue;
      }
      EXPECT_EQ(r.error().code, errc::disk_full);
      full = true;
    }
    ASSERT_TRUE(full) << "cycle " << cycle << ": 100 KB went into a 16 KiB reservation";
    EXPECT_FALSE(e->failed());
    auto lines = read_stream(*e, sn("/a"));  // reads go on, and see every acknowledged line
    ASSERT_TRUE(lines);
    EXPECT_EQ(contents(*lines).back(), acked.back());
    auto cp = e->checkpoint();  // a checkpoint on a full disk fails cleanly, not sticky
    ASSERT_FALSE(cp);
    EXPECT_EQ(cp.error().code, errc::disk_full);
    EXPECT_FALSE(e->failed());
    ASSERT_FALSE(checkpoints.empty());
    EXPECT_EQ(checkpoints.back(), info(errc::disk_full).wire_code);
    fs.clear_capacity();
    auto ok = e->append_sync(append_req(sn("/a"), {"ok" + std::to_string(cycle)}));
    ASSERT_TRUE(ok) << ok.error().message;
    acked.push_back("ok" + std::to_string(cycle));
  }
  ASSERT_TRUE(e->checkpoint());
  EXPECT_EQ(checkpoints.back(), "ok");
  EXPECT_EQ(checkpoints.size(), 21u);
  e.reset();
  fs.set_capacity(1);
  fs.restart_clean();
  auto again = Engine::open(fs, manual(1u << 20));
  ASSERT_TRUE(again) << "restart while the disk is full: " << again.error().message;
  auto lines = contents(read_stream(**again, sn("/a")).value());
  std::vector<std::string> regular(lines.begin() + 1, lines.end());
  EXPECT_EQ(regular, acked);
}

std::size_t segment_count(wal::SimFs& fs) {
  std::size_t n = 0;
  for (const auto& name : fs.list(std::string(wal::kWalDir)).value()) if (wal::parse_segment_name(name)) ++n;
  return n;
}

// Queues an append without ever committing on the calling thread.
std::future<Result<AppendOutcome>> append_async(Engine& e, const StreamName& s, std::string line) {
  auto done = std::make_shared<std::promise<Result<AppendOutcome>>>();
  auto f = done->get_future();
  e.append(append_req(s, {std::move(line)}), [done](Result<AppendOutcome> r) { done->set_value(std::move(r)); });
  return f;
}

// Appends one line (never committing on this thread); whether it was
// acknowledged within `limit`.
bool acked_within(Engine& e, const StreamName& s, std::string line, std::chrono::seconds limit) {
  auto r = append_async(e, s, std::move(line));
  return r.wait_for(limit) == std::future_status::ready && r.get().has_value();
}

// Options for an engine with a commit thread whose first checkpoint holds
// its second half (on the checkpoint thread) until open() -- and then, with
// crash_after, dies there like the process would in a power loss. Opens
// itself on destruction so that a failing test never leaves a thread
// waiting (declare it after the engine's unique_ptr).
class HeldCheckpoint {
 public:
  explicit HeldCheckpoint(bool crash_after) : crash_after_(crash_after) {}
  ~HeldCheckpoint() { open(); }

  EngineOptions options() {
    EngineOptions o;
    o.server = "h";
    o.checkpoint_bytes = 4096;
    o.on_checkpoint = [this](double seconds, const Error* e) {
      std::lock_guard lock(mu_);
      reports_.emplace_back(seconds, e == nullptr ? "ok" : e->message);
    };
    o.on_checkpoint_finish = [this] {
      if (calls_++ != 0) return;
      entered_.set_value();
      released_.wait();
      if (crash_after_) throw failpoint::SimulatedCrash{"test: power loss during the checkpoint"};
    };
    return o;
  }
  // Appends lines made by `line(i)` to the stream `stream(i)` one by one
  // until a checkpoint is held; false (after a test failure) if none began.
  template <class Stream, class Line>
  bool append_until_held(Engine& e, std::vector<std::string>& acked, Stream stream, Line line) {
    for (int i = 0; i < 1000; ++i) {
      if (in_checkpoint_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return true;
      acked.push_back(line(i));
      if (!acked_within(e, stream(i), acked.back(), std::chrono::seconds(10))) {
        ADD_FAILURE() << "append " << i << " before the checkpoint failed or hung";
        return false;
      }
    }
    ADD_FAILURE() << "no checkpoint began";
    return false;
  }
  void open() {
    std::call_once(opened_, [this] { release_.set_value(); });
  }
  int calls() const { return calls_.load(); }
  // on_checkpoint so far: (seconds, "ok" or the error).
  std::vector<std::pair<double, std::string>> reports() {
    std::lock_guard lock(mu_);
    return reports_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<double, std::string>> reports_;
  const bool crash_after_;
  std::promise<void> entered_, release_;
  std::future<void> in_checkpoint_ = entered_.get_future();
  std::shared_future<void> released_ = release_.get_future().share();
  std::once_flag opened_;
  std::atomic<int> calls_{0};
};

// A checkpoint that the WAL size triggers does its slow half (chunk file
// syncs, snapshot, segment removal) on the checkpoint thread: appends are
// acknowledged while that half is held up, only one checkpoint is in flight,
// and once it is released it completes and drops the old segments.
TEST(Engine, SizeTriggeredCheckpointFinishesBesideCommits) {
  wal::SimFs fs(14);
  std::unique_ptr<Engine> e;
  HeldCheckpoint held(false);
  std::vector<std::string> acked;
  e = std::move(Engine::open(fs, held.options()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  ASSERT_TRUE(held.append_until_held(
      *e, acked, [](int) { return sn("/a"); },
      [](int i) { return fmt::format("before-{}-{}", i, std::string(100, 'b')); }));
  // Held up: commits go on, well past the threshold again.
  bool all_answered = true;
  for (int i = 0; i < 200 && all_answered; ++i) {
    acked.push_back(fmt::format("during-{}-{}", i, std::string(100, 'd')));
    all_answered = acked_within(*e, sn("/a"), acked.back(), std::chrono::seconds(5));
  }
  EXPECT_TRUE(all_answered) << "appends waited for the checkpoint";
  EXPECT_EQ(held.calls(), 1);
  EXPECT_EQ(e->stats().checkpoints, 0u);
  EXPECT_GE(segment_count(fs), 2u);  // the old one stays until the snapshot is in place
  held.open();
  for (int i = 0; i < 1000 && e->stats().checkpoints == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(e->stats().checkpoints, 1u);
  ASSERT_TRUE(e->close());
  EXPECT_EQ(segment_count(fs), 1u);
  // Reported with both halves' duration: the held one took as long as the
  // 200 appends above at least.
  const auto reports = held.reports();
  ASSERT_GE(reports.size(), 2u);  // the held one (and later ones), the one at close
  EXPECT_EQ(reports.front().second, "ok");
  EXPECT_GT(reports.front().first, 0.0);
  e.reset();
  fs.restart();
  auto again = std::move(Engine::open(fs, manual()).value());
  EXPECT_LT(again->recovery().commits_replayed, 10u);
  auto lines = contents(read_stream(*again, sn("/a")).value());
  EXPECT_EQ(std::vector<std::string>(lines.begin() + 1, lines.end()), acked);
}

// A power loss while a background checkpoint is in flight (new segment
// started, chunk files not yet synced, old snapshot still in place) loses
// nothing acknowledged: recovery replays the old segments and the new one.
TEST(Engine, PowerLossDuringABackgroundCheckpointLosesNothing) {
  wal::SimFs fs(15);
  std::unique_ptr<Engine> e;
  HeldCheckpoint held(true);
  std::vector<std::string> acked;
  {
    e = std::move(Engine::open(fs, held.options()).value());
    ASSERT_TRUE(e->create_stream_sync(sn("/a")));
    ASSERT_TRUE(e->create_stream_sync(sn("/b")));
    ASSERT_TRUE(held.append_until_held(
        *e, acked, [](int i) { return sn(i % 2 ? "/a" : "/b"); },
        [](int i) { return fmt::format("{}-before-{}-{}", i % 2 ? "/a" : "/b", i, std::string(100, 'b')); }));
    for (int i = 0; i < 50; ++i) {
      acked.push_back(fmt::format("{}-during-{}-{}", i % 2 ? "/a" : "/b", i, std::string(100, 'd')));
      ASSERT_TRUE(acked_within(*e, sn(i % 2 ? "/a" : "/b"), acked.back(), std::chrono::seconds(10)));
    }
    fs.restart();  // power loss: only what was synced survives
    held.open();
    e.reset();
  }
  e = std::move(Engine::open(fs, manual()).value());
  EXPECT_GT(e->recovery().commits_replayed, 50u);
  for (const char* s : {"/a", "/b"}) {
    std::vector<std::string> want;
    for (const auto& l : acked) {
      if (l.starts_with(std::string(s) + "-")) want.push_back(l);
    }
    auto lines = contents(read_stream(*e, sn(s)).value());
    EXPECT_EQ(std::vector<std::string>(lines.begin() + 1, lines.end()), want) << s;
  }
}

// The WAL segment is zero-filled ahead of its records (fewer journal
// commits per fdatasync). The zero tail is a clean end after a crash and
// after a clean restart, new records continue right after the last one,
// and a commit that fits into reserved space still goes through when the
// disk fills up (the checkpoint then fails cleanly until space returns).
TEST(Engine, WalSpaceReservedAheadIsACleanEndAndIsReused) {
  wal::SimFs fs(11);
  auto opts = manual();
  opts.wal_reserve_bytes = 16 * 1024;
  opts.checkpoint_bytes = 1u << 30;  // one segment throughout
  std::vector<std::string> acked;
  auto seg_size = [&fs] {
    auto f = fs.open(wal::segment_path(1), wal::OpenMode::read_only);
    return f ? (*f)->size().value() : 0;
  };
  {
    auto e = std::move(Engine::open(fs, opts).value());
    ASSERT_TRUE(e->create_stream_sync(sn("/a")));
    for (int i = 0; i < 300; ++i) {
      acked.push_back(fmt::format("line-{}", i));
      ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
    }
  }
  // Crash: unsynced bytes are dropped; every acknowledged commit was synced.
  fs.restart();
  const auto size_after_crash = seg_size();
  for (int round = 0; round < 3; ++round) {
    auto e = std::move(Engine::open(fs, opts).value());
    EXPECT_EQ(e->recovery().torn_tail_bytes, 0u) << "round " << round;
    auto lines = contents(read_stream(*e, sn("/a")).value());
    EXPECT_EQ(std::vector<std::string>(lines.begin() + 1, lines.end()), acked) << "round " << round;
    for (int i = 0; i < 50; ++i) {
      acked.push_back(fmt::format("round-{}-{}", round, i));
      ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
    }
    e.reset();
    fs.restart();
  }
  // The file is longer than its records by a zero tail of at most one step
  // plus the margin at which the next step is added.
  EXPECT_GT(size_after_crash, 16u * 1024);
  {
    auto f = fs.open(wal::segment_path(1), wal::OpenMode::read_only).value();
    const std::string data = f->pread(0, seg_size()).value();
    auto scan = wal::scan_segment(data, "seg").value();
    EXPECT_EQ(scan.damaged_bytes, 0u);
    EXPECT_GT(scan.zero_bytes, 16u * 1024 / 4);
    EXPECT_LE(scan.zero_bytes, 16u * 1024);
    EXPECT_EQ(scan.records.size(), 1u + 3 + 450);  // header, /, /_sub and /a, the appends
  }

  // Disk full: the WAL record still fits into the reservation, so the
  // append goes through (its chunk bytes wait in memory, readable); the
  // checkpoint, which has to write them out, fails cleanly and succeeds
  // once space returns.
  auto e = std::move(Engine::open(fs, opts).value());
  fs.set_capacity(1);
  acked.push_back("while-full");
  ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
  EXPECT_EQ(contents(read_stream(*e, sn("/a")).value()).back(), "while-full");
  auto cp = e->checkpoint();
  ASSERT_FALSE(cp);
  EXPECT_EQ(cp.error().code, errc::disk_full);
  EXPECT_FALSE(e->failed());
  fs.clear_capacity();
  acked.push_back("after-full");
  ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
  ASSERT_TRUE(e->checkpoint());
  e.reset();
  fs.restart();
  auto last = std::move(Engine::open(fs, opts).value());
  auto lines = contents(read_stream(*last, sn("/a")).value());
  EXPECT_EQ(std::vector<std::string>(lines.begin() + 1, lines.end()), acked);
}

std::vector<std::string> chunk_files(wal::SimFs& fs) {
  auto names = fs.list(std::string(wal::kChunkDir)).value();
  std::sort(names.begin(), names.end());
  return names;
}

// The application lines among `contents` (meta lines start with '/').
std::vector<std::string> regular(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) if (!l.starts_with("/")) out.push_back(l);
  return out;
}

std::uint64_t file_size(wal::SimFs& fs, const std::string& path) {
  return fs.open(path, wal::OpenMode::read_only).value()->size().value();
}

// Committed chunk bytes wait in memory (the WAL has them) until a checkpoint
// writes them to the chunk files: a chunk shipped before that never gets a
// local file, each line reaches the disk once. Reads see every committed
// byte whether it is in a file, in memory or both within one chunk, and a
// power loss or restart puts the WAL's part back into memory.
TEST(Engine, ChunkBytesReachTheirFilesAtTheCheckpointOrNever) {
  wal::SimFs fs(13);
  auto opts = manual(4096);
  opts.checkpoint_bytes = 1u << 30;  // only the explicit checkpoints below
  auto e = std::move(Engine::open(fs, opts).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  ASSERT_TRUE(e->checkpoint());
  const auto before = chunk_files(fs);  // "/", "/_sub" and "/a", each its empty first chunk
  std::vector<std::string> acked;
  auto append = [&](const std::string& tag, int n) {
    for (int i = 0; i < n; ++i) {
      acked.push_back(fmt::format("{}-{:03}-{}", tag, i, std::string(90, 'x')));
      ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
    }
  };
  EXPECT_EQ(e->chunk_memory_bytes(), 0u);
  append("one", 100);  // about 10 KB: chunks 0 and 1 sealed, chunk 2 open
  EXPECT_GT(e->chunk_memory_bytes(), 100u * 100);
  auto jobs = e->ship_queue();
  ASSERT_GE(jobs.size(), 2u);
  EXPECT_EQ(chunk_files(fs), before) << "no chunk bytes are written before a checkpoint";
  auto lines = contents(read_stream(*e, sn("/a")).value());
  EXPECT_EQ(regular(lines), acked) << "reads come from memory";

  // Chunk 0 ships before the checkpoint: it is never written locally.
  testing::ShippedChunks shipped;
  const std::string sealed0 = e->read_sealed_chunk(sn("/a"), 0).value();
  EXPECT_EQ(sealed0.size(), jobs[0].size);
  shipped.emplace(std::make_pair(sn("/a"), std::int64_t{0}), sealed0);
  ASSERT_TRUE(e->mark_shipped_sync(sn("/a"), 0));
  const std::string chunk0 = wal::chunk_path(jobs[0].stream_id, 0);
  ASSERT_TRUE(e->checkpoint());
  EXPECT_EQ(e->chunk_memory_bytes(), 0u) << "the checkpoint wrote everything out";
  EXPECT_FALSE(fs.exists(chunk0).value());
  const std::string chunk1 = wal::chunk_path(jobs[0].stream_id, 1);
  EXPECT_EQ(file_size(fs, chunk1), jobs[1].size) << "the sealed, unshipped chunk is written whole";

  // More appends: the open chunk is now part file, part memory; a read
  // that starts in the file and runs into memory returns both.
  const std::uint64_t open_chunk = jobs.back().chunk_no + 1;
  const std::string open_path = wal::chunk_path(jobs[0].stream_id, open_chunk);
  const std::uint64_t in_file = file_size(fs, open_path);
  ASSERT_GT(in_file, 0u);
  append("two", 5);
  auto end = e->end_of(sn("/a")).value();
  ASSERT_EQ(static_cast<std::uint64_t>(end.chunk()), open_chunk) << "still the same chunk";
  EXPECT_EQ(file_size(fs, open_path), in_file);
  auto whole = e->read(Cursor(sn("/a"), end.chunk(), 0), 1000).value();
  EXPECT_EQ(whole.next, Cursor(sn("/a"), end.chunk(), end.offset(), "127.0.0.1"));
  EXPECT_NE(whole.bytes.find(acked.back()), std::string::npos);
  lines = contents(read_stream(*e, sn("/a"), &shipped).value());
  EXPECT_EQ(regular(lines), acked);

  // A half-written flush (garbage past the file's synced end) and a power
  // loss: recovery cuts the file where memory takes over, nothing is lost.
  e.reset();
  {
    auto f = fs.open(open_path, wal::OpenMode::read_write).value();
    ASSERT_TRUE(f->pwrite(std::string(300, '#'), in_file));
  }
  fs.restart();
  auto again = std::move(Engine::open(fs, opts).value());
  EXPECT_EQ(file_size(fs, open_path), in_file);
  lines = contents(read_stream(*again, sn("/a"), &shipped).value());
  EXPECT_EQ(regular(lines), acked);
  ASSERT_TRUE(again->checkpoint());
  EXPECT_EQ(file_size(fs, open_path), static_cast<std::uint64_t>(end.offset()));
  lines = contents(read_stream(*again, sn("/a"), &shipped).value());
  EXPECT_EQ(regular(lines), acked);
}

// RELIABILITY A6, reads: a chunk file damaged on disk is never served. The
// part of a chunk a read takes from its file is checked against the chunk's
// committed CRC32C first; a damaged chunk fails every read with a corruption
// error naming its file (reported once) and is not shipped; other chunks and
// streams serve as before.
TEST(Engine, ReadsNeverServeADamagedChunkFile) {
  wal::SimFs fs(17);
  auto opts = manual(4096);
  opts.checkpoint_bytes = 1u << 30;  // only the explicit checkpoints below
  std::vector<std::string> reported;
  opts.on_damaged_chunk = [&reported](const Error& e) { reported.push_back(e.message); };
  auto e = std::move(Engine::open(fs, opts).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  ASSERT_TRUE(e->create_stream_sync(sn("/b")));
  std::map<std::string, std::vector<std::string>> acked;
  auto append = [&](const char* stream, int n) {
    for (int i = 0; i < n; ++i) {
      auto& lines = acked[stream];
      lines.push_back(fmt::format("{}-{:03}-{}", stream + 1, lines.size(), std::string(90, 'x')));
      ASSERT_TRUE(e->append_sync(append_req(sn(stream), {lines.back()})));
    }
  };
  append("/a", 100);  // chunks 0 and 1 sealed, chunk 2 live
  append("/b", 10);
  ASSERT_TRUE(e->checkpoint());  // every byte in a chunk file now
  auto jobs = e->ship_queue();
  ASSERT_GE(jobs.size(), 2u);
  const std::uint64_t a_id = jobs[0].stream_id;
  const std::uint64_t b_id = a_id + 1;  // created next
  const std::string a0 = wal::chunk_path(a_id, 0);
  const std::string b_live = wal::chunk_path(b_id, 0);
  ASSERT_GT(file_size(fs, a0), 1000u);
  EXPECT_EQ(regular(contents(read_stream(*e, sn("/a")).value())), acked["/a"]) << "no false alarm";
  EXPECT_EQ(regular(contents(read_stream(*e, sn("/b")).value())), acked["/b"]);
  EXPECT_TRUE(reported.empty());

  auto flip = [&fs](const std::string& path, std::uint64_t at) {
    auto f = fs.open(path, wal::OpenMode::read_write).value();
    std::string byte = f->pread(at, 1).value();
    ASSERT_EQ(byte.size(), 1u);
    byte[0] = static_cast<char>(byte[0] ^ 0x01);  // 'x' -> 'y': still a valid line
    ASSERT_TRUE(f->pwrite(byte, at));
    ASSERT_TRUE(f->sync());
  };

  // Damaged at rest: a byte of sealed chunk 0 of /a flips while the Writer
  // is down.
  ASSERT_TRUE(e->close());
  e.reset();
  flip(a0, 1000);
  e = std::move(Engine::open(fs, opts).value());
  // The scrub finds it before any read: every held chunk checked, one damaged.
  const auto stopped = e->scrub([](const auto&) { return false; });
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.chunks, 0u);
  std::vector<std::uint64_t> progress;  // bytes checked before each chunk
  const auto scrubbed = e->scrub([&progress](const Engine::ScrubReport& so_far) {
    progress.push_back(so_far.bytes);
    return true;
  });
  EXPECT_EQ(progress.size(), scrubbed.chunks);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_GT(scrubbed.bytes, progress.back()) << "the report counts what it checked";
  EXPECT_FALSE(scrubbed.stopped);
  EXPECT_EQ(scrubbed.damaged, 1u);
  EXPECT_EQ(scrubbed.errors, 0u);
  EXPECT_EQ(scrubbed.chunks, jobs.size() + 4) << "the sealed chunks and the live chunks of /, /_sub, /a, /b";
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(e->scrub([](const auto&) { return true; }).damaged, 1u) << "still quarantined";
  EXPECT_EQ(reported.size(), 1u) << "reported once";
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = e->read(Cursor(sn("/a"), 0, 0), 1000);
    ASSERT_FALSE(r) << "served " << r->lines << " lines of a damaged chunk";
    EXPECT_EQ(r.error().code, errc::corruption);
    EXPECT_NE(r.error().message.find(a0), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("quarantined"), std::string::npos) << r.error().message;
  }
  // A cursor in the middle of the chunk, past the damage, is refused too.
  const auto line_len = static_cast<std::int64_t>(acked["/a"][0].size() + 2);
  const std::int64_t created_len = static_cast<std::int64_t>(e->read(Cursor(sn("/a"), 1, 0), 1).value().bytes.size());
  EXPECT_FALSE(e->read(Cursor(sn("/a"), 0, created_len + 20 * line_len), 1));
  ASSERT_EQ(reported.size(), 1u) << "reported once";
  EXPECT_NE(reported[0].find(a0), std::string::npos);
  auto sealed = e->read_sealed_chunk(sn("/a"), 0);
  ASSERT_FALSE(sealed) << "a damaged chunk is not shipped";
  EXPECT_EQ(sealed.error().code, errc::corruption);
  EXPECT_EQ(reported.size(), 1u);
  // The other chunks of /a and all of /b serve.
  EXPECT_TRUE(e->read(Cursor(sn("/a"), 1, 0), 1000));
  EXPECT_TRUE(e->read_sealed_chunk(sn("/a"), 1));
  EXPECT_EQ(regular(contents(read_stream(*e, sn("/b")).value())), acked["/b"]);

  // Damaged after a check: /b's live chunk was checked up to its file's
  // end; a checkpoint writes more of it and a byte of that new part flips.
  // The next read that reaches into the file checks the new part.
  const std::uint64_t checked = file_size(fs, b_live);
  append("/b", 10);
  ASSERT_TRUE(e->checkpoint());
  ASSERT_GT(file_size(fs, b_live), checked + 100);
  flip(b_live, checked + 50);
  auto r = e->read(Cursor(sn("/b"), 0, 0), 1000);
  ASSERT_FALSE(r) << "served the damaged new part";
  EXPECT_EQ(r.error().code, errc::corruption);
  EXPECT_NE(r.error().message.find(b_live), std::string::npos) << r.error().message;
  EXPECT_EQ(reported.size(), 2u);
  // Quarantined means every read of the chunk, also of bytes that are in
  // memory; appends go on (the WAL holds them).
  const auto end = e->end_of(sn("/b")).value();
  append("/b", 1);
  auto tail = e->read(end, 10);
  ASSERT_FALSE(tail);
  EXPECT_EQ(tail.error().code, errc::corruption);
  EXPECT_EQ(reported.size(), 2u);
}

// on_seal fires after each commit that sealed chunks (the Writer wakes the
// shipper with it), and only then.
TEST(Engine, OnSealFiresForCommitsThatSealChunks) {
  wal::SimFs fs(14);
  auto opts = manual(1000);
  int seals = 0;
  opts.on_seal = [&seals] { ++seals; };
  auto e = std::move(Engine::open(fs, opts).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  EXPECT_EQ(seals, 0);
  std::size_t sealed = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {std::string(90, 'x')})));
    const std::size_t now = e->ship_queue().size();
    EXPECT_EQ(seals, static_cast<int>(now)) << "append " << i;
    sealed = now;
  }
  EXPECT_GE(sealed, 3u);
}

std::vector<std::uint64_t> segment_numbers(wal::SimFs& fs) {
  std::vector<std::uint64_t> out;
  for (const auto& n : fs.list(std::string(wal::kWalDir)).value()) {
    if (auto no = wal::parse_segment_name(n)) out.push_back(*no);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A checkpoint keeps the newest segment file it deletes and the next
// segment is renamed from it: allocated and written, so commits only
// overwrite (no zeros reserved on the way). Its stale records end the log
// at recovery, after a clean restart and after a power loss.
TEST(Engine, CheckpointsRecycleSegmentFiles) {
  wal::SimFs fs(15);
  auto opts = manual();
  opts.checkpoint_bytes = 64 * 1024;
  opts.wal_reserve_bytes = 16 * 1024;
  std::vector<std::string> acked;
  auto e = std::move(Engine::open(fs, opts).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  std::uint64_t recycled_seen = 0;
  for (int i = 0; i < 3000; ++i) {
    acked.push_back(fmt::format("line-{:05}-{}", i, std::string(100, 'r')));
    ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
    if (fs.exists(std::string(wal::kRecycledSegmentFile)).value()) ++recycled_seen;
  }
  EXPECT_GT(recycled_seen, 0u) << "a recycled file waits for the next segment";
  const auto segs = segment_numbers(fs);
  ASSERT_EQ(segs.size(), 1u);
  ASSERT_GE(segs.back(), 5u) << "several checkpoints";
  // The current segment was renamed from an older one: it is as big as a
  // full segment although it holds fewer records.
  const auto cur = file_size(fs, wal::segment_path(segs.back()));
  EXPECT_GE(cur, opts.checkpoint_bytes);
  for (int round = 0; round < 4; ++round) {
    e.reset();
    if (round % 2 == 0) {
      fs.restart();
    } else {
      fs.restart_clean();
    }
    auto again = Engine::open(fs, opts);
    ASSERT_TRUE(again) << "round " << round << ": " << again.error().message;
    e = std::move(*again);
    EXPECT_EQ(regular(contents(read_stream(*e, sn("/a")).value())), acked) << "round " << round;
    for (int i = 0; i < 500; ++i) {
      acked.push_back(fmt::format("round-{}-{:04}-{}", round, i, std::string(100, 's')));
      ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {acked.back()})));
    }
  }
  EXPECT_EQ(regular(contents(read_stream(*e, sn("/a")).value())), acked);
}

// With stale bytes allowed after a segment's records, a commit lost at the
// end of a segment that is not the last one shows as a gap before the next
// segment, and recovery refuses.
TEST(Engine, ALostCommitAtTheEndOfAnOlderSegmentRefusesToStart) {
  for (bool damage : {false, true}) {
    wal::SimFs fs(16);
    auto opts = manual();
    opts.checkpoint_bytes = 1u << 30;
    {
      auto e = std::move(Engine::open(fs, opts).value());
      ASSERT_TRUE(e->create_stream_sync(sn("/a")));
      ASSERT_TRUE(e->checkpoint());
      for (int i = 0; i < 5; ++i) ASSERT_TRUE(e->append_sync(append_req(sn("/a"), {"x" + std::to_string(i)})));
      // A checkpoint that starts the next segment and then fails: the
      // snapshot still replays from the older segment.
      failpoint::arm("meta.after_tmp_write", failpoint::Action::eio, 0, 1);
      EXPECT_FALSE(e->checkpoint());
      failpoint::disarm_all();
    }
    const auto segs = segment_numbers(fs);
    ASSERT_EQ(segs.size(), 2u);
    if (damage) {  // flip a byte in the last commit of the older segment
      auto f = fs.open(wal::segment_path(segs[0]), wal::OpenMode::read_write).value();
      const std::string data = f->pread(0, f->size().value()).value();
      auto scan = wal::scan_segment(data, "seg").value();
      const auto& last = scan.records.back();
      ASSERT_EQ(last.type, wal::RecordType::commit);
      const std::uint64_t at = last.offset + wal::kHeaderSize + last.payload.size() / 2;
      std::string byte = data.substr(at, 1);
      byte[0] = static_cast<char>(byte[0] ^ 0x20);
      ASSERT_TRUE(f->pwrite(byte, at));
      ASSERT_TRUE(f->sync());
    }
    fs.restart_clean();
    auto e = Engine::open(fs, opts);
    if (!damage) {
      ASSERT_TRUE(e) << e.error().message;
      EXPECT_EQ(regular(contents(read_stream(**e, sn("/a")).value())),
                (std::vector<std::string>{"x0", "x1", "x2", "x3", "x4"}));
    } else {
      ASSERT_FALSE(e);
      EXPECT_EQ(e.error().code, errc::corruption);
      EXPECT_NE(e.error().message.find("missing commits"), std::string::npos) << e.error().message;
    }
  }
}

// submit_and_lead commits on the calling thread when the WAL is free: with
// no commit thread at all, the request is durable and answered on return.
TEST(Engine, SubmitAndLeadCommitsOnTheCallingThread) {
  wal::SimFs fs(12);
  auto e = std::move(Engine::open(fs, manual()).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/a")));
  const auto before = e->stats().commits;
  std::optional<std::thread::id> answered_on;
  e->submit_and_lead([&] {
    e->append(append_req(sn("/a"), {"x"}), [&](Result<AppendOutcome> r) {
      ASSERT_TRUE(r) << r.error().message;
      answered_on = std::this_thread::get_id();
    });
  });
  ASSERT_TRUE(answered_on.has_value());
  EXPECT_EQ(*answered_on, std::this_thread::get_id());
  EXPECT_EQ(e->stats().commits, before + 1);
  fs.restart();  // and it was synced
  auto again = std::move(Engine::open(fs, manual()).value());
  EXPECT_EQ(contents(read_stream(*again, sn("/a")).value()), (std::vector<std::string>{"/Created", "x"}));
}

TEST(Engine, SecondOwnerOfADataDirectoryIsRefused) {
  const auto dir = std::filesystem::temp_directory_path() / ("eh-lock-" + std::to_string(::getpid()));
  auto first = wal::DirLock::acquire(dir.string());
  ASSERT_TRUE(first);
  auto second = wal::DirLock::acquire(dir.string());
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use by another Writer"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// F2 / issue: 32 appenders on one stream during rotation, real files,
// background commit thread. Offsets unique and contiguous, batches whole.
// How the appenders submit: blocking calls (leader/follower), or an event
// loop's way -- submit_and_lead (commit here if the WAL is free) mixed with
// plain asynchronous appends that only the commit thread commits.
enum class Submit { sync, lead_and_async };

void thirty_two_appenders(Submit how) {
  const auto dir = std::filesystem::temp_directory_path() / ("eh-conc-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto fs = std::move(wal::open_posix_fs(dir.string()).value());
  EngineOptions o;
  o.chunk_size = 64 * 1024;
  // About 650 KB of WAL in all: about ten checkpoint triggers, so that at
  // least two finish while the appenders run whatever the timing (with
  // 256 KiB there were two triggers and a slow first checkpoint could leave
  // only one: seen once in CI).
  o.checkpoint_bytes = 64 * 1024;
  auto e = std::move(Engine::open(*fs, o).value());
  ASSERT_TRUE(e->create_stream_sync(sn("/c")));
  constexpr int kThreads = 32, kPerThread = 60;
  std::mutex mu;
  std::map<std::string, Cursor> acked;  // last line of each batch -> ack
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<std::string> lines;
        const int n = 1 + static_cast<int>(rng() % 5);
        for (int k = 0; k < n; ++k) lines.push_back(fmt::format("t{}-b{}-l{}-{}", t, i, k, std::string(rng() % 200, 'x')));
        Result<AppendOutcome> r = Error::make(errc::internal, "unset");
        if (how == Submit::sync) {
          r = e->append_sync(append_req(sn("/c"), lines));
        } else {
          std::promise<Result<AppendOutcome>> done;
          auto cb = [&done](Result<AppendOutcome> x) { done.set_value(std::move(x)); };
          if (t % 2 == 0) {
            e->submit_and_lead([&] { e->append(append_req(sn("/c"), lines), cb); });
          } else {
            e->append(append_req(sn("/c"), lines), cb);
          }
          r = done.get_future().get();
        }
        ASSERT_TRUE(r) << r.error().message;
        std::lock_guard lock(mu);
        acked.emplace(lines.back(), r->offset);
      }
    });
  }
  // Readers during the appends, rotations and background checkpoints: every
  // read checks the file part of its chunk (RELIABILITY A6) while
  // checkpoints move bytes from memory to files; never a false alarm.
  std::atomic<bool> appending{true};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      do {  // at least once, however fast the appenders are (TSan is slow)
        auto r = read_stream(*e, sn("/c"));
        ASSERT_TRUE(r) << r.error().message;
        reads.fetch_add(1);
      } while (appending.load());
    });
  }
  for (auto& th : threads) th.join();
  appending.store(false);
  for (auto& th : readers) th.join();
  EXPECT_GE(reads.load(), 2);
  auto lines = read_stream(*e, sn("/c")).value();
  std::set<std::pair<std::int64_t, std::int64_t>> positions;
  std::size_t regular = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_TRUE(positions.emplace(lines[i].after.chunk(), lines[i].after.offset()).second);
    if (lines[i].line.is_meta()) continue;
    ++regular;
    const std::string& c = lines[i].line.content;
    // Batches are contiguous: line k>0 follows line k-1 of the same batch.
    const auto lpos = c.find("-l");
    const int k = std::stoi(c.substr(lpos + 2));
    if (k > 0) {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(lines[i - 1].line.content.substr(0, lpos + 2), c.substr(0, lpos + 2));
      EXPECT_EQ(lines[i - 1].after.chunk(), lines[i].after.chunk());
    }
    if (auto it = acked.find(c); it != acked.end()) {
      EXPECT_EQ(it->second, lines[i].after) << c;
    }
  }
  std::size_t expected_lines = 0;
  for (const auto& [last, cur] : acked) expected_lines += static_cast<std::size_t>(std::stoi(last.substr(last.find("-l") + 2, 1))) + 1;
  EXPECT_EQ(regular, expected_lines);
  EXPECT_EQ(acked.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_GT(e->ship_queue().size(), 3u);
  EXPECT_LT(e->stats().commits, static_cast<std::uint64_t>(kThreads * kPerThread));  // group commit happened
  EXPECT_GE(e->stats().checkpoints, 2u);  // on the checkpoint thread, while the appenders went on
  ASSERT_TRUE(e->close());
  e.reset();
  std::filesystem::remove_all(dir);
}

// Sync pacing: a File whose sync takes 2 ms, N appenders that each keep one
// asynchronous append in flight (only the commit thread commits).
class SlowSyncFs final : public wal::ForwardingFs {
 public:
  using ForwardingFs::ForwardingFs;
  Result<std::unique_ptr<wal::File>> open(const std::string& path, wal::OpenMode mode) override {
    auto f = ForwardingFs::open(path, mode);
    if (!f) return f.error();
    return std::unique_ptr<wal::File>(std::make_unique<SlowFile>(std::move(*f)));
  }

 private:
  struct SlowFile final : wal::ForwardingFile {
    using ForwardingFile::ForwardingFile;
    Result<void> sync() override {
      // 5 ms: long enough that a paced sync (3 x 5 ms after the previous
      // start) leaves the answered appenders 10 ms to come back even on a
      // machine busy with other tests (with 2 ms, 4 ms was once too short).
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return ForwardingFile::sync();
    }
  };
};

struct PacingRun {
  std::uint64_t commits = 0, requests = 0, paced = 0;
};

PacingRun run_appenders(double pacing, int appenders, int per_appender) {
  wal::SimFs sim(21);
  SlowSyncFs fs(sim);
  EngineOptions o;
  o.sync_pacing = pacing;
  o.max_pacing_wait = std::chrono::milliseconds(20);
  auto e = std::move(Engine::open(fs, o).value());
  EXPECT_TRUE(e->create_stream_sync(sn("/p")));
  const auto before = e->stats();
  std::vector<std::thread> threads;
  for (int t = 0; t < appenders; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_appender; ++i) {
        std::promise<Result<AppendOutcome>> done;
        e->append(append_req(sn("/p"), {fmt::format("t{}-{}", t, i)}),
                  [&done](Result<AppendOutcome> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r) << r.error().message;
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto after = e->stats();
  EXPECT_EQ(read_stream(*e, sn("/p")).value().size(), 1u + static_cast<std::size_t>(appenders * per_appender));
  EXPECT_TRUE(e->close());
  return PacingRun{after.commits - before.commits, after.requests - before.requests,
                   after.paced_commits - before.paced_commits};
}

TEST(EngineConcurrency, SyncPacingGrowsGroupsUnderConcurrentAppends) {
  // Four closed-loop appenders. Unpaced, the commit thread takes whatever
  // queued during the previous sync the moment it ends (about two requests:
  // the answered ones have not come back yet); paced at 3 x 5 ms, the
  // answered appenders are back before the next sync starts.
  const PacingRun off = run_appenders(0, 4, 40);
  const PacingRun on = run_appenders(3, 4, 40);
  EXPECT_EQ(off.paced, 0u);
  EXPECT_GT(on.paced, on.commits / 2) << on.commits << " commits";
  const double off_group = static_cast<double>(off.requests) / static_cast<double>(off.commits);
  const double on_group = static_cast<double>(on.requests) / static_cast<double>(on.commits);
  EXPECT_GE(on_group, 3.0) << "unpaced " << off_group;
  EXPECT_GT(on_group, off_group);
}

TEST(EngineConcurrency, SyncPacingNeverDelaysALoneAppender) {
  const PacingRun lone = run_appenders(3, 1, 30);
  EXPECT_EQ(lone.paced, 0u);
  EXPECT_EQ(lone.commits, 30u);
}

TEST(EngineConcurrency, ThirtyTwoAppendersOneStreamDuringRotation) { thirty_two_appenders(Submit::sync); }

TEST(EngineConcurrency, ThirtyTwoAppendersLeadingFromEventLoops) { thirty_two_appenders(Submit::lead_and_async); }

}  // namespace
}  // namespace horizon::writer
