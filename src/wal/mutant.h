#pragma once
// Known-bad variants of the durability code (RELIABILITY row H, harness
// validity): each switches off one step that the crash suites must prove
// necessary. A test turns one on, runs the suite's workload and expects the
// oracle to catch it (src/writer/crash_test.cc, HarnessH.*).
//
// Only code can turn a mutant on: nothing reads the environment or a flag,
// so a Writer binary always runs the real code. Checking one costs a
// relaxed atomic load.
//
// Thread-safety: all functions are safe to call concurrently.

#include <string_view>

namespace horizon::mutant {

enum class Id : unsigned {
  ack_before_sync,       // the commit acknowledges without the WAL fdatasync
  no_dir_fsync,          // no fsync of a directory after creating, renaming or removing in it
  rename_without_sync,   // the snapshot's temporary file is renamed in place unsynced
  retry_sync_after_eio,  // a failed fdatasync is retried and the batch acknowledged if the retry works
  truncate_at_any_damage,  // WAL recovery cuts at a damaged record even when valid records follow it
  follow_symlinks,       // PosixFs resolves paths without RESOLVE_BENEATH / RESOLVE_NO_SYMLINKS
  count_,
};

bool active(Id id);
void set(Id id, bool on);
std::string_view name(Id id);

// Turns `id` on for the life of the object.
class Scoped {
 public:
  explicit Scoped(Id id) : id_(id) { set(id_, true); }
  ~Scoped() { set(id_, false); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;

 private:
  Id id_;
};

}  // namespace horizon::mutant
