// engine_bench: durable append throughput and latency of the storage engine,
// against the raw fdatasync rate of the same directory measured in the same
// run (issue: storage engine, "Performance").
//
//   engine_bench [--dir DIR] [--seconds S] [--only APPENDERSxLINES]...
//
// Baseline: append 128 bytes + fdatasync, one thread. Then, for {1, 16, 64}
// concurrent appenders x {1, 10, 100} lines of ~120 bytes per append, the
// engine (real files, group commit) runs for S seconds per configuration.

#include "wal/fs.h"
#include "writer/engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using horizon::StreamName;

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Raw {
  double rate, p50_ms, p99_ms;
};

Raw raw_fdatasync(const std::string& dir, double seconds) {
  const std::string path = dir + "/raw-fdatasync.bin";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("open");
    std::exit(1);
  }
  char buf[128];
  std::memset(buf, 'x', sizeof buf);
  std::vector<double> lat;
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    const auto t0 = Clock::now();
    if (::write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf) || ::fdatasync(fd) != 0) {
      std::perror("write/fdatasync");
      std::exit(1);
    }
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  std::filesystem::remove(path);
  const double n = static_cast<double>(lat.size());
  return {n / total, percentile(lat, 0.5), percentile(lat, 0.99)};
}

struct Result {
  double appends_per_s, lines_per_s, p50_ms, p99_ms, lines_per_sync, syncs_per_s, sync_ms;
  std::uint64_t syncs;
};

Result run_engine(const std::string& dir, int appenders, int lines_per_append, double seconds) {
  std::filesystem::remove_all(dir);
  auto fs = std::move(horizon::wal::open_posix_fs(dir).value());
  horizon::writer::EngineOptions o;
  // Time spent inside the WAL's fdatasync, to tell the sync itself from the
  // work around it (sequencing, chunk writes, wake-ups).
  std::atomic<std::uint64_t> sync_ns{0};
  o.on_sync = [&sync_ns](double s) { sync_ns += static_cast<std::uint64_t>(s * 1e9); };
  auto engine = std::move(horizon::writer::Engine::open(*fs, o).value());
  const auto stream = StreamName::parse("/bench").value();
  if (!engine->create_stream_sync(stream)) std::exit(1);
  const std::string line(120, 'e');
  const auto before = engine->stats();
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(appenders));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int t = 0; t < appenders; ++t) {
    threads.emplace_back([&, t] {
      horizon::wire::AppendRequest req{stream, std::vector<std::string>(static_cast<std::size_t>(lines_per_append), line),
                                       std::nullopt};
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        auto r = engine->append_sync(req);
        if (!r) {
          std::fprintf(stderr, "append failed: %s\n", r.error().to_string().c_str());
          std::exit(1);
        }
        lat[static_cast<std::size_t>(t)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  const auto after = engine->stats();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  const double n = static_cast<double>(all.size());
  const auto syncs = after.commits - before.commits;
  const double sync_ms_total = static_cast<double>(sync_ns.load()) / 1e6;
  const auto lines = after.lines - before.lines;
  Result r{n / total,
           static_cast<double>(lines) / total,
           percentile(all, 0.5),
           percentile(all, 0.99),
           syncs ? static_cast<double>(lines) / static_cast<double>(syncs) : 0,
           static_cast<double>(syncs) / total,
           syncs ? sync_ms_total / static_cast<double>(syncs) : 0,
           syncs};
  (void)engine->close();
  engine.reset();
  fs.reset();
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "bench-data";
  double seconds = 2.0;
  std::vector<std::pair<int, int>> configs;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--only") == 0) {
      int a = 0, l = 0;
      if (std::sscanf(argv[i + 1], "%dx%d", &a, &l) != 2 || a < 1 || l < 1) {
        std::fprintf(stderr, "engine_bench: --only wants APPENDERSxLINES, e.g. 16x1, not '%s'\n", argv[i + 1]);
        return 64;
      }
      configs.emplace_back(a, l);
    }
  }
  if (configs.empty()) {
    for (int a : {1, 16, 64}) {
      for (int l : {1, 10, 100}) configs.emplace_back(a, l);
    }
  }
  std::filesystem::create_directories(dir);
  dir = std::filesystem::canonical(dir).string();
  std::printf("engine_bench: dir=%s seconds/config=%.1f cores=%u line=120B chunk=8MiB\n", dir.c_str(), seconds,
              std::thread::hardware_concurrency());
  const Raw raw = raw_fdatasync(dir, seconds);
  std::printf("baseline raw fdatasync (128 B append + fdatasync, 1 thread): %.0f syncs/s  p50 %.3f ms  p99 %.3f ms\n",
              raw.rate, raw.p50_ms, raw.p99_ms);
  std::printf("%-10s %-6s %12s %12s %9s %9s %8s %10s %8s %11s %10s\n", "appenders", "lines", "appends/s", "lines/s",
              "p50 ms", "p99 ms", "syncs", "syncs/s", "sync ms", "lines/sync", "x raw rate");
  for (const auto& [appenders, lines] : configs) {
    {
      const auto r = run_engine(dir + "/engine", appenders, lines, seconds);
      std::printf("%-10d %-6d %12.0f %12.0f %9.3f %9.3f %8llu %10.0f %8.3f %11.1f %10.2f\n", appenders, lines,
                  r.appends_per_s, r.lines_per_s, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.syncs),
                  r.syncs_per_s, r.sync_ms, r.lines_per_sync, r.appends_per_s / raw.rate);
      std::fflush(stdout);
    }
  }
  std::printf("targets: 1x1 >= 0.80 x raw rate; 16x1 >= 8 x raw rate; 16x100 >= 2,000,000 lines/s; "
              "p99 <= 3 x raw p99 (%.3f ms)\n",
              3 * raw.p99_ms);
  return 0;
}
