#pragma once
// The file-system interface that every durable byte of the Writer goes
// through, so that tests can swap the real POSIX implementation for a
// simulated one that loses unsynced data at a simulated crash.
//
// Paths are relative to the Fs root (the data directory), use '/' and are
// built only by the code in wal/filename.h (never from user input).
//
// Errors: every call returns Result; codes used are errc::storage_failed
// (EIO and other I/O errors), errc::disk_full (ENOSPC / EDQUOT),
// errc::stream_not_found is never used here; a missing file gives
// errc::chunk_not_found only from `open` without `create`.
//
// Thread-safety: an Fs may be used from several threads at once; one File
// object may be used by several threads for pread, but its writers must be
// serialized by the caller.

#include "core/errc.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::wal {

class File {
 public:
  virtual ~File() = default;

  // Writes all of `data` at `offset` (loops over short writes and EINTR).
  [[nodiscard]] virtual Result<void> pwrite(std::string_view data, std::uint64_t offset) = 0;
  // Reads up to `size` bytes at `offset`; fewer only at end of file.
  [[nodiscard]] virtual Result<std::string> pread(std::uint64_t offset, std::size_t size) = 0;
  // fdatasync: after success every byte written so far survives power loss.
  [[nodiscard]] virtual Result<void> sync() = 0;
  [[nodiscard]] virtual Result<std::uint64_t> size() = 0;
  // Shrinks or extends (with zeros) to `size`.
  [[nodiscard]] virtual Result<void> truncate(std::uint64_t size) = 0;
};

enum class OpenMode {
  read_only,      // the file must exist
  read_write,     // the file must exist
  create,         // read-write; created empty if missing, kept if present
};

class Fs {
 public:
  virtual ~Fs() = default;

  // Opens `path`; a missing file with read_only/read_write gives chunk_not_found.
  [[nodiscard]] virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
  // Atomically replaces `to` with `from` (rename(2)). Durable only after
  // sync_dir of the parent directory.
  [[nodiscard]] virtual Result<void> rename(const std::string& from, const std::string& to) = 0;
  // Removes a file; removing a missing file is not an error.
  [[nodiscard]] virtual Result<void> remove(const std::string& path) = 0;
  // Creates a directory (and missing parents); existing is not an error.
  [[nodiscard]] virtual Result<void> mkdirs(const std::string& path) = 0;
  // fsync of a directory: makes creations, renames and removals inside it durable.
  [[nodiscard]] virtual Result<void> sync_dir(const std::string& path) = 0;
  // The names (not paths) of the regular files directly in `dir`, sorted.
  [[nodiscard]] virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
  [[nodiscard]] virtual Result<bool> exists(const std::string& path) = 0;
};

// mkdir -p of an absolute or relative path on disk, durably: the parent of
// every directory it creates is fsync'ed, so the new names survive a power
// loss (an existing path changes nothing and syncs nothing).
[[nodiscard]] Result<void> make_dirs_durably(const std::string& path);

// The real implementation over a directory on disk (created durably if missing).
// Opens everything relative to a directory fd of the root, refusing symlinks
// and ".." (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where available).
[[nodiscard]] Result<std::unique_ptr<Fs>> open_posix_fs(const std::string& root);

// An exclusive advisory lock (flock) on `<root>/LOCK`, held until the object
// is destroyed. Fails with not_ready and a clear message if another process
// holds it.
class DirLock {
 public:
  [[nodiscard]] static Result<std::unique_ptr<DirLock>> acquire(const std::string& root);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace horizon::wal
