#pragma once
// Named failpoints at every durability step (RELIABILITY A2).
//
// Code calls `failpoint::hit("wal.after_write_before_sync")` at the step; a
// test (or the environment variable EH_FAILPOINT=<name>=<action>[;...])
// arms a point with an action:
//   crash   - simulated crash: throws SimulatedCrash in tests
//             (CrashMode::throw_exception, the default) or ends the process
//             at once with _exit(137) (CrashMode::exit_process, the binary)
//   eio     - `hit` returns errc::storage_failed
//   enospc  - `hit` returns errc::disk_full
//   sleep(ms) / delay - sleeps, then continues
// Every name must be in the registry (failpoint.cc); hitting an unknown name
// aborts, so the suite can enumerate the registry and fail if a registered
// point never fires.
//
// Thread-safety: all functions are safe to call concurrently. Disarmed
// points cost one relaxed atomic load.

#include "core/errc.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::failpoint {

enum class Action { none, crash, eio, enospc, delay };
enum class CrashMode { throw_exception, exit_process };

// Thrown by a crash action in CrashMode::throw_exception (and by SimFs when
// its simulated power cut happens). Not derived from std::exception on
// purpose: ordinary catch blocks do not swallow it.
struct SimulatedCrash {
  std::string where;
};

// Evaluates the point: counts the hit, then performs its action.
[[nodiscard]] Result<void> hit(std::string_view name);

// Arms `name`: the action fires on hits number skip+1 .. skip+count
// (count < 0: forever). Returns false for an unregistered name.
bool arm(std::string_view name, Action action, int skip = 0, int count = 1, int delay_ms = 0);
void disarm_all();
void set_crash_mode(CrashMode mode);

// Parses EH_FAILPOINT ("name=crash;name2=sleep(50)"); returns an error for an
// unknown name or action.
[[nodiscard]] Result<void> arm_from_env();

// The registry and the hit counters (hits since process start).
const std::vector<std::string>& registered();
std::uint64_t hits(std::string_view name);
// How often an armed action actually fired at `name`.
std::uint64_t fired(std::string_view name);

}  // namespace horizon::failpoint
