#pragma once
// SimFs: an in-memory Fs (fs.h) for crash and fault-injection tests, in the
// spirit of SQLite's crash VFS, LevelDB's fault_injection_test and the ALICE
// study of crash states. It keeps, per file, the durable content (as of the
// last successful sync) next to the volatile content and the unsynced writes
// and truncates since then; per directory, the durable entries next to the
// current ones and the unsynced creations, renames and removals since the
// last sync_dir. `restart()` then picks one crash state that POSIX allows.
//
// Thread-safety: one mutex inside guards all state, so the SimFs and its File
// objects may be used from several threads (as fs.h allows).
//
// Model, in detail:
// - Paths are relative and '/'-separated; "" and "." name the root (accepted
//   by mkdirs, sync_dir, list and exists). Components may not be empty, "."
//   or ".." (errc::invalid_argument). A directory must exist (mkdirs) before
//   files are created in it, or open(create) fails with storage_failed
//   "No such file or directory".
// - Files are inodes: an open File keeps reading and writing its inode after
//   the name was renamed or removed, like POSIX.
// - Every creation, rename, removal and mkdirs is a directory operation that
//   is durable only after sync_dir of the directory holding the name; this
//   includes directories made by mkdirs (sync the parent after mkdirs). A
//   rename between two directories is recorded in both, and each directory
//   persists its half independently (the file may end up under both names or
//   under neither if only one side was synced).
// - Mutating operations (counted by mutating_ops() and by crash_after_ops):
//   File::pwrite, File::truncate, File::sync, Fs::rename, Fs::remove of an
//   existing file, Fs::mkdirs that creates at least one directory, Fs::sync_dir,
//   and Fs::open(create) that creates a file. Calls rejected by argument
//   checks (bad path, read-only handle) are not counted.
// - A failed File::sync (fail_sync) behaves like Linux after a failed
//   fdatasync: the error is returned, the data stays visible to reads, but the
//   unsynced writes of that file are dropped from the way to durability, so a
//   later sync that "succeeds" does NOT make those bytes durable (after
//   restart() they are gone, replaced by the older durable bytes or a hole of
//   zeros). A failed sync_dir leaves its directory operations unsynced; a
//   later successful sync_dir persists them.
// - The test-only helpers (read_all, corrupt, set_content, the counters) work
//   even after a simulated crash; every Fs and File call throws until restart.
//   corrupt and set_content throw std::invalid_argument for a bad path.

#include "core/errc.h"
#include "wal/fs.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::wal {

namespace detail {
struct SimState;
}

class SimFs final : public Fs {
 public:
  // All randomness (torn writes, which unsynced operations survive) comes from
  // a generator seeded with `seed`, so a failing seed replays exactly.
  explicit SimFs(std::uint64_t seed);
  ~SimFs() override;
  SimFs(const SimFs&) = delete;
  SimFs& operator=(const SimFs&) = delete;

  // Fs (see fs.h and the model above).
  [[nodiscard]] Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  [[nodiscard]] Result<void> rename(const std::string& from, const std::string& to) override;
  [[nodiscard]] Result<void> remove(const std::string& path) override;
  [[nodiscard]] Result<void> mkdirs(const std::string& path) override;
  [[nodiscard]] Result<void> sync_dir(const std::string& path) override;
  [[nodiscard]] Result<std::vector<std::string>> list(const std::string& dir) override;
  [[nodiscard]] Result<bool> exists(const std::string& path) override;

  // --- Crashes --------------------------------------------------------------

  // The (n+1)-th mutating operation from now does not complete: a pwrite
  // first applies a random prefix (possibly empty) of its bytes to the
  // volatile state, then the call throws failpoint::SimulatedCrash{"simfs"}.
  // From then on every Fs and File call throws SimulatedCrash until restart().
  void crash_after_ops(std::uint64_t n);
  // Crashes now: the next Fs or File call of any kind throws.
  void crash_now();
  // True between a simulated crash and the next restart.
  [[nodiscard]] bool crashed() const;

  // Power cut and reboot. Each directory keeps its durable entries plus a
  // random prefix of its unsynced operations; each surviving file gets its
  // durable content with each unsynced write/truncate (in order) dropped,
  // applied, or torn (a random prefix, the rest of its range possibly filled
  // with zeros or garbage). The result becomes both volatile and durable;
  // File objects opened before become stale (their calls return
  // storage_failed "stale file handle after restart"); the crash flag and any
  // pending crash_after_ops / fail_sync / fail_write are cleared.
  void restart();
  // A process kill without power loss: all volatile state (the page cache)
  // survives as it is and stays as unsynced as it was; File objects become
  // stale and the crash flag and pending injections are cleared.
  void restart_clean();

  // --- Faults (returned as errors, nothing thrown) ---------------------------

  // The nth (1 = the next) File::sync or sync_dir call from now fails with
  // `code` (storage_failed for EIO, disk_full for ENOSPC). See the model above
  // for what a failed sync does to the data.
  void fail_sync(std::uint64_t nth, errc code);
  // The nth (1 = the next) File::pwrite from now fails with `code` after
  // applying a random strict prefix of its bytes (a short write, then an error).
  void fail_write(std::uint64_t nth, errc code);
  // The total size of all live files' volatile content may not exceed
  // `bytes`: a pwrite or truncate that would grow past it fails with disk_full
  // and applies nothing. Shrinking always works.
  void set_capacity(std::uint64_t bytes);
  void clear_capacity();

  // --- Inspection and test setup ---------------------------------------------

  // Mutating operations attempted since construction (including a crashed one).
  [[nodiscard]] std::uint64_t mutating_ops() const;
  // Successful File::sync and sync_dir calls since construction.
  [[nodiscard]] std::uint64_t syncs() const;
  // The volatile content of a file (chunk_not_found if missing).
  [[nodiscard]] Result<std::string> read_all(const std::string& path) const;
  // Overwrites bytes of an existing file in both its volatile and durable
  // content (extending it with zeros if needed), for corruption tests.
  void corrupt(const std::string& path, std::uint64_t offset, std::string_view bytes);
  // Creates or replaces a file whose content and directory entry (and missing
  // parent directories) are durable at once.
  void set_content(const std::string& path, std::string_view bytes);

 private:
  std::shared_ptr<detail::SimState> state_;
};

}  // namespace horizon::wal
