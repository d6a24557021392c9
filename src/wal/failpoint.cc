#include "wal/failpoint.h"

#include "core/text.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

namespace horizon::failpoint {
namespace {

// The registry: every failpoint the code may hit. Every name here must be hit
// by the test suite (a test enumerates registered() and fails for a point
// that never fired), so a point that is no longer reached is noticed.
// Points of the storage engine are exercised by src/writer/crash_test.cc,
// points of the shipper ("ship.") by src/server/shipper_test.cc.
constexpr std::array<std::string_view, 9> kRegistry = {
    "wal.after_write_before_sync",
    "wal.after_sync_before_ack",
    "wal.rotate.after_create_before_dirsync",
    "chunk.after_write",
    "meta.after_tmp_write",
    "meta.after_rename_before_dirsync",
    "checkpoint.after_chunk_sync",
    "checkpoint.before_segment_delete",
    "ship.after_upload_before_mark",
};

constexpr char kEnvVar[] = "EH_FAILPOINT";

struct Point {
  // Counters are lock-free so that disarmed hits stay cheap.
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> fired{0};
  // Guarded by State::mu.
  Action action = Action::none;
  int skip = 0;
  int count = 0;  // < 0: forever
  int delay_ms = 0;
  std::uint64_t seen = 0;  // hits since the point was armed
};

struct State {
  std::mutex mu;
  std::array<Point, kRegistry.size()> points;
  std::atomic<bool> any_armed{false};
  std::atomic<CrashMode> crash_mode{CrashMode::throw_exception};
};

State& state() {
  static State s;
  return s;
}

std::optional<std::size_t> find_index(std::string_view name) {
  for (std::size_t i = 0; i < kRegistry.size(); ++i) {
    if (kRegistry[i] == name) return i;
  }
  return std::nullopt;
}

// Recomputes the fast-path flag; the caller holds State::mu.
void refresh_any_armed(State& s) {
  bool any = false;
  for (const Point& p : s.points) any = any || p.action != Action::none;
  s.any_armed.store(any, std::memory_order_relaxed);
}

void write_stderr(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

[[noreturn]] void crash(std::string_view name, CrashMode mode) {
  if (mode == CrashMode::throw_exception) throw SimulatedCrash{std::string(name)};
  std::string line = "failpoint " + std::string(name) + ": crash\n";
  write_stderr(line);
  ::_exit(137);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a decimal int in [min, 1'000'000].
std::optional<int> parse_int(std::string_view s, int min) {
  if (s.empty() || s.size() > 7) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min) return std::nullopt;
  return v;
}

struct EnvItem {
  std::string_view name;
  Action action = Action::none;
  int skip = 0;
  int delay_ms = 0;
};

Error env_error(std::string_view item, std::string_view what) {
  return Error::make(errc::invalid_argument,
                     std::string(kEnvVar) + ": " + std::string(what) + " in \"" + printable_excerpt(item) + "\"");
}

// One "name=action[@n]" item.
Result<EnvItem> parse_item(std::string_view item) {
  std::size_t eq = item.find('=');
  if (eq == std::string_view::npos) return env_error(item, "expected name=action");
  EnvItem out;
  out.name = trim(item.substr(0, eq));
  std::string_view action = trim(item.substr(eq + 1));
  if (!find_index(out.name)) return env_error(item, "unknown failpoint name");
  if (std::size_t at = action.rfind('@'); at != std::string_view::npos) {
    std::optional<int> nth = parse_int(trim(action.substr(at + 1)), 1);
    if (!nth) return env_error(item, "expected a hit number >= 1 after '@'");
    out.skip = *nth - 1;
    action = trim(action.substr(0, at));
  }
  if (action == "crash") {
    out.action = Action::crash;
  } else if (action == "eio") {
    out.action = Action::eio;
  } else if (action == "enospc") {
    out.action = Action::enospc;
  } else if ((action.starts_with("sleep(") || action.starts_with("delay(")) && action.ends_with(")")) {
    std::string_view ms = action.substr(6, action.size() - 7);
    std::optional<int> v = parse_int(trim(ms), 0);
    if (!v) return env_error(item, "expected sleep(<milliseconds>)");
    out.action = Action::delay;
    out.delay_ms = *v;
  } else {
    return env_error(item, "unknown action (expected crash, eio, enospc or sleep(<ms>))");
  }
  return out;
}

}  // namespace

Result<void> hit(std::string_view name) {
  std::optional<std::size_t> index = find_index(name);
  if (!index) {
    std::string line = "failpoint: hit of unregistered name \"" + std::string(name) + "\" (add it to failpoint.cc)\n";
    write_stderr(line);
    std::abort();
  }
  State& s = state();
  Point& p = s.points[*index];
  p.hits.fetch_add(1, std::memory_order_relaxed);
  if (!s.any_armed.load(std::memory_order_relaxed)) return {};

  Action action = Action::none;
  int delay_ms = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (p.action == Action::none) return {};
    ++p.seen;
    if (p.seen <= static_cast<std::uint64_t>(p.skip)) return {};
    action = p.action;
    delay_ms = p.delay_ms;
    p.fired.fetch_add(1, std::memory_order_relaxed);
    if (p.count >= 0 && p.seen >= static_cast<std::uint64_t>(p.skip) + static_cast<std::uint64_t>(p.count)) {
      p.action = Action::none;
      refresh_any_armed(s);
    }
  }

  switch (action) {
    case Action::none: return {};
    case Action::crash: crash(name, s.crash_mode.load(std::memory_order_relaxed));
    case Action::eio: return Error::make(errc::storage_failed, "failpoint " + std::string(name) + ": injected EIO");
    case Action::enospc: return Error::make(errc::disk_full, "failpoint " + std::string(name) + ": injected ENOSPC");
    case Action::delay: std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms)); return {};
  }
  return {};
}

bool arm(std::string_view name, Action action, int skip, int count, int delay_ms) {
  std::optional<std::size_t> index = find_index(name);
  if (!index) return false;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  Point& p = s.points[*index];
  p.action = count == 0 ? Action::none : action;
  p.skip = skip < 0 ? 0 : skip;
  p.count = count;
  p.delay_ms = delay_ms < 0 ? 0 : delay_ms;
  p.seen = 0;
  refresh_any_armed(s);
  return true;
}

void disarm_all() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  for (Point& p : s.points) {
    p.action = Action::none;
    p.seen = 0;
  }
  s.any_armed.store(false, std::memory_order_relaxed);
}

void set_crash_mode(CrashMode mode) { state().crash_mode.store(mode, std::memory_order_relaxed); }

Result<void> arm_from_env() {
  const char* env = std::getenv(kEnvVar);
  if (env == nullptr) return {};
  std::string_view rest(env);
  std::vector<EnvItem> items;
  // Parse everything first so that a bad item arms nothing.
  while (!rest.empty()) {
    std::size_t semi = rest.find(';');
    std::string_view item = trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (item.empty()) continue;
    Result<EnvItem> parsed = parse_item(item);
    if (!parsed) return parsed.error();
    items.push_back(*parsed);
  }
  for (const EnvItem& item : items) arm(item.name, item.action, item.skip, 1, item.delay_ms);
  return {};
}

const std::vector<std::string>& registered() {
  static const std::vector<std::string> names(kRegistry.begin(), kRegistry.end());
  return names;
}

std::uint64_t hits(std::string_view name) {
  std::optional<std::size_t> index = find_index(name);
  return index ? state().points[*index].hits.load(std::memory_order_relaxed) : 0;
}

std::uint64_t fired(std::string_view name) {
  std::optional<std::size_t> index = find_index(name);
  return index ? state().points[*index].fired.load(std::memory_order_relaxed) : 0;
}

}  // namespace horizon::failpoint
