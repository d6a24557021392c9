#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace horizon::metrics {
namespace {

// Runs `command` through the shell; returns its exit status (-1 if it did
// not exit normally) and its combined output.
struct CommandResult {
  int status = -1;
  std::string output;
};

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.status = WEXITSTATUS(status);
  return result;
}

TEST(Registry, RendersGoldenText) {
  Registry r;
  r.counter("horizon_appends_total", "Appends acknowledged.").inc(3);
  r.gauge("horizon_open_streams", "Streams open now.").set(-2);
  Histogram& h = r.histogram("horizon_append_seconds", "Append latency.", {0.001, 0.5, 1});
  h.observe(0.0009765625);  // 2^-10: every value here is exact in binary
  h.observe(0.25);
  h.observe(0.25);
  h.observe(2.0);
  CounterFamily& requests =
      r.counter_family("horizon_requests_total", "Requests by method and code.\nSee \\docs.", {"method", "code"});
  requests.with({"POST", "200"}).inc(2);
  requests.with({"GET", "404"}).inc();
  requests.with({"GET", "200"}).inc(5);
  r.gauge_family("horizon_unused", "A family without children is not rendered.", {"stream"});
  r.gauge_callback("horizon_ship_backlog", "Chunks waiting to be shipped.", [] { return std::int64_t{7}; });

  EXPECT_EQ(r.render(),
            "# HELP horizon_append_seconds Append latency.\n"
            "# TYPE horizon_append_seconds histogram\n"
            "horizon_append_seconds_bucket{le=\"0.001\"} 1\n"
            "horizon_append_seconds_bucket{le=\"0.5\"} 3\n"
            "horizon_append_seconds_bucket{le=\"1\"} 3\n"
            "horizon_append_seconds_bucket{le=\"+Inf\"} 4\n"
            "horizon_append_seconds_sum 2.5009765625\n"
            "horizon_append_seconds_count 4\n"
            "# HELP horizon_appends_total Appends acknowledged.\n"
            "# TYPE horizon_appends_total counter\n"
            "horizon_appends_total 3\n"
            "# HELP horizon_open_streams Streams open now.\n"
            "# TYPE horizon_open_streams gauge\n"
            "horizon_open_streams -2\n"
            "# HELP horizon_requests_total Requests by method and code.\\nSee \\\\docs.\n"
            "# TYPE horizon_requests_total counter\n"
            "horizon_requests_total{method=\"GET\",code=\"200\"} 5\n"
            "horizon_requests_total{method=\"GET\",code=\"404\"} 1\n"
            "horizon_requests_total{method=\"POST\",code=\"200\"} 2\n"
            "# HELP horizon_ship_backlog Chunks waiting to be shipped.\n"
            "# TYPE horizon_ship_backlog gauge\n"
            "horizon_ship_backlog 7\n");
}

TEST(Registry, EmptyRegistryRendersNothing) {
  Registry r;
  EXPECT_EQ(r.render(), "");
  EXPECT_EQ(Registry::kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Registry, FormatsNumbersExactly) {
  Registry r;
  r.counter("a_total", "h").inc(std::numeric_limits<std::uint64_t>::max());
  r.gauge("b", "h").set(std::numeric_limits<std::int64_t>::min());
  Histogram& c = r.histogram("c", "h", {-0.5, 2.5e-05, 0.0001, 123456789.5, 1e21, 1e300});
  c.observe(0.1);
  c.observe(0.2);
  Histogram& d = r.histogram("d", "h", {});
  d.observe(std::numeric_limits<double>::infinity());
  Histogram& e = r.histogram("e", "h", {1});
  e.observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(r.render(),
            "# HELP a_total h\n# TYPE a_total counter\n"
            "a_total 18446744073709551615\n"
            "# HELP b h\n# TYPE b gauge\n"
            "b -9223372036854775808\n"
            "# HELP c h\n# TYPE c histogram\n"
            "c_bucket{le=\"-0.5\"} 0\n"
            "c_bucket{le=\"2.5e-05\"} 0\n"
            "c_bucket{le=\"0.0001\"} 0\n"
            "c_bucket{le=\"123456789.5\"} 2\n"
            "c_bucket{le=\"1e+21\"} 2\n"
            "c_bucket{le=\"1e+300\"} 2\n"
            "c_bucket{le=\"+Inf\"} 2\n"
            "c_sum 0.30000000000000004\n"
            "c_count 2\n"
            "# HELP d h\n# TYPE d histogram\n"
            "d_bucket{le=\"+Inf\"} 1\n"
            "d_sum +Inf\n"
            "d_count 1\n"
            "# HELP e h\n# TYPE e histogram\n"
            "e_bucket{le=\"1\"} 0\n"
            "e_bucket{le=\"+Inf\"} 1\n"
            "e_sum NaN\n"
            "e_count 1\n");
}

TEST(Counter, EightThreadsOfIncrementsAddUpExactly) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 100'000;
  Registry r;
  Counter& plain = r.counter("plain_total", "h");
  CounterFamily& family = r.counter_family("labelled_total", "h", {"shard"});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread looks its children up itself: `with` is concurrent too.
      Counter& shared = family.with({"shared"});
      Counter& own = family.with({std::to_string(t)});
      for (int i = 0; i < kIncrements; ++i) {
        plain.inc();
        shared.inc();
        own.inc(2);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  constexpr auto kTotal = static_cast<std::uint64_t>(kThreads) * kIncrements;
  EXPECT_EQ(plain.value(), kTotal);
  EXPECT_EQ(family.with({"shared"}).value(), kTotal);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(family.with({std::to_string(t)}).value(), 2u * kIncrements);
}

TEST(Gauge, SetAndAdd) {
  Registry r;
  Gauge& g = r.gauge("g", "h");
  g.set(10);
  g.add(-15);
  EXPECT_EQ(g.value(), -5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&g] {
      for (int i = 0; i < 10'000; ++i) {
        g.add(3);
        g.add(-1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(g.value(), -5 + 4 * 10'000 * 2);
}

TEST(Histogram, BucketsAreCumulativeWithSumAndCount) {
  Registry r;
  Histogram& h = r.histogram("h_seconds", "h", {1, 2, 3});
  for (double v : {0.5, 1.0, 1.5, 3.0, 4.0, -1.0}) h.observe(v);  // 1.0 and 3.0 sit on a bound: le is inclusive
  EXPECT_EQ(h.cumulative_counts(), (std::vector<std::uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(h.sum(), 9.0);
  h.observe(std::chrono::milliseconds(1500));
  EXPECT_EQ(h.cumulative_counts(), (std::vector<std::uint64_t>{3, 5, 6, 7}));
  EXPECT_EQ(h.sum(), 10.5);
  EXPECT_EQ(r.render(),
            "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 3\n"
            "h_seconds_bucket{le=\"2\"} 5\n"
            "h_seconds_bucket{le=\"3\"} 6\n"
            "h_seconds_bucket{le=\"+Inf\"} 7\n"
            "h_seconds_sum 10.5\n"
            "h_seconds_count 7\n");
}

TEST(Histogram, ConcurrentObservationsKeepCountAndSum) {
  Histogram h(latency_buckets());
  constexpr int kThreads = 4;
  constexpr int kObservations = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < kObservations; ++i) h.observe(i % 2 == 0 ? 0.5 : 0.00025);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(h.count(), std::uint64_t{kThreads} * kObservations);
  // 0.5 is exact; 0.00025 is not, so allow for rounding in the sum.
  const double expected = kThreads * (kObservations / 2) * (0.5 + 0.00025);
  EXPECT_NEAR(h.sum(), expected, 1e-9 * expected);
  const std::vector<std::uint64_t> counts = h.cumulative_counts();
  EXPECT_EQ(counts[2], std::uint64_t{kThreads} * kObservations / 2);  // le="0.00025"
  EXPECT_EQ(counts.back(), h.count());
}

TEST(Histogram, LatencyBucketsSpanFiftyMicrosecondsToTenSeconds) {
  const std::vector<double> b = latency_buckets();
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.front(), 0.00005);
  EXPECT_EQ(b.back(), 10.0);
  for (std::size_t i = 1; i < b.size(); ++i) {
    EXPECT_LT(b[i - 1], b[i]);
    EXPECT_LE(b[i] / b[i - 1], 2.5);  // roughly exponential: no big holes
  }
}

TEST(Labels, ValuesAreEscaped) {
  Registry r;
  GaugeFamily& f = r.gauge_family("g", "h", {"v"});
  f.with({"back\\slash"}).set(1);
  f.with({"quote\"d"}).set(2);
  f.with({"new\nline"}).set(3);
  f.with({"caf\xC3\xA9 \xF0\x9F\x98\x80"}).set(4);  // valid UTF-8 passes through
  f.with({"bad\xFF\xC3"}).set(5);                   // invalid UTF-8 becomes U+FFFD
  f.with({""}).set(6);
  EXPECT_EQ(r.render(),
            "# HELP g h\n# TYPE g gauge\n"
            "g{v=\"\"} 6\n"
            "g{v=\"back\\\\slash\"} 1\n"
            "g{v=\"bad\xEF\xBF\xBD\xEF\xBF\xBD\"} 5\n"
            "g{v=\"caf\xC3\xA9 \xF0\x9F\x98\x80\"} 4\n"
            "g{v=\"new\\nline\"} 3\n"
            "g{v=\"quote\\\"d\"} 2\n");
}

TEST(Labels, WithAcceptsSpansOfStringsAndViews) {
  Registry r;
  CounterFamily& f = r.counter_family("c_total", "h", {"a", "b"});
  Counter& c = f.with({"x", "y"});
  const std::vector<std::string> strings{"x", "y"};
  const std::array<std::string_view, 2> views{"x", "y"};
  EXPECT_EQ(&f.with(strings), &c);
  EXPECT_EQ(&f.with(views), &c);
  EXPECT_NE(&f.with({"y", "x"}), &c);
  EXPECT_EQ(f.label_names(), (std::vector<std::string>{"a", "b"}));
}

TEST(Registry, SameNameAndTypeReturnsTheSameObject) {
  Registry r;
  Counter& c = r.counter("c_total", "first help");
  EXPECT_EQ(&r.counter("c_total", "other help is ignored"), &c);
  EXPECT_EQ(&r.counter_family("c_total", "h", {}).with({}), &c);
  Gauge& g = r.gauge("g", "h");
  EXPECT_EQ(&r.gauge("g", "h"), &g);
  Histogram& h = r.histogram("h_seconds", "h", latency_buckets());
  std::vector<double> with_inf = latency_buckets();
  with_inf.push_back(std::numeric_limits<double>::infinity());
  EXPECT_EQ(&r.histogram("h_seconds", "h", with_inf), &h);
  CounterFamily& cf = r.counter_family("cf_total", "h", {"a", "b"});
  EXPECT_EQ(&r.counter_family("cf_total", "h", {"a", "b"}), &cf);
  GaugeFamily& gf = r.gauge_family("gf", "h", {"a"});
  EXPECT_EQ(&r.gauge_family("gf", "h", {"a"}), &gf);
  HistogramFamily& hf = r.histogram_family("hf_seconds", "h", {"a"}, {1, 2});
  EXPECT_EQ(&r.histogram_family("hf_seconds", "h", {"a"}, {1, 2}), &hf);
  EXPECT_EQ(r.render().find("other help"), std::string::npos);
}

TEST(Registry, GaugeCallbackIsReadAtScrapeTimeAndCanBeReplaced) {
  Registry r;
  std::atomic<std::int64_t> backlog{3};
  r.gauge_callback("backlog", "h", [&backlog] { return backlog.load(); });
  EXPECT_EQ(r.render(), "# HELP backlog h\n# TYPE backlog gauge\nbacklog 3\n");
  backlog = 11;
  EXPECT_EQ(r.render(), "# HELP backlog h\n# TYPE backlog gauge\nbacklog 11\n");
  r.gauge_callback("backlog", "h", [] { return std::int64_t{-1}; });
  EXPECT_EQ(r.render(), "# HELP backlog h\n# TYPE backlog gauge\nbacklog -1\n");
}

TEST(Registry, RenderRunsConcurrentlyWithUpdatesAndRegistration) {
  // Workers keep updating (and registering children) until the scraper has
  // rendered kRenders times, so every render overlaps with updates.
  constexpr int kThreads = 4;
  constexpr int kRenders = 50;
  Registry r;
  Counter& c = r.counter("c_total", "h");
  std::atomic<int> renders{0};
  std::vector<std::uint64_t> done(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HistogramFamily& f = r.histogram_family("lat_seconds", "h", {"t"}, latency_buckets());
      Histogram& h = f.with({std::to_string(t)});
      std::uint64_t n = 0;
      do {
        c.inc();
        h.observe(0.001);
        r.gauge_family("g", "h", {"n"}).with({std::to_string(n % 16)}).set(1);
        ++n;
      } while (renders.load() < kRenders);
      done[static_cast<std::size_t>(t)] = n;
    });
  }
  for (int i = 0; i < kRenders; ++i) {
    const std::string text = r.render();
    EXPECT_EQ(text.rfind("# HELP c_total h\n", 0), 0u);
    renders.fetch_add(1);
  }
  for (std::thread& t : threads) t.join();
  std::uint64_t total = 0;
  for (std::uint64_t n : done) total += n;
  EXPECT_EQ(c.value(), total);
  const std::string text = r.render();
  EXPECT_NE(text.find("c_total " + std::to_string(total) + "\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{t=\"0\"} " + std::to_string(done[0]) + "\n"), std::string::npos);
}

// ------------------------------------------------------------ death tests

TEST(RegistryDeathTest, RejectsInvalidMetricNames) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.gauge("", "h"), "invalid metric name \"\"");
  EXPECT_DEATH(r.gauge("1abc", "h"), "invalid metric name \"1abc\"");
  EXPECT_DEATH(r.gauge("a-b", "h"), "invalid metric name \"a-b\"");
  EXPECT_DEATH(r.gauge("caf\xC3\xA9", "h"), "invalid metric name");
  EXPECT_DEATH(r.gauge_callback("a b", "h", [] { return std::int64_t{0}; }), "invalid metric name \"a b\"");
  r.gauge(":a_b:c9", "colons are allowed in metric names");
}

TEST(RegistryDeathTest, RejectsInvalidLabelNames) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.gauge_family("g", "h", {"a:b"}), "invalid label name \"a:b\"");
  EXPECT_DEATH(r.gauge_family("g", "h", {"1a"}), "invalid label name \"1a\"");
  EXPECT_DEATH(r.gauge_family("g", "h", {""}), "invalid label name \"\"");
  EXPECT_DEATH(r.gauge_family("g", "h", {"__name"}), "reserved");
  EXPECT_DEATH(r.gauge_family("g", "h", {"a", "a"}), "duplicate label name \"a\"");
  EXPECT_DEATH(r.histogram_family("h", "h", {"le"}, {1}), "cannot have a label \"le\"");
  r.gauge_family("g", "h", {"_a1", "le"});  // "le" is fine outside histograms
}

TEST(RegistryDeathTest, RejectsCounterWithoutTotalSuffix) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.counter("appends", "h"), "counter name \"appends\" must end in \"_total\"");
  EXPECT_DEATH(r.counter_family("appends_totals", "h", {"a"}), "must end in \"_total\"");
}

TEST(RegistryDeathTest, RejectsConflictingReRegistration) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.counter("x_total", "h");
  r.gauge_family("g", "h", {"a"});
  r.histogram("h_seconds", "h", {1, 2});
  r.gauge_callback("cb", "h", [] { return std::int64_t{0}; });
  EXPECT_DEATH(r.gauge("x_total", "h"), "\"x_total\" registered again as a gauge with another type");
  EXPECT_DEATH(r.counter_family("x_total", "h", {"a"}), "\"x_total\" registered again with other label names");
  EXPECT_DEATH(r.gauge_family("g", "h", {"b"}), "other label names");
  EXPECT_DEATH(r.gauge("g", "h"), "other label names");
  EXPECT_DEATH(r.histogram("h_seconds", "h", {1, 3}), "other buckets");
  EXPECT_DEATH(r.gauge("cb", "h"), "another type");
  EXPECT_DEATH(r.gauge_callback("g", "h", [] { return std::int64_t{0}; }), "another type");
  EXPECT_DEATH(r.gauge("h_seconds_count", "h"), "collides with a series of the histogram \"h_seconds\"");
  r.gauge("other_sum", "h");
  EXPECT_DEATH(r.histogram("other", "h", {1}), "collides with the metric \"other_sum\"");
}

TEST(RegistryDeathTest, RejectsBadBucketsAndLabelCounts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  EXPECT_DEATH(r.histogram("h", "h", {1, 1}), "strictly increasing");
  EXPECT_DEATH(r.histogram("h", "h", {2, 1}), "strictly increasing");
  EXPECT_DEATH(r.histogram("h", "h", {std::nan(""), 1}), "finite");
  EXPECT_DEATH(r.histogram("h", "h", {-std::numeric_limits<double>::infinity(), 1}), "finite");
  CounterFamily& f = r.counter_family("f_total", "h", {"a", "b"});
  EXPECT_DEATH(f.with({"only one"}), "2 label name\\(s\\) given 1 label value\\(s\\)");
  EXPECT_DEATH(r.counter("f_total", "h"), "other label names");
}

// ------------------------------------------------------- the real peer

// promtool (Prometheus' own parser and linter) must accept a scrape with
// every kind of metric and awkward label values: exit 0, nothing printed.
TEST(Promtool, AcceptsRenderedRegistry) {
  const CommandResult which = run_command("command -v promtool");
  ASSERT_EQ(which.status, 0) << "promtool not found (Debian package prometheus): run scripts/install-deps.sh";

  Registry r;
  r.counter("horizon_appends_total", "Appends acknowledged.").inc(12345);
  CounterFamily& requests =
      r.counter_family("horizon_http_requests_total", "HTTP requests by route and code.", {"route", "code"});
  requests.with({"/v1/streams/{name}", "200"}).inc(3);
  requests.with({"back\\slash \"quoted\"\nnewline", "500"}).inc();
  requests.with({"caf\xC3\xA9 \xF0\x9F\x98\x80", "404"}).inc(2);
  requests.with({"invalid \xFF\xFE utf-8", "400"}).inc();
  requests.with({"", ""}).inc();
  requests.with({"le=\"1\",x=\"y\"}", "201"}).inc();

  r.gauge("horizon_open_streams", "Streams open now.").set(-3);
  GaugeFamily& sizes = r.gauge_family("horizon_segment_bytes", "Bytes in the current WAL segment.", {"segment"});
  sizes.with({"000001.log"}).set(4096);
  sizes.with({"\\"}).set(std::numeric_limits<std::int64_t>::max());

  Histogram& latency = r.histogram("horizon_append_duration_seconds", "Append latency.", latency_buckets());
  for (double v : {0.00003, 0.0004, 0.02, 0.7, 3.0, 42.0}) latency.observe(v);
  HistogramFamily& fsync = r.histogram_family("horizon_fsync_duration_seconds", "fdatasync latency by file kind.",
                                              {"kind"}, {0.001, 0.01, 0.1});
  fsync.with({"wal"}).observe(0.002);
  fsync.with({"state\nfile"}).observe(0.5);
  r.histogram("horizon_empty_duration_seconds", "A histogram with no observation.", {0.5, 1});

  r.gauge_callback("horizon_ship_backlog_chunks", "Chunks waiting to be shipped.", [] { return std::int64_t{17}; });
  r.gauge_family("horizon_unused_streams", "A family without children.", {"stream"});

  const std::string text = r.render();
  std::string path = ::testing::TempDir() + "metrics_promtool_XXXXXX";
  const int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0) << "mkstemp " << path;
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(::close(fd), 0);

  const CommandResult check = run_command("promtool check metrics < '" + path + "'");
  ::unlink(path.c_str());
  EXPECT_EQ(check.status, 0) << check.output << "\n--- rendered text ---\n" << text;
  EXPECT_EQ(check.output, "") << "\n--- rendered text ---\n" << text;
}

}  // namespace
}  // namespace horizon::metrics
