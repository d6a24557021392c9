// Tests of pushlib: the Receiver's rules (SPEC §8) over the SQLite adapter,
// the FakePusher under faults, the HTTP Endpoint, PusherProcess, and the
// golden examples of docs/protocol/push.md.

#include "core/golden_doc.h"
#include "pushlib/pushlib.h"

#include "core/cursor.h"
#include "core/wire.h"
#include "pushlib/pushlib_internal.h"
#include "pushlib/sqlite_adapter.h"
#include "pushlib/testing.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace pushlib {
namespace {

namespace wire = horizon::wire;
namespace fs = std::filesystem;
using horizon::Cursor;

constexpr const char* kSub = "/_sub/app";

// ---- helpers ----

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pushlib_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

Cursor cur(std::string_view s) { return Cursor::parse(s).value(); }

wire::PushLine regular(std::string_view ptr_after, std::string content) {
  return wire::PushLine{cur(ptr_after), std::move(content), "", std::nullopt};
}

wire::PushLine activity(std::string_view ptr_after, const std::vector<std::string>& cursors) {
  boost::json::object o;
  boost::json::array a;
  for (const auto& c : cursors) a.emplace_back(c);
  o["activity"] = std::move(a);
  o["ts"] = "2017-03-27T16:54:09.376Z";
  const std::string text = boost::json::serialize(o);
  return wire::PushLine{cur(ptr_after), text, "SubscriptionActivity", boost::json::value(o)};
}

wire::PushLine created(std::string_view ptr_after) {
  const std::string text = R"({"subscription_ids":[],"ts":"2017-03-27T16:53:51.655Z"})";
  return wire::PushLine{cur(ptr_after), text, "Created", boost::json::parse(text)};
}

std::string push_body(std::string_view sub, std::string_view from, std::vector<wire::PushLine> lines = {}) {
  return wire::to_json(wire::PushRequest{std::string(sub), Cursor::parse_offset_query(from).value(), std::move(lines)});
}

wire::PushResponse parse_ok(const PushResult& r) {
  EXPECT_EQ(r.http_status, 200) << r.body;
  auto p = wire::parse_push_response(r.body);
  EXPECT_TRUE(p) << r.body;
  return p ? *p : wire::PushResponse{};
}

std::string accepted(const wire::PushResponse& r) { return r.accepted_offset ? r.accepted_offset->to_string() : ""; }

std::vector<std::string> behind(const wire::PushResponse& r) {
  std::vector<std::string> out;
  for (const auto& c : r.behind_cursors) out.push_back(c.to_string());
  return out;
}

// One applied line as the test application records it.
struct Applied {
  std::string stream;
  std::string ptr_after;
  std::string content;
  std::string meta_type;
  friend bool operator==(const Applied&, const Applied&) = default;
};

std::ostream& operator<<(std::ostream& os, const Applied& a) {
  return os << a.stream << " " << a.ptr_after << " " << a.meta_type << " " << a.content;
}

// A test application on SQLite: every applied line goes to the table
// `applied` in the push's transaction; `fail` can make a line fail.
class App {
 public:
  explicit App(std::string path, std::string sub = kSub) : path_(std::move(path)), sub_(std::move(sub)) { open(); }

  void open() {
    adapter_.reset();
    auto a = SqliteAdapter::open(path_, sub_, [this](sqlite3* db, std::string_view stream, const Line& line) {
      return record(db, stream, line);
    });
    if (!a) throw std::runtime_error(a.error().to_string());
    adapter_ = std::move(*a);
    exec(
        "CREATE TABLE IF NOT EXISTS applied(seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT, ptr_after TEXT, "
        "content TEXT, meta_type TEXT)");
    receiver_ = std::make_unique<Receiver>(*adapter_);
  }

  Result<void> record(sqlite3* db, std::string_view stream, const Line& line) {
    if (fail) {
      if (auto r = fail(line); !r) return r;
    }
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO applied(stream, ptr_after, content, meta_type) VALUES(?1, ?2, ?3, ?4)", -1, &st,
                       nullptr);
    sqlite3_bind_text(st, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, line.ptr_after.data(), static_cast<int>(line.ptr_after.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, line.content.data(), static_cast<int>(line.content.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, line.meta_type.data(), static_cast<int>(line.meta_type.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return Error::make(errc::internal, sqlite3_errmsg(db));
    if (after_record) after_record(line);
    return {};
  }

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(adapter_->db(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(msg);
    }
  }

  std::vector<Applied> applied(std::string_view only_stream = {}) {
    std::vector<Applied> out;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(adapter_->db(), "SELECT stream, ptr_after, content, meta_type FROM applied ORDER BY seq", -1,
                       &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto col = [st](int i) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i))); };
      Applied a{col(0), col(1), col(2), col(3)};
      if (only_stream.empty() || a.stream == only_stream) out.push_back(std::move(a));
    }
    sqlite3_finalize(st);
    return out;
  }

  std::vector<std::string> contents(std::string_view stream) {
    std::vector<std::string> out;
    for (auto& a : applied(stream)) {
      if (a.meta_type.empty()) out.push_back(a.content);
    }
    return out;
  }

  std::optional<std::string> offset(std::string_view stream) {
    std::optional<std::string> out;
    auto r = adapter_->run_in_transaction([&](Transaction& tx) -> Result<void> {
      auto o = adapter_->get_offset(tx, stream);
      if (!o) return o.error();
      out = *o;
      return {};
    });
    if (!r) throw std::runtime_error(r.error().to_string());
    return out;
  }

  void set_offset(std::string_view stream, std::string_view cursor) {
    auto r = adapter_->run_in_transaction([&](Transaction& tx) { return adapter_->set_offset(tx, stream, cursor); });
    if (!r) throw std::runtime_error(r.error().to_string());
  }

  PushResult push(const std::string& body) { return receiver_->handle(body); }
  Receiver& receiver() { return *receiver_; }
  SqliteAdapter& adapter() { return *adapter_; }

  std::function<Result<void>(const Line&)> fail;
  std::function<void(const Line&)> after_record;

 private:
  std::string path_;
  std::string sub_;
  std::unique_ptr<SqliteAdapter> adapter_;
  std::unique_ptr<Receiver> receiver_;
};

class ReceiverTest : public ::testing::Test {
 protected:
  TempDir dir_;
  App app_{dir_.file("app.db")};
};

// ---- subscription id and offset queries ----

TEST_F(ReceiverTest, QuerySubscriptionIdAnswersTheAppsId) {
  const PushResult r = app_.push(push_body("_query_", "/:-1:-1"));
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.body, R"({"Code":"incorrect_subscription_id","AcceptedOffset":"","CorrectSubscriptionId":"/_sub/app",)"
                    R"("BehindCursors":[]})");
}

TEST_F(ReceiverTest, OtherSubscriptionIdIsRejectedAndNothingApplied) {
  auto r = parse_ok(app_.push(push_body("/_sub/other", "/a:0:0", {regular("/a:0:3", "x")})));
  EXPECT_EQ(r.code, wire::PushCode::incorrect_subscription_id);
  EXPECT_EQ(r.correct_subscription_id, kSub);
  EXPECT_TRUE(app_.applied().empty());
  EXPECT_FALSE(app_.offset("/a"));
}

TEST_F(ReceiverTest, OffsetQueryOfUnknownStreamAnswersBeginning) {
  auto r = parse_ok(app_.push(push_body(kSub, "/a:-1:-1")));
  EXPECT_EQ(r.code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(accepted(r), "/a:0:0:?");
  EXPECT_TRUE(r.behind_cursors.empty());
}

TEST_F(ReceiverTest, OffsetQueryAnswersStoredPositionAndAppliesNothing) {
  app_.set_offset("/a", "/a:2:40:srv");
  auto r = parse_ok(app_.push(push_body(kSub, "/a:-1:-1", {regular("/a:2:50", "x")})));
  EXPECT_EQ(r.code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(accepted(r), "/a:2:40:srv");
  EXPECT_TRUE(app_.applied().empty());
}

// ---- pushes ----

TEST_F(ReceiverTest, FirstPushFromBeginningIsApplied) {
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:0:?", {regular("/a:0:3:h", "x"), regular("/a:0:6:h", "y")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/a:0:6:h");
  EXPECT_EQ(app_.applied(), (std::vector<Applied>{{"/a", "/a:0:3:h", "x", ""}, {"/a", "/a:0:6:h", "y", ""}}));
  EXPECT_EQ(app_.offset("/a"), "/a:0:6:h");
}

TEST_F(ReceiverTest, SuccessAdvancesAcrossPushesAndChunks) {
  parse_ok(app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")})));
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:3:h", {regular("/a:1:0:h", "y"), regular("/a:1:3:h", "z")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/a:1:3:h");
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(app_.offset("/a"), "/a:1:3:h");
}

TEST_F(ReceiverTest, ServerHintIsIgnoredWhenComparingFromOffset) {
  app_.set_offset("/a", "/a:0:10:?");
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:10:elsewhere", {regular("/a:0:13", "x")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  r = parse_ok(app_.push(push_body(kSub, "/a:0:13", {regular("/a:0:16", "y")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"x", "y"}));
}

TEST_F(ReceiverTest, EmptyPushAtStoredPositionSucceedsWithoutChange) {
  app_.set_offset("/a", "/a:0:10:?");
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:10:h")));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/a:0:10:?");
  EXPECT_EQ(app_.offset("/a"), "/a:0:10:?");
}

TEST_F(ReceiverTest, DuplicatePushIsAnsweredWithCurrentOffsetAndAppliedOnce) {
  const std::string body = push_body(kSub, "/a:0:0", {regular("/a:0:3", "x"), regular("/a:0:6", "y")});
  auto first = parse_ok(app_.push(body));
  ASSERT_EQ(first.code, wire::PushCode::success);
  for (int i = 0; i < 3; ++i) {
    auto again = parse_ok(app_.push(body));
    EXPECT_EQ(again.code, wire::PushCode::incorrect_base_offset);
    EXPECT_EQ(accepted(again), "/a:0:6");
  }
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(app_.applied().size(), 2u);
}

TEST_F(ReceiverTest, PushFromStaleOrFutureOffsetIsRejected) {
  parse_ok(app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x"), regular("/a:0:6", "y")})));
  auto stale = parse_ok(app_.push(push_body(kSub, "/a:0:3", {regular("/a:0:6", "y")})));
  EXPECT_EQ(stale.code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(accepted(stale), "/a:0:6");
  auto gap = parse_ok(app_.push(push_body(kSub, "/a:0:9", {regular("/a:0:12", "w")})));
  EXPECT_EQ(gap.code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(accepted(gap), "/a:0:6");
  auto unknown_from_middle = parse_ok(app_.push(push_body(kSub, "/b:0:9", {regular("/b:0:12", "w")})));
  EXPECT_EQ(unknown_from_middle.code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(accepted(unknown_from_middle), "/b:0:0:?");
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(app_.contents("/b").empty());
}

TEST_F(ReceiverTest, MetaLinesReachTheApplicationWithPayload) {
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:0", {created("/a:0:65"), regular("/a:0:68", "x")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  auto all = app_.applied("/a");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].meta_type, "Created");
  EXPECT_EQ(all[0].content, R"({"subscription_ids":[],"ts":"2017-03-27T16:53:51.655Z"})");
  EXPECT_EQ(all[1].meta_type, "");
}

// ---- the subscription stream ----

TEST_F(ReceiverTest, SubscriptionStreamV1WorkedExampleStopsAtFirstBehindActivity) {
  // The v1 document's example: the app never touched /sampledata.
  auto r = parse_ok(app_.push(push_body(
      kSub, "/_sub/app:0:0:127.0.0.1",
      {created("/_sub/app:0:65:127.0.0.1"), activity("/_sub/app:0:157:127.0.0.1", {"/sampledata:0:141:127.0.0.1"}),
       activity("/_sub/app:0:249:127.0.0.1", {"/sampledata:0:171:127.0.0.1"}),
       activity("/_sub/app:0:341:127.0.0.1", {"/sampledata:0:201:127.0.0.1"}),
       activity("/_sub/app:0:433:127.0.0.1", {"/sampledata:0:231:127.0.0.1"})})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/_sub/app:0:65:127.0.0.1");
  EXPECT_EQ(behind(r), (std::vector<std::string>{"/sampledata:0:0:?"}));
  auto all = app_.applied();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].meta_type, "Created");
  EXPECT_EQ(app_.offset(kSub), "/_sub/app:0:65:127.0.0.1");
}

TEST_F(ReceiverTest, BehindCursorsListsEveryBehindStreamOnceEvenAfterTheStop) {
  app_.set_offset("/a", "/a:0:10:x");
  app_.set_offset("/c", "/c:0:7");
  auto r = parse_ok(app_.push(push_body(kSub, "/_sub/app:0:0",
                                        {activity("/_sub/app:0:10", {"/a:0:10"}),               // caught up: applied
                                         activity("/_sub/app:0:20", {"/b:0:5", "/a:0:20"}),     // stop: b and a behind
                                         activity("/_sub/app:0:30", {"/c:0:7"}),                // c not behind
                                         activity("/_sub/app:0:40", {"/d:0:3", "/b:0:9"})})));  // d behind, b again
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/_sub/app:0:10");
  EXPECT_EQ(behind(r), (std::vector<std::string>{"/b:0:0:?", "/a:0:10:x", "/d:0:0:?"}));
  EXPECT_EQ(app_.applied().size(), 1u);
  EXPECT_EQ(app_.offset(kSub), "/_sub/app:0:10");
}

TEST_F(ReceiverTest, BehindOnFirstLineAcceptsNothingAndKeepsPosition) {
  auto r = parse_ok(app_.push(push_body(kSub, "/_sub/app:0:0:h", {activity("/_sub/app:0:10", {"/a:0:5"})})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/_sub/app:0:0:?");
  EXPECT_EQ(behind(r), (std::vector<std::string>{"/a:0:0:?"}));
  EXPECT_TRUE(app_.applied().empty());
  EXPECT_FALSE(app_.offset(kSub));
}

TEST_F(ReceiverTest, SubscriptionStreamAcceptsActivityTheAppCaughtUpWith) {
  app_.set_offset("/a", "/a:1:20");
  app_.set_offset("/b", "/b:0:9");
  auto r = parse_ok(app_.push(push_body(kSub, "/_sub/app:0:0",
                                        {activity("/_sub/app:0:10", {"/a:0:500"}),           // earlier chunk
                                         activity("/_sub/app:0:20", {"/a:1:20", "/b:0:9"}),  // equal
                                         activity("/_sub/app:0:30", {"/b:0:12"}),            // behind on b
                                         regular("/_sub/app:0:40", "after")})));
  EXPECT_EQ(accepted(r), "/_sub/app:0:20");
  EXPECT_EQ(behind(r), (std::vector<std::string>{"/b:0:9"}));
  // Once caught up, the rest is accepted.
  app_.set_offset("/b", "/b:0:12");
  r = parse_ok(app_.push(push_body(kSub, "/_sub/app:0:20",
                                   {activity("/_sub/app:0:30", {"/b:0:12"}), regular("/_sub/app:0:40", "after")})));
  EXPECT_EQ(accepted(r), "/_sub/app:0:40");
  EXPECT_TRUE(r.behind_cursors.empty());
  EXPECT_EQ(app_.applied(kSub).size(), 4u);
}

TEST_F(ReceiverTest, ActivityLinesOfOtherStreamsAreOrdinaryLines) {
  auto r = parse_ok(app_.push(push_body(kSub, "/a:0:0", {activity("/a:0:10", {"/b:0:5"}), regular("/a:0:13", "x")})));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(accepted(r), "/a:0:13");
  EXPECT_TRUE(r.behind_cursors.empty());
  EXPECT_EQ(app_.applied("/a").size(), 2u);
}

// ---- failures ----

TEST_F(ReceiverTest, AdapterFailureMidBatchRollsBackEffectsAndOffset) {
  parse_ok(app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "a1")})));
  const std::string body = push_body(kSub, "/a:0:3",
                                     {regular("/a:0:6", "b1"), regular("/a:0:9", "b2"), regular("/a:0:12", "b3"),
                                      regular("/a:0:15", "b4"), regular("/a:0:18", "b5")});
  app_.fail = [](const Line& l) -> Result<void> {
    if (l.content == "b3") return Error::make(errc::storage_failed, "disk on fire");
    return {};
  };
  const PushResult failed = app_.push(body);
  EXPECT_EQ(failed.http_status, 500);
  EXPECT_NE(failed.body.find("disk on fire"), std::string::npos) << failed.body;
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(app_.offset("/a"), "/a:0:3");

  app_.fail = nullptr;  // the Pusher retries the same push
  auto r = parse_ok(app_.push(body));
  EXPECT_EQ(r.code, wire::PushCode::success);
  EXPECT_EQ(app_.contents("/a"), (std::vector<std::string>{"a1", "b1", "b2", "b3", "b4", "b5"}));
}

TEST_F(ReceiverTest, AdapterExceptionIsA500AndRollsBack) {
  app_.fail = [](const Line& l) -> Result<void> {
    if (l.content == "y") throw std::runtime_error("boom");
    return {};
  };
  const PushResult r = app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x"), regular("/a:0:6", "y")}));
  EXPECT_EQ(r.http_status, 500);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
  EXPECT_TRUE(app_.applied().empty());
  EXPECT_FALSE(app_.offset("/a"));
}

TEST_F(ReceiverTest, InvalidStoredOffsetIsA500) {
  app_.set_offset("/a", "not a cursor");
  EXPECT_EQ(app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")})).http_status, 500);
  app_.set_offset("/a", "/b:0:0");
  EXPECT_EQ(app_.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")})).http_status, 500);
  EXPECT_TRUE(app_.applied().empty());
}

TEST_F(ReceiverTest, MalformedBodiesAre400AndApplyNothing) {
  const std::vector<std::string> bodies = {
      "",
      "nope",
      "[]",
      "{}",
      R"({"SubscriptionId":"/_sub/app"})",
      R"({"SubscriptionId":"/_sub/app","Push":{"FromOffset":"/a:x:0"}})",
      R"({"SubscriptionId":"app","Push":{"FromOffset":"/a:0:0"}})",
      R"({"SubscriptionId":"/_sub/app","Push":{"FromOffset":"/a:0:0","Lines":{}}})",
      R"({"SubscriptionId":"/_sub/app","Push":{"FromOffset":"/a:0:0","Lines":["x"]}})",
      R"({"SubscriptionId":"/_sub/app","Push":{"FromOffset":"/a:0:0","Lines":[{"PtrAfter":"/a:0:3"}]}})",
      // PtrAfter of another stream
      push_body(kSub, "/a:0:0", {regular("/a:0:3", "x"), regular("/b:0:6", "y")}),
      // PtrAfter equal, decreasing, not after FromOffset
      push_body(kSub, "/a:0:0", {regular("/a:0:3", "x"), regular("/a:0:3", "y")}),
      push_body(kSub, "/a:0:0", {regular("/a:0:6", "x"), regular("/a:0:3", "y")}),
      push_body(kSub, "/a:0:6", {regular("/a:0:6", "x")}),
      push_body(kSub, "/a:1:0", {regular("/a:0:9", "x")}),
      // malformed SubscriptionActivity on the subscription stream
      push_body(kSub, "/_sub/app:0:0", {wire::PushLine{cur("/_sub/app:0:5"), "{}", "SubscriptionActivity", {}}}),
      push_body(kSub, "/_sub/app:0:0",
                {wire::PushLine{cur("/_sub/app:0:5"), "{}", "SubscriptionActivity", boost::json::parse("{}")}}),
      push_body(kSub, "/_sub/app:0:0",
                {wire::PushLine{cur("/_sub/app:0:5"), "", "SubscriptionActivity",
                                boost::json::parse(R"({"activity":["/a:0"]})")}}),
      push_body(kSub, "/_sub/app:0:0",
                {regular("/_sub/app:0:2", "ok"), wire::PushLine{cur("/_sub/app:0:5"), "", "SubscriptionActivity",
                                                                boost::json::parse(R"({"activity":[1]})")}}),
  };
  for (const auto& body : bodies) {
    const PushResult r = app_.push(body);
    EXPECT_EQ(r.http_status, 400) << body << " -> " << r.body;
    auto err = boost::json::parse(r.body).as_object();
    EXPECT_TRUE(err.contains("error") && err.contains("message")) << r.body;
  }
  EXPECT_TRUE(app_.applied().empty());
  EXPECT_FALSE(app_.offset("/a"));
  EXPECT_FALSE(app_.offset(kSub));
}

TEST_F(ReceiverTest, ConcurrentPushesAreSerialized) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      const std::string stream = fmt::format("/s{}", t);
      std::string from = stream + ":0:0";
      for (int i = 1; i <= 50; ++i) {
        const std::string to = fmt::format("{}:0:{}", stream, i * 2);
        auto r = parse_ok(app_.push(push_body(kSub, from, {regular(to, std::to_string(i))})));
        EXPECT_EQ(r.code, wire::PushCode::success);
        from = to;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(app_.contents(fmt::format("/s{}", t)).size(), 50u);
}

// ---- the SQLite adapter ----

TEST(SqliteAdapter, SetsWalFullSyncAndCreatesOffsetsTable) {
  TempDir dir;
  auto a = SqliteAdapter::open(dir.file("x.db"), kSub, nullptr);
  ASSERT_TRUE(a) << a.error().to_string();
  auto one = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2((*a)->db(), sql, -1, &st, nullptr);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  };
  EXPECT_EQ(one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one("PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(one("SELECT sql FROM sqlite_master WHERE name = 'eventhorizon_offsets'"),
            "CREATE TABLE eventhorizon_offsets(stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)");
  EXPECT_EQ((*a)->subscription_id(), kSub);
}

TEST(SqliteAdapter, RejectsSubscriptionIdOutsideSub) {
  TempDir dir;
  auto a = SqliteAdapter::open(dir.file("x.db"), "/app", nullptr);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, errc::invalid_argument);
  auto b = SqliteAdapter::open(dir.file("nodir/x.db"), kSub, nullptr);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::storage_failed) << b.error().to_string();
}

TEST(SqliteAdapter, AttachUsesTheCallersConnection) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("x.db").c_str(), &db), SQLITE_OK);
  {
    auto a = SqliteAdapter::attach(db, kSub, nullptr);
    ASSERT_TRUE(a);
    Receiver r(**a);
    EXPECT_EQ(parse_ok(r.handle(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")}))).code, wire::PushCode::success);
  }
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT cursor FROM eventhorizon_offsets", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "/a:0:3");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(SqliteAdapter, UncommittedTransactionIsGoneAfterClose) {
  TempDir dir;
  const std::string path = dir.file("x.db");
  {
    App app(path);
    parse_ok(app.push(push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")})));
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "BEGIN IMMEDIATE; UPDATE eventhorizon_offsets SET cursor = '/a:0:6';"
                           "INSERT INTO applied(stream, ptr_after, content, meta_type) VALUES('/a','/a:0:6','y','');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close_v2(db);  // no COMMIT
  }
  App app(path);
  EXPECT_EQ(app.offset("/a"), "/a:0:3");
  EXPECT_EQ(app.contents("/a"), (std::vector<std::string>{"x"}));
}

TEST(SqliteAdapter, ProcessDeathMidPushLeavesLastCommittedState) {
  TempDir dir;
  const std::string path = dir.file("x.db");
  const std::string batch1 = push_body(kSub, "/a:0:0", {regular("/a:0:3", "x1"), regular("/a:0:6", "x2")});
  const std::string batch2 = push_body(kSub, "/a:0:6", {regular("/a:0:9", "y1"), regular("/a:0:12", "y2")});
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    App app(path);
    if (app.push(batch1).http_status != 200) ::_exit(1);
    // Die in the middle of the second push, after y1 was written.
    app.after_record = [](const Line& l) {
      if (l.content == "y1") ::_exit(3);
    };
    (void)app.push(batch2);
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 3);

  App app(path);
  EXPECT_EQ(app.offset("/a"), "/a:0:6");
  EXPECT_EQ(app.contents("/a"), (std::vector<std::string>{"x1", "x2"}));
  // The Pusher retries the second push: applied once.
  EXPECT_EQ(parse_ok(app.push(batch2)).code, wire::PushCode::success);
  EXPECT_EQ(parse_ok(app.push(batch2)).code, wire::PushCode::incorrect_base_offset);
  EXPECT_EQ(app.contents("/a"), (std::vector<std::string>{"x1", "x2", "y1", "y2"}));
}

// ---- FakePusher ----

TEST(FakePusher, DeliversEveryLineExactlyOnceUnderFaults) {
  TempDir dir;
  App app(dir.file("app.db"));
  FakePusherOptions o;
  o.batch_lines = 37;
  o.duplicate_probability = 0.2;
  o.lost_reply_probability = 0.2;
  o.restart_probability = 0.02;
  o.stale_probability = 0.05;
  o.chunk_bytes = 4096;
  o.seed = 20240601;
  FakePusher pusher(app.receiver(), kSub, o);

  constexpr int kStreams = 5;
  constexpr int kLines = 1000;
  std::map<std::string, std::vector<std::string>> expected;
  for (int round = 0; round < 10; ++round) {
    for (int s = 0; s < kStreams; ++s) {
      const std::string stream = fmt::format("/tenants/t{}", s);
      std::vector<std::string> lines;
      for (int i = 0; i < kLines / 10; ++i) {
        lines.push_back(fmt::format(R"({{"type":"Ev","stream":{},"n":{}}})", s, round * (kLines / 10) + i));
      }
      ASSERT_TRUE(pusher.append(stream, lines));
      expected[stream].insert(expected[stream].end(), lines.begin(), lines.end());
    }
    if (round == 2 || round == 6) {
      auto r = pusher.run();
      ASSERT_TRUE(r) << r.error().to_string();
    }
  }
  auto r = pusher.run();
  ASSERT_TRUE(r) << r.error().to_string();

  for (const auto& [stream, lines] : expected) {
    EXPECT_EQ(app.contents(stream), lines) << stream;  // no gap, no duplicate, no reorder
    EXPECT_EQ(app.offset(stream), pusher.end_of(stream));
    // Every applied line (meta included) in strictly increasing cursor order.
    auto all = app.applied(stream);
    for (std::size_t i = 1; i < all.size(); ++i) {
      EXPECT_EQ(cur(all[i - 1].ptr_after).compare(cur(all[i].ptr_after)).value(), std::strong_ordering::less);
    }
  }
  EXPECT_EQ(app.offset(kSub), pusher.end_of(kSub));
  const FakePusherStats& st = pusher.stats();
  EXPECT_GT(st.duplicates, 0u);
  EXPECT_GT(st.lost_replies, 0u);
  EXPECT_GT(st.restarts, 0u);
  EXPECT_GT(st.stale_pushes, 0u);
  EXPECT_GT(st.incorrect_base_offset, 0u);
  std::printf(
      "FakePusher: %zu pushes, %zu duplicates, %zu lost replies, %zu restarts, %zu stale, %zu "
      "incorrect_base_offset\n",
      st.pushes, st.duplicates, st.lost_replies, st.restarts, st.stale_pushes, st.incorrect_base_offset);
}

TEST(FakePusher, WithoutFaultsFollowsBehindCursorsFromTheSubscription) {
  TempDir dir;
  App app(dir.file("app.db"));
  FakePusher pusher(app.receiver(), kSub);
  ASSERT_TRUE(pusher.append("/users", {"u1", "u2"}));
  ASSERT_TRUE(pusher.append("/orders", {"o1"}));
  ASSERT_TRUE(pusher.run());
  EXPECT_EQ(app.contents("/users"), (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(app.contents("/orders"), (std::vector<std::string>{"o1"}));
  ASSERT_TRUE(pusher.append("/users", {"u3"}));
  ASSERT_TRUE(pusher.run());
  EXPECT_EQ(app.contents("/users"), (std::vector<std::string>{"u1", "u2", "u3"}));
  EXPECT_EQ(pusher.stats().duplicates + pusher.stats().lost_replies + pusher.stats().server_errors, 0u);
}

TEST(FakePusher, GivesUpOnAnApplicationThatAlwaysFails) {
  TempDir dir;
  App app(dir.file("app.db"));
  app.fail = [](const Line& l) -> Result<void> {
    if (l.content == "poison") return Error::make(errc::internal, "cannot apply");
    return {};
  };
  FakePusher pusher(app.receiver(), kSub);
  ASSERT_TRUE(pusher.append("/a", {"ok", "poison"}));
  auto r = pusher.run();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot apply"), std::string::npos) << r.error().message;
  EXPECT_TRUE(app.contents("/a").empty());  // the batch held both lines
}

TEST(FakePusher, RejectsSubscriptionStreamsAndBadLines) {
  TempDir dir;
  App app(dir.file("app.db"));
  FakePusher pusher(app.receiver(), kSub);
  EXPECT_FALSE(pusher.append("/_sub/x", {"a"}));
  EXPECT_FALSE(pusher.append("bad name", {"a"}));
  EXPECT_FALSE(pusher.append("/a", {"line\nbreak"}));
  EXPECT_THROW(FakePusher(app.receiver(), "/app"), std::invalid_argument);
}

// ---- Endpoint ----

struct HttpReply {
  int status = 0;
  std::string body;
};

// A minimal HTTP/1.1 client: one request, reads the Content-Length body.
HttpReply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("connect");
  }
  const std::string req = fmt::format(
      "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      method, target, body.size(), body);
  for (std::size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[4096];
  HttpReply out;
  while (true) {
    const auto head_end = in.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const std::string head = in.substr(0, head_end);
      std::size_t length = 0;
      std::istringstream lines(head);
      std::string line;
      while (std::getline(lines, line)) {
        for (auto& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (line.rfind("content-length:", 0) == 0) length = std::stoul(line.substr(15));
      }
      if (in.size() >= head_end + 4 + length) {
        out.status = std::stoi(in.substr(9, 3));
        out.body = in.substr(head_end + 4, length);
        break;
      }
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(Endpoint, ServesPushesOverHttpWithAuth) {
  TempDir dir;
  App app(dir.file("app.db"));
  EndpointOptions o;
  o.port = 0;
  o.auth_token = "t0ken/+";
  auto ep = Endpoint::start(app.receiver(), o);
  ASSERT_TRUE(ep) << ep.error().to_string();
  const std::uint16_t port = (*ep)->port();
  EXPECT_EQ((*ep)->url(), fmt::format("http://127.0.0.1:{}/_eventhorizon_push?auth=t0ken%2F%2B", port));
  const std::string target = "/_eventhorizon_push?auth=t0ken%2F%2B";

  HttpReply r = http_request(port, "POST", target, push_body("_query_", "/:-1:-1"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, app.push(push_body("_query_", "/:-1:-1")).body);

  r = http_request(port, "POST", target, push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"Code":"success","AcceptedOffset":"/a:0:3","CorrectSubscriptionId":"","BehindCursors":[]})");

  EXPECT_EQ(http_request(port, "POST", "/_eventhorizon_push", push_body("_query_", "/:-1:-1")).status, 401);
  EXPECT_EQ(http_request(port, "POST", "/_eventhorizon_push?auth=t0ken", push_body("_query_", "/:-1:-1")).status, 401);
  EXPECT_EQ(http_request(port, "GET", target, "").status, 405);
  r = http_request(port, "POST", target, "{");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(app.contents("/a"), (std::vector<std::string>{"x"}));
  (*ep)->stop();
  (*ep)->stop();  // idempotent
}

TEST(Endpoint, WorksWithCurl) {
  if (std::system("command -v curl >/dev/null 2>&1") != 0) GTEST_SKIP() << "curl not installed";
  TempDir dir;
  App app(dir.file("app.db"));
  EndpointOptions o;
  o.port = 0;
  auto ep = Endpoint::start(app.receiver(), o);
  ASSERT_TRUE(ep);
  const std::string body_file = dir.file("body.json");
  std::ofstream(body_file) << push_body(kSub, "/a:0:0", {regular("/a:0:3", "x")});
  const std::string cmd =
      fmt::format("curl -s --noproxy '*' -w ' %{{http_code}}' -X POST --data-binary @{} '{}'", body_file, (*ep)->url());
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ::pclose(p);
  EXPECT_EQ(out, R"({"Code":"success","AcceptedOffset":"/a:0:3","CorrectSubscriptionId":"","BehindCursors":[]} 200)");
}

TEST(Endpoint, ListensOnlyOnLoopback) {
  TempDir dir;
  App app(dir.file("app.db"));
  for (const char* a : {"0.0.0.0", "10.1.2.3", "::", "example.com"}) {
    EndpointOptions o;
    o.address = a;
    o.port = 0;
    auto ep = Endpoint::start(app.receiver(), o);
    ASSERT_FALSE(ep) << a;
    EXPECT_EQ(ep.error().code, errc::invalid_argument);
  }
  EXPECT_TRUE(detail::is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(detail::is_loopback_address("127.8.9.10"));
  EXPECT_TRUE(detail::is_loopback_address("::1"));
  EXPECT_FALSE(detail::is_loopback_address("128.0.0.1"));
}

TEST(Endpoint, QueryParameterIsFoundAndDecoded) {
  EXPECT_EQ(detail::query_parameter("/p?auth=abc", "auth"), "abc");
  EXPECT_EQ(detail::query_parameter("/p?x=1&auth=a%2Fb&y=2", "auth"), "a/b");
  EXPECT_EQ(detail::query_parameter("/p?auth", "auth"), "");
  EXPECT_EQ(detail::query_parameter("/p", "auth"), std::nullopt);
  EXPECT_EQ(detail::query_parameter("/p?authx=1", "auth"), std::nullopt);
  EXPECT_EQ(detail::query_parameter("/p?auth=%zz", "auth"), std::nullopt);
  EXPECT_EQ(detail::query_parameter("/p?auth=%4", "auth"), std::nullopt);
  EXPECT_EQ(detail::percent_encode("a/b c~"), "a%2Fb%20c~");
}

// ---- PusherProcess ----

PusherProcessOptions stand_in(std::vector<std::string> command) {
  PusherProcessOptions o;
  o.command = std::move(command);
  return o;
}

TEST(PusherProcess, StopClosesStdinAndTheChildExits) {
  auto p = PusherProcess::start(stand_in({"/bin/sh", "-c", "cat >/dev/null"}));
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_GT((*p)->pid(), 0);
  EXPECT_TRUE((*p)->running());
  auto st = (*p)->stop();
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFEXITED(*st));
  EXPECT_EQ(WEXITSTATUS(*st), 0);
  EXPECT_FALSE((*p)->running());
  EXPECT_EQ((*p)->stop().value(), *st);  // idempotent
}

TEST(PusherProcess, StopKillsAChildThatIgnoresEof) {
  PusherProcessOptions o = stand_in({"sleep", "600"});  // found in PATH
  o.stop_timeout = std::chrono::milliseconds(100);
  auto p = PusherProcess::start(o);
  ASSERT_TRUE(p) << p.error().to_string();
  auto st = (*p)->stop();
  ASSERT_TRUE(st);
  EXPECT_TRUE(WIFSIGNALED(*st));
  EXPECT_EQ(WTERMSIG(*st), SIGKILL);
}

TEST(PusherProcess, ExecFailureIsReported) {
  auto p = PusherProcess::start(stand_in({"/nonexistent/horizon", "pusher"}));
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("No such file"), std::string::npos) << p.error().message;
  auto q = PusherProcess::start(stand_in({"no-such-program-pushlib-test"}));
  ASSERT_FALSE(q);
  auto r = PusherProcess::start(PusherProcessOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST(PusherProcess, RunsHorizonPusherWithEndpointStopOnEofAndProxy) {
  TempDir dir;
  const std::string script = dir.file("horizon");
  const std::string args_file = dir.file("args");
  std::ofstream(script) << "#!/bin/sh\necho \"$@\" > '" << args_file << "'\nexec cat >/dev/null\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  PusherProcessOptions o;
  o.endpoint_url = "http://127.0.0.1:8080/_eventhorizon_push?auth=x";
  o.proxy = "127.0.0.1:9093";
  o.horizon_binary = script;
  EXPECT_EQ(detail::pusher_command(o).value(),
            (std::vector<std::string>{script, "pusher", "--endpoint", o.endpoint_url, "--stop-on-stdin-eof", "--proxy",
                                      "127.0.0.1:9093"}));
  auto p = PusherProcess::start(o);
  ASSERT_TRUE(p) << p.error().to_string();
  auto st = (*p)->stop();
  ASSERT_TRUE(st);
  EXPECT_EQ(WEXITSTATUS(*st), 0);
  std::ifstream in(args_file);
  std::string args;
  std::getline(in, args);
  EXPECT_EQ(args,
            "pusher --endpoint http://127.0.0.1:8080/_eventhorizon_push?auth=x --stop-on-stdin-eof --proxy "
            "127.0.0.1:9093");
}

TEST(PusherProcess, ChildExitsWhenTheParentIsKilled) {
  // Orphans are re-parented to this test process, so that it can reap them.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    // The "application": starts the Pusher stand-in, reports its pid, waits.
    ::close(report[0]);
    auto p = PusherProcess::start(stand_in({"/bin/sh", "-c", "cat >/dev/null"}));
    const int pid = p ? (*p)->pid() : -1;
    if (::write(report[1], &pid, sizeof(pid)) != static_cast<ssize_t>(sizeof(pid))) ::_exit(1);
    while (true) ::pause();
  }
  ::close(report[1]);
  int child = -1;
  ASSERT_EQ(::read(report[0], &child, sizeof(child)), static_cast<ssize_t>(sizeof(child)));
  ::close(report[0]);
  ASSERT_GT(child, 0);

  ASSERT_EQ(::kill(parent, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  ASSERT_TRUE(WIFSIGNALED(status));

  // The stand-in must see EOF on stdin and exit within 2 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  pid_t reaped = 0;
  while (reaped == 0 && std::chrono::steady_clock::now() < deadline) {
    reaped = ::waitpid(child, &status, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reaped == 0) ::kill(child, SIGKILL);
  ASSERT_EQ(reaped, child) << "the Pusher stand-in outlived its killed parent";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---- docs/protocol/push.md ----

std::string read_doc() { return horizon::golden::read_source_file("docs/protocol/push.md"); }

// The body of the fenced block after "<!-- golden:NAME -->" (empty if none).
std::string golden(const std::string& doc, const std::string& name) {
  const auto marker = doc.find("<!-- golden:" + name + " -->");
  if (marker == std::string::npos) return {};
  const auto fence = doc.find("```", marker);
  if (fence == std::string::npos) return {};
  const auto start = doc.find('\n', fence) + 1;
  const auto end = doc.find("```", start);
  return doc.substr(start, end - start);
}

// The application of the worked exchange: offsets and applied lines in
// memory, transactional (a copy is committed on success).
class MemoryAdapter : public Adapter {
 public:
  struct State {
    std::map<std::string, std::string> offsets;
    std::vector<Applied> applied;
  };
  explicit MemoryAdapter(std::string sub) : sub_(std::move(sub)) {}

  std::string subscription_id() const override { return sub_; }
  Result<void> run_in_transaction(const std::function<Result<void>(Transaction&)>& fn) override {
    Tx tx;
    tx.state = committed;
    auto r = fn(tx);
    if (r) committed = std::move(tx.state);
    return r;
  }
  Result<std::optional<std::string>> get_offset(Transaction& tx, std::string_view stream) override {
    auto& s = static_cast<Tx&>(tx).state;
    auto it = s.offsets.find(std::string(stream));
    if (it == s.offsets.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<void> set_offset(Transaction& tx, std::string_view stream, std::string_view cursor) override {
    static_cast<Tx&>(tx).state.offsets[std::string(stream)] = std::string(cursor);
    return {};
  }
  Result<void> handle_line(Transaction& tx, std::string_view stream, const Line& line) override {
    static_cast<Tx&>(tx).state.applied.push_back(
        Applied{std::string(stream), line.ptr_after, line.content, line.meta_type});
    return {};
  }

  State committed;

 private:
  struct Tx : Transaction {
    State state;
  };
  std::string sub_;
};

TEST(PushDoc, ExamplesAreByteExact) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/protocol/push.md not found";
  MemoryAdapter adapter("/_sub/example-sub");
  Receiver receiver(adapter);
  const std::map<std::string, std::string> request_of = {{"push-4", "push-3"}};  // step 4 repeats step 3
  int checked = 0;
  for (int step = 1; step <= 9; ++step) {
    const std::string name = fmt::format("push-{}", step);
    const std::string req_name = request_of.contains(name) ? request_of.at(name) : name;
    const std::string request = golden(doc, req_name + "-request");
    const std::string response = golden(doc, name + "-response");
    ASSERT_FALSE(request.empty()) << req_name;
    ASSERT_FALSE(response.empty()) << name;
    const PushResult r = receiver.handle(request);
    EXPECT_EQ(r.body + "\n", response) << name;
    EXPECT_EQ(r.http_status, step == 9 ? 400 : 200) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 9);
  // What the application applied along the way.
  std::vector<std::string> applied;
  for (const auto& a : adapter.committed.applied) applied.push_back(a.ptr_after);
  EXPECT_EQ(applied,
            (std::vector<std::string>{"/_sub/example-sub:0:65:127.0.0.1", "/sampledata:0:65:127.0.0.1",
                                      "/sampledata:0:149:127.0.0.1", "/sampledata:0:179:127.0.0.1",
                                      "/sampledata:0:209:127.0.0.1", "/sampledata:0:239:127.0.0.1",
                                      "/_sub/example-sub:0:164:127.0.0.1", "/_sub/example-sub:0:263:127.0.0.1",
                                      "/_sub/example-sub:0:362:127.0.0.1", "/_sub/example-sub:0:461:127.0.0.1"}));
  EXPECT_EQ(adapter.committed.offsets,
            (std::map<std::string, std::string>{{"/_sub/example-sub", "/_sub/example-sub:0:461:127.0.0.1"},
                                                {"/sampledata", "/sampledata:0:239:127.0.0.1"}}));
}

TEST(PushDoc, ExampleCursorsMatchTheRawLineSizes) {
  // The PtrAfter of each line is FromOffset plus the SPEC §4 raw line sizes.
  const std::string doc = read_doc();
  for (int step : {3, 6, 7, 8}) {
    auto req = wire::parse_push_request(golden(doc, fmt::format("push-{}-request", step)));
    ASSERT_TRUE(req) << step;
    std::int64_t at = req->from_offset.offset();
    for (const auto& l : req->lines) {
      const std::size_t raw =
          l.meta_type.empty() ? 1 + l.content.size() + 1 : 1 + l.meta_type.size() + 1 + l.content.size() + 1;
      at += static_cast<std::int64_t>(raw);
      EXPECT_EQ(l.ptr_after.offset(), at) << "step " << step << ": " << l.ptr_after.to_string();
      if (l.meta_payload) {
        EXPECT_EQ(boost::json::serialize(*l.meta_payload), l.content);
      }
    }
  }
}

}  // namespace
}  // namespace pushlib
