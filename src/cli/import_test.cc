// The import engine of stream-appendfromfile against an in-memory Writer
// that loses requests and answers on cue, has other writers append between
// requests, rotates chunks, and a clock that only moves when the importer
// sleeps. The real binary through Writer kills is tests/e2e/import_exact.sh.

#include "cli/import.h"

#include "core/golden_doc.h"
#include "core/raw_line.h"
#include "core/wire.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace horizon::cli {
namespace {

using namespace std::chrono_literals;

enum class Fault {
  lose_answer,   // applied, then the connection drops
  lose_request,  // the connection drops before the Writer reads it
  busy_503,      // not applied, 503
  applied_503,   // applied, then 503 storage_failed (the engine failed after writing)
};

// One stream held by a fake Writer: entries with the cursor after each.
class FakeWriter : public ImportTarget {
 public:
  explicit FakeWriter(std::string stream, std::size_t rotate_every = 0)
      : stream_(StreamName::parse(stream).value()), rotate_every_(rotate_every) {}

  // Faults by append call number (1-based, counting every request).
  std::map<int, Fault> faults;
  // From this call on, every append fails (the Writer is gone).
  int down_from = 0;
  // Other writers' lines, appended just before the call of that number.
  std::map<int, std::vector<std::string>> others;
  // Reads that see nothing (the lines are not committed yet), by read number.
  std::set<int> empty_reads;
  // Reads that fail (damaged data, a refusal), by read number.
  std::map<int, Error> failing_reads;
  std::vector<std::string> bodies;
  std::vector<std::optional<std::string>> afters;  // the After of each append
  int reads = 0;
  std::chrono::milliseconds slept{0};

  struct Entry {
    std::string meta;  // "Rotated" or empty
    std::string content;
    Cursor after;
  };
  std::vector<Entry> entries;

  Cursor end() const { return entries.empty() ? Cursor::beginning(stream_) : entries.back().after; }
  // The end before a rotation that came last (accepted as After).
  std::optional<Cursor> alias() const {
    if (entries.size() < 3 || entries.back().meta != "Created") return std::nullopt;
    return entries[entries.size() - 3].after;
  }
  std::vector<std::string> regular_lines() const {
    std::vector<std::string> out;
    for (const auto& e : entries) {
      if (e.meta.empty()) out.push_back(e.content);
    }
    return out;
  }
  void append_lines(const std::vector<std::string>& lines) {
    for (const auto& l : lines) {
      const Cursor at = end();
      entries.push_back({"", l, Cursor(stream_, at.chunk(), at.offset() + static_cast<std::int64_t>(l.size()) + 2)});
    }
    const Cursor e = end();
    if (rotate_every_ > 0 && static_cast<std::size_t>(e.offset()) >= rotate_every_) {
      // As the Writer does: Rotated ends the chunk, Created begins the next.
      entries.push_back({"Rotated", "{}", Cursor(stream_, e.chunk() + 1, 0)});
      entries.push_back({"Created", "{}", Cursor(stream_, e.chunk() + 1, 40)});
    }
  }

  Result<HttpResult> append(const std::string& body) override {
    const int call = static_cast<int>(bodies.size()) + 1;
    bodies.push_back(body);
    auto req = wire::parse_append_request(body);
    EXPECT_TRUE(req) << body;
    if (!req) return HttpResult{400, "{}"};
    afters.push_back(req->after ? std::optional(req->after->to_string()) : std::nullopt);
    if (auto o = others.find(call); o != others.end()) append_lines(o->second);
    if (down_from > 0 && call >= down_from) return Error::make(errc::not_ready, "Connection refused");
    std::optional<Fault> fault;
    if (auto f = faults.find(call); f != faults.end()) fault = f->second;
    if (fault == Fault::lose_request) return Error::make(errc::not_ready, "Connection reset by peer");
    if (fault == Fault::busy_503) return HttpResult{503, R"({"error":"not_ready","message":"starting"})"};
    if (req->after && !(*req->after == end()) && !(alias() && *alias() == *req->after)) {
      return HttpResult{409, wire::conflict_body(end())};
    }
    append_lines(req->lines);
    if (fault == Fault::lose_answer) return Error::make(errc::not_ready, "Empty reply from server");
    if (fault == Fault::applied_503) return HttpResult{503, R"({"error":"storage_failed","message":"fdatasync"})"};
    return HttpResult{201, wire::to_json(wire::AppendResponse{end()})};
  }

  Result<std::vector<reader::Line>> read(const Cursor& from, std::size_t n) override {
    ++reads;
    std::vector<reader::Line> out;
    if (empty_reads.contains(reads)) return out;
    if (auto f = failing_reads.find(reads); f != failing_reads.end()) return f->second;
    bool started = from.is_beginning();
    const bool boundary =
        started || std::any_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.after == from; });
    if (!boundary && std::tuple(from.chunk(), from.offset()) < std::tuple(end().chunk(), end().offset())) {
      return Error::make(errc::invalid_cursor, "cursor " + from.to_string() + " is not at the start of a line");
    }
    for (const auto& e : entries) {
      if (started && out.size() < n) {
        RawLine l;
        l.meta_type = e.meta;
        l.content = e.content;
        out.push_back({l, e.after});
      }
      if (e.after == from) started = true;
    }
    return out;
  }

  void sleep(std::chrono::milliseconds d) override { slept += d; }
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::time_point{} + slept; }

 private:
  StreamName stream_;
  std::size_t rotate_every_;
};

std::vector<std::string> numbered(int n, const std::string& prefix = "line-") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

struct Run {
  Result<void> result;
  ImportProgress progress;
  std::vector<std::string> notices;
};

ImportOptions batches_of(std::size_t lines) {
  ImportOptions o;
  o.batch_lines = lines;
  return o;
}

Run import(FakeWriter& w, const std::vector<std::string>& lines, ImportOptions o = {}, std::size_t skip = 0) {
  Run run{Result<void>{}, {}, {}};
  o.notice = [&run](const std::string& s) { run.notices.push_back(s); };
  Importer imp(StreamName::parse("/s").value(), w, o);
  for (std::size_t i = skip; i < lines.size() && run.result; ++i) run.result = imp.add(lines[i]);
  if (run.result) run.result = imp.finish();
  run.progress = imp.progress();
  return run;
}

TEST(Import, BatchesAreChainedOnTheStreamsEnd) {
  FakeWriter w("/s");
  w.others[1] = {"before"};
  const auto lines = numbered(2500);
  const auto run = import(w, lines);
  ASSERT_TRUE(run.result) << run.result.error().message;
  // One request to learn the end, then 1000 + 1000 + 500, each After the previous answer.
  ASSERT_EQ(w.bodies.size(), 4u);
  EXPECT_EQ(w.afters[0], std::nullopt);
  auto want = lines;
  want.insert(want.begin(), "before");
  EXPECT_EQ(w.regular_lines(), want);
  EXPECT_EQ(run.progress.lines, 2500u);
  EXPECT_EQ(run.progress.end->to_string(), w.end().to_string());
  EXPECT_EQ(run.progress.conflicts, 0u);
  EXPECT_EQ(run.progress.read_backs, 0u);
  EXPECT_TRUE(run.notices.empty());
}

TEST(Import, NothingToSendStillLearnsTheEnd) {
  FakeWriter w("/s");
  w.append_lines({"a", "b"});
  const auto run = import(w, {});
  ASSERT_TRUE(run.result) << run.result.error().message;
  EXPECT_EQ(w.bodies.size(), 1u);
  EXPECT_EQ(run.progress.end->to_string(), w.end().to_string());
  EXPECT_EQ(run.progress.lines, 0u);
}

TEST(Import, BatchesStayUnderTheByteBudget) {
  FakeWriter w("/s");
  std::mt19937 rng(7);
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) {
    static const char* const pieces[] = {"a", "b", "\"", "\\", "\t", "\x01", " ", "/", "\xc3\xa9"};
    std::string l;
    for (std::size_t n = rng() % 200; n > 0; --n) l += pieces[rng() % 9];
    lines.push_back(l);
  }
  lines.push_back(std::string(5000, '"'));  // alone larger than the budget: sent alone
  ImportOptions o;
  o.batch_bytes = 4096;
  const auto run = import(w, lines, o);
  ASSERT_TRUE(run.result) << run.result.error().message;
  EXPECT_EQ(w.regular_lines(), lines);
  for (const auto& b : w.bodies) {
    if (b.size() > 4096) {
      auto req = wire::parse_append_request(b).value();
      EXPECT_EQ(req.lines.size(), 1u) << "only a single line may exceed the budget";
    }
  }
  EXPECT_GT(w.bodies.size(), 20u);
}

TEST(Import, JsonStringSizeIsAnUpperBound) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 64, ' ');
    for (auto& c : s) c = static_cast<char>(rng() % 128);
    EXPECT_GE(json_string_size(s), boost::json::serialize(boost::json::string(s)).size()) << i;
  }
  EXPECT_EQ(json_string_size("ab"), 4u);
  EXPECT_EQ(json_string_size("\"\x01"), 2u + 2u + 6u);
}

TEST(Import, BatchLinesAreCappedAtTheWritersLimit) {
  FakeWriter w("/s");
  ImportOptions o;
  o.batch_lines = 25'000;
  o.batch_bytes = 1u << 30;
  const auto run = import(w, numbered(25'000), o);
  ASSERT_TRUE(run.result);
  for (const auto& b : w.bodies) EXPECT_LE(wire::parse_append_request(b).value().lines.size(), kMaxLinesPerAppend);
  EXPECT_EQ(w.regular_lines(), numbered(25'000));
}

TEST(Import, ALostAnswerDoesNotAppendTheBatchTwice) {
  for (const Fault f : {Fault::lose_answer, Fault::applied_503}) {
    FakeWriter w("/s");
    w.faults[3] = f;  // the second batch is applied, its answer lost
    const auto run = import(w, numbered(350), batches_of(100));
    ASSERT_TRUE(run.result) << run.result.error().message;
    EXPECT_EQ(w.regular_lines(), numbered(350));
    EXPECT_EQ(run.progress.read_backs, 1u);
    EXPECT_EQ(run.progress.resent, 1u);
    EXPECT_EQ(w.afters[2], w.afters[3]) << "the resent batch names the same end";
    ASSERT_EQ(run.notices.size(), 2u);
    EXPECT_NE(run.notices[0].find("retrying for up to 60 s"), std::string::npos) << run.notices[0];
    EXPECT_NE(run.notices[1].find("answers again"), std::string::npos) << run.notices[1];
  }
}

TEST(Import, ALostRequestIsSentAgain) {
  for (const Fault f : {Fault::lose_request, Fault::busy_503}) {
    FakeWriter w("/s");
    w.faults[2] = f;
    w.faults[3] = f;
    const auto run = import(w, numbered(250), batches_of(100));
    ASSERT_TRUE(run.result) << run.result.error().message;
    EXPECT_EQ(w.regular_lines(), numbered(250));
    EXPECT_EQ(run.progress.resent, 2u);
    EXPECT_EQ(run.progress.read_backs, 0u);  // the resent request was applied: no conflict to resolve
    EXPECT_EQ(w.slept, 100ms + 200ms);       // backoff doubles
  }
}

TEST(Import, AnotherWritersAppendIsNoReasonToReadBack) {
  FakeWriter w("/s");
  w.others[3] = {"x", "y"};
  const auto run = import(w, numbered(300), batches_of(100));
  ASSERT_TRUE(run.result) << run.result.error().message;
  auto want = numbered(300);
  want.insert(want.begin() + 100, {"x", "y"});
  EXPECT_EQ(w.regular_lines(), want);
  EXPECT_EQ(run.progress.conflicts, 1u);
  EXPECT_EQ(run.progress.read_backs, 0u);
}

// The second batch's first attempt gets no answer, then another writer
// appends: a request that was lost is sent at the new end (after "x"); an
// applied one is found by reading back and not sent again ("x" after it).
TEST(Import, ALostAttemptThenAnotherWriter) {
  for (const auto& [fault, x_at] : {std::pair{Fault::lose_request, 100}, std::pair{Fault::lose_answer, 200}}) {
    FakeWriter w("/s");
    w.faults[3] = fault;
    w.others[4] = {"x"};
    const auto run = import(w, numbered(300), batches_of(100));
    ASSERT_TRUE(run.result) << run.result.error().message;
    auto want = numbered(300);
    want.insert(want.begin() + x_at, "x");
    EXPECT_EQ(w.regular_lines(), want) << x_at;
    EXPECT_EQ(run.progress.read_backs, 1u);
  }
}

TEST(Import, ReadingBackWaitsForLinesNotReadableYet) {
  FakeWriter w("/s");
  w.faults[3] = Fault::lose_answer;
  w.empty_reads = {1, 2};
  const auto run = import(w, numbered(300), batches_of(100));
  ASSERT_TRUE(run.result) << run.result.error().message;
  EXPECT_EQ(w.regular_lines(), numbered(300));
  EXPECT_EQ(run.progress.read_backs, 3u);
}

TEST(Import, ReadingBackSkipsARotation) {
  for (int lost_call : {2, 3, 4, 5}) {
    FakeWriter w("/s", 600);  // a rotation after about every 70 lines
    w.faults[lost_call] = Fault::lose_answer;
    const auto run = import(w, numbered(400), batches_of(70));
    ASSERT_TRUE(run.result) << run.result.error().message;
    EXPECT_EQ(w.regular_lines(), numbered(400)) << lost_call;
    EXPECT_EQ(run.progress.read_backs, 1u);
  }
}

TEST(Import, AnOutageLongerThanRetryForEndsTheImportWithWhatIsKnown) {
  FakeWriter w("/s");
  w.faults[3] = Fault::lose_answer;
  w.down_from = 4;
  ImportOptions o;
  o.batch_lines = 100;
  o.retry_for = 5s;
  const auto run = import(w, numbered(300), o);
  ASSERT_FALSE(run.result);
  EXPECT_EQ(run.result.error().code, errc::not_ready);
  EXPECT_NE(run.result.error().message.find("Connection refused (retried for 5 s)"), std::string::npos)
      << run.result.error().message;
  EXPECT_EQ(run.progress.lines, 100u);
  EXPECT_EQ(run.progress.unsure, 100u);
  EXPECT_EQ(run.progress.end->to_string(), w.entries[99].after.to_string());
  EXPECT_GE(w.slept, 5s);
  EXPECT_LT(w.slept, 7s);
}

TEST(Import, RetryForZeroGivesUpAtOnce) {
  FakeWriter w("/s");
  w.faults[2] = Fault::lose_request;
  ImportOptions o;
  o.retry_for = 0ms;
  const auto run = import(w, numbered(10), o);
  ASSERT_FALSE(run.result);
  EXPECT_EQ(run.result.error().message, "Connection reset by peer");
  EXPECT_EQ(w.slept, 0ms);
  EXPECT_EQ(run.progress.unsure, 10u);
  EXPECT_TRUE(run.notices.empty());
}

TEST(Import, ARefusalIsNotRetried) {
  struct Refusing final : FakeWriter {
    Refusing() : FakeWriter("/s") {}
    Result<HttpResult> append(const std::string& body) override {
      bodies.push_back(body);
      return HttpResult{404, R"({"error":"stream_not_found","message":"no stream /s"})"};
    }
  } w;
  const auto run = import(w, numbered(10));
  ASSERT_FALSE(run.result);
  EXPECT_EQ(w.bodies.size(), 1u);
  EXPECT_NE(run.result.error().message.find("no stream /s (HTTP 404 stream_not_found)"), std::string::npos);
  EXPECT_FALSE(run.progress.end.has_value());
}

// A run that gave up, resumed as its error message says (--skip, --after),
// with other batch sizes: every line once.
TEST(Import, AResumedImportAppendsEveryLineOnce) {
  for (const Fault f : {Fault::lose_answer, Fault::lose_request}) {
    for (std::size_t second_batch : {30u, 100u, 250u}) {
      FakeWriter w("/s", 900);
      w.faults[4] = f;
      w.down_from = 5;
      ImportOptions o;
      o.batch_lines = 100;
      o.retry_for = 1s;
      const auto lines = numbered(500);
      const auto first = import(w, lines, o);
      ASSERT_FALSE(first.result);
      ASSERT_EQ(first.progress.lines, 200u);
      ASSERT_EQ(first.progress.unsure, 100u);
      w.down_from = 0;
      w.others[static_cast<int>(w.bodies.size()) + 3] = {"x"};  // another writer, later on
      ImportOptions again;
      again.batch_lines = second_batch;
      again.after = first.progress.end;
      const auto second = import(w, lines, again, first.progress.lines);
      ASSERT_TRUE(second.result) << second.result.error().message;
      auto got = w.regular_lines();
      std::erase(got, "x");
      EXPECT_EQ(got, lines) << static_cast<int>(f) << " " << second_batch;
      EXPECT_EQ(first.progress.lines + second.progress.lines, 500u);
    }
  }
}

// A resumed run whose --after is not a place in the stream (past its end,
// or inside a line) stops at once, appends nothing and offers no command
// to go on from that cursor.
TEST(Import, AnAfterThatIsNotInTheStreamStopsAtOnce) {
  FakeWriter w("/s");
  w.append_lines(numbered(10));
  const Cursor end = w.end();
  const auto s = StreamName::parse("/s").value();
  const std::pair<Cursor, std::string> cases[] = {
      {Cursor(s, 0, end.offset() + 100), "is past the end of /s (" + end.to_string() + ")"},
      {Cursor(s, 5, 0), "is past the end of /s (" + end.to_string() + ")"},
      {Cursor(s, 0, 3), "cannot be read back: cursor /s:0:3 is not at the start of a line"},
  };
  for (const auto& [after, problem] : cases) {
    ImportOptions o;
    o.after = after;
    const auto run = import(w, numbered(5, "new-"), o);
    ASSERT_FALSE(run.result) << after.to_string();
    EXPECT_EQ(run.result.error().code, errc::invalid_cursor);
    EXPECT_EQ(run.result.error().message, "--after " + after.to_string() + " " + problem);
    EXPECT_EQ(w.slept, 0ms) << "nothing to wait for";
    EXPECT_EQ(w.regular_lines(), numbered(10)) << "nothing appended";
    EXPECT_FALSE(run.progress.end.has_value());
    EXPECT_EQ(describe_stopped_import(run.result.error().message, run.progress, 0, s, "f"),
              run.result.error().message + "; nothing appended")
        << "no command to go on from a cursor that is not in the stream";
  }
}

// Reading back after a lost answer fails for a reason waiting does not
// cure (here damaged data): the import stops at once and says what it knows.
TEST(Import, ReadingBackStopsAtDamage) {
  FakeWriter w("/s");
  w.faults[3] = Fault::lose_answer;
  w.failing_reads.emplace(1, Error::make(errc::corruption, "chunk 0 of /s failed its integrity check"));
  const auto run = import(w, numbered(300), batches_of(100));
  ASSERT_FALSE(run.result);
  EXPECT_EQ(run.result.error().code, errc::corruption);
  EXPECT_EQ(run.result.error().message, "the end " + w.entries[99].after.to_string() +
                                            " the Writer answered for this import's lines cannot be read back: chunk "
                                            "0 of /s failed its integrity check");
  EXPECT_EQ(w.slept, 100ms) << "one wait, for the lost answer; none for the damage";
  EXPECT_EQ(run.progress.lines, 100u);
  EXPECT_EQ(run.progress.unsure, 100u);
  EXPECT_EQ(run.progress.end->to_string(), w.entries[99].after.to_string());
}

// The Writer answers an end before the one it acknowledged for this
// import's lines (a Writer on another copy of the data): acknowledged lines
// are gone. The import says so rather than appending at the old end.
TEST(Import, AStreamThatWentBackIsCorruption) {
  FakeWriter w("/s");
  Importer imp(StreamName::parse("/s").value(), w, batches_of(10));
  for (const auto& l : numbered(10)) ASSERT_TRUE(imp.add(l));
  const std::string acknowledged = imp.progress().end->to_string();
  w.entries.clear();
  w.append_lines({"other"});
  for (const auto& l : numbered(5, "x")) ASSERT_TRUE(imp.add(l));
  const auto done = imp.finish();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, errc::corruption);
  EXPECT_EQ(done.error().message, "the end " + acknowledged +
                                      " the Writer answered for this import's lines is past the end of /s (" +
                                      w.end().to_string() + ")");
  EXPECT_EQ(w.regular_lines(), std::vector<std::string>{"other"});
}

TEST(ImportDoc, TheStopMessageIsTheDocumentsExample) {
  const auto doc = golden::read_source_file("docs/protocol/http-api.md");
  const auto example = golden::section(doc, "import-stop");
  ASSERT_FALSE(example.empty());
  ImportProgress p;
  p.lines = 2000;
  p.end = Cursor::parse("/orders:0:27780").value();
  p.unsure = 1000;
  EXPECT_EQ("horizon stream-appendfromfile: " +
                describe_stopped_import("Connection refused (retried for 60 s)", p, 0,
                                        StreamName::parse("/orders").value(), "orders.txt") +
                "\n",
            example);
}

TEST(ImportDoc, StopMessages) {
  const auto s = StreamName::parse("/a").value();
  ImportProgress p;
  EXPECT_EQ(describe_stopped_import("no stream /a", p, 0, s, "f"), "no stream /a; nothing appended");
  p.end = Cursor::parse("/a:1:5").value();
  EXPECT_EQ(describe_stopped_import("r", p, 7, s, "my file.txt"),
            "r; nothing appended, stream end /a:1:5; to go on exactly: horizon stream-appendfromfile --skip 7 "
            "--after /a:1:5 /a 'my file.txt'");
  p.lines = 3;
  EXPECT_EQ(describe_stopped_import("r", p, 7, s, "it's"),
            "r; 3 lines appended (input lines 8-10), stream end /a:1:5; to go on exactly: horizon "
            "stream-appendfromfile --skip 10 --after /a:1:5 /a 'it'\\''s'");
  EXPECT_EQ(shell_word(""), "''");
}

}  // namespace
}  // namespace horizon::cli
