#pragma once
// `horizon writer`: the Writer process (SPEC §11). Runs until SIGINT or
// SIGTERM, then stops accepting, finishes in-flight requests, checkpoints
// and exits 0.
//
// Thread-safety: run_writer is called once, from main.

#include "core/errc.h"
#include "core/text.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace horizon::server {

struct WriterOptions {
  std::string data_dir;        // empty: default_data_dir()
  std::string store_url;       // empty: STORE, else file://<data>/store
  std::string api = "0.0.0.0:9092";
  std::string pubsub = "0.0.0.0:9091";
  std::string metrics = "0.0.0.0:9094";
  std::string advertise = "127.0.0.1";
  std::uint64_t chunk_size = 8u << 20;
  // WAL bytes between checkpoints: bounds the WAL's size and the replay at
  // the next start; each checkpoint syncs the chunk files written since the
  // last one (on its own thread, beside the commits).
  std::uint64_t checkpoint_bytes = 64u << 20;
  double activity_interval_seconds = 5.0;  // SPEC §7
  // "io": an API thread commits the queue itself when the WAL is free
  // (Engine::submit_and_lead); "thread": every commit on the commit thread.
  std::string commit_on = "io";
  // Cap of the shipper's retry backoff while the store fails (exponential
  // from 0.2 s with full jitter); small values are for tests.
  double ship_backoff_max_seconds = 60.0;
  int io_threads = 2;  // API I/O threads (at least 2, see --io-threads)
  // Under concurrent appends the commit thread starts a WAL sync no sooner
  // than this many times the recent sync duration after the previous one
  // (EngineOptions::sync_pacing); 0 turns it off.
  double sync_pacing = 1.5;
};

// $HORIZON_DATA, else $HOME/.local/share/event-horizon, else ./horizon-data.
std::string default_data_dir();

// The exit status after a storage failure (EX_IOERR): the process stops
// itself within a second of a failed fdatasync or WAL write (fail-stop) and
// never returns from run_writer.
inline constexpr int kExitStorageFailed = 74;

// The exit status of a start refused for a reason only the operator can
// change (EX_CONFIG): a flag, a descriptor limit too low, a store that
// belongs to another Writer (or holds chunks but no discovery record) or a
// data directory bound to another store, a damaged identity or discovery
// record, a data directory older than its store (the history mark). A
// supervisor should not restart it (contrib/systemd:
// RestartPreventExitStatus=78).
inline constexpr int kExitRefused = 78;

// For the starts of `horizon writer` and `horizon pusher`: each logs `what`
// as an error and returns the exit status. start_failed: 1, a reason a
// restart may cure (a store, port or Writer not reachable yet, a lock still
// held, an I/O error). start_refused: kExitRefused. The Error overload
// classifies by code: invalid_argument, conflict and corruption are refused
// (a flag, an identity or a configuration only the operator can change).
int start_failed(const std::string& what);
int start_refused(const std::string& what);
int start_failed(const Error& e);

// Returns the process exit status: 0 after a clean shutdown (SIGINT or
// SIGTERM); kExitRefused when a start is refused; 1 when it cannot start
// for a reason a restart may cure (the store or a port not reachable yet,
// the lock of a Writer still exiting, an I/O error, damage the storage
// engine found) or the shutdown checkpoint fails.
int run_writer(WriterOptions options);

// How the open-file limit (RLIMIT_NOFILE) is shared: connection caps of the
// API, pub/sub and metrics servers and the engine's LRU of open chunk
// files, plus kOtherDescriptors for the rest (WAL segment, directories,
// snapshot, store connections, epoll/eventfd/timers, logs). Without such a
// budget a flood of TCP connections (no TLS needed) used up the limit and
// the engine's next WAL file operation failed: a fail-stop exit.
struct DescriptorPlan {
  std::size_t api = 0;
  std::size_t pubsub = 0;  // 0 when pub/sub is off
  std::size_t metrics = 0;
  std::size_t engine_files = 0;
  std::size_t total() const { return api + pubsub + metrics + engine_files; }
  friend bool operator==(const DescriptorPlan&, const DescriptorPlan&) = default;
};
inline constexpr std::size_t kOtherDescriptors = 64;
// `wanted` as it is if it fits in `limit`; otherwise lowered to fit (the
// engine keeps at least a quarter, metrics at most 16, pub/sub a third of
// the connections left). Error (invalid_argument, naming the limit and the
// minimum) if even the minimum does not fit.
Result<DescriptorPlan> plan_descriptors(std::uint64_t limit, const DescriptorPlan& wanted);

// "host:port" (core/text.h), for the flags.
using ::horizon::split_host_port;

}  // namespace horizon::server
