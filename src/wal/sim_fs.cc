#include "wal/sim_fs.h"

#include "wal/failpoint.h"
#include "wal/path_internal.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>

namespace horizon::wal {
namespace detail {
namespace {

using InodeId = std::uint64_t;
constexpr InodeId kRootInode = 1;
// Files larger than this are refused (EFBIG), so a wild offset cannot make the
// simulation allocate gigabytes.
constexpr std::uint64_t kMaxFileSize = std::uint64_t{1} << 30;

[[maybe_unused]] std::string strerror_text(const char* text, const char* /*buf*/) { return text; }
[[maybe_unused]] std::string strerror_text(int rc, const char* buf) {
  return rc == 0 ? std::string(buf) : std::string("unknown error");
}

std::string describe_errno(int err) {
  char buf[256] = {};
  return strerror_text(strerror_r(err, buf, sizeof buf), buf);
}

std::string display(std::string_view path) { return path.empty() ? std::string(".") : std::string(path); }

// Same shape and codes as the POSIX implementation's errors.
Error io_error(std::string_view op, std::string_view path, int err) {
  errc code = (err == ENOSPC || err == EDQUOT) ? errc::disk_full : errc::storage_failed;
  return Error::make(code, std::string(op) + " " + display(path) + ": " + describe_errno(err));
}

int errno_of(errc code) { return code == errc::disk_full ? ENOSPC : EIO; }

struct FileOp {
  bool is_truncate = false;
  std::uint64_t offset = 0;  // where a write starts, or the new size of a truncate
  std::string data;
};

// One atomic change to a directory: names removed, then names (re)pointed.
struct DirOp {
  std::vector<std::string> erase;
  std::vector<std::pair<std::string, InodeId>> link;
};

using Entries = std::map<std::string, InodeId>;

struct Inode {
  bool is_dir = false;
  // Files.
  std::string durable;
  std::string current;
  std::vector<FileOp> unsynced;  // applied to `durable` by the next successful sync
  // Directories.
  Entries durable_entries;
  Entries entries;
  std::vector<DirOp> unsynced_dir;
  // Bookkeeping for the capacity: names in current entries, open handles.
  std::uint64_t links = 0;
  std::uint64_t handles = 0;
};

void write_at(std::string& content, std::string_view data, std::uint64_t offset) {
  if (data.empty()) return;
  std::size_t at = static_cast<std::size_t>(offset);
  if (content.size() < at + data.size()) content.resize(at + data.size(), '\0');
  content.replace(at, data.size(), data);
}

void apply_file_op(std::string& content, const FileOp& op) {
  if (op.is_truncate) {
    content.resize(static_cast<std::size_t>(op.offset), '\0');
  } else {
    write_at(content, op.data, op.offset);
  }
}

void apply_dir_op(Entries& entries, const DirOp& op) {
  for (const std::string& name : op.erase) entries.erase(name);
  for (const auto& [name, id] : op.link) entries[name] = id;
}

}  // namespace

struct SimState {
  explicit SimState(std::uint64_t seed) : rng(seed) { inodes[kRootInode].is_dir = true; }

  mutable std::mutex mu;
  std::mt19937_64 rng;
  std::map<InodeId, Inode> inodes;
  InodeId next_inode = kRootInode + 1;
  std::uint64_t epoch = 0;  // bumped by restarts; File objects of older epochs are stale
  bool crashed = false;
  std::optional<std::uint64_t> crash_at;  // the value of `ops` whose operation crashes
  std::uint64_t ops = 0;
  std::uint64_t sync_calls = 0;
  std::uint64_t write_calls = 0;
  std::uint64_t syncs_ok = 0;
  std::map<std::uint64_t, errc> sync_failures;   // sync call number -> code
  std::map<std::uint64_t, errc> write_failures;  // write call number -> code
  std::optional<std::uint64_t> capacity;

  // --- helpers (the caller holds mu) ---

  std::uint64_t uniform(std::uint64_t n) { return n == 0 ? 0 : rng() % n; }

  void throw_if_crashed() const {
    if (crashed) throw failpoint::SimulatedCrash{"simfs"};
  }

  [[noreturn]] void crash() {
    crashed = true;
    crash_at.reset();
    throw failpoint::SimulatedCrash{"simfs"};
  }

  // Counts a mutating operation; true if this is the one that crashes (the
  // caller then applies any partial effect and calls crash()).
  bool begin_mutation() {
    ++ops;
    return crash_at && *crash_at == ops;
  }

  void mutate_or_crash() {
    if (begin_mutation()) crash();
  }

  std::uint64_t usage() const {
    std::uint64_t total = 0;
    for (const auto& [id, ino] : inodes) {
      if (!ino.is_dir && (ino.links > 0 || ino.handles > 0)) total += ino.current.size();
    }
    return total;
  }

  bool fits(const Inode& ino, std::uint64_t new_size) const {
    if (!capacity || new_size <= ino.current.size()) return true;
    return usage() - ino.current.size() + new_size <= *capacity;
  }

  // Walks `count` leading components from the root; 0 or an errno.
  int walk(const std::vector<std::string>& parts, std::size_t count, InodeId& out) const {
    InodeId cur = kRootInode;
    for (std::size_t i = 0; i < count; ++i) {
      const Inode& dir = inodes.at(cur);
      if (!dir.is_dir) return ENOTDIR;
      auto it = dir.entries.find(parts[i]);
      if (it == dir.entries.end()) return ENOENT;
      cur = it->second;
    }
    out = cur;
    return 0;
  }

  // The parent directory of `parts` (non-empty); 0 or an errno.
  int parent_of(const std::vector<std::string>& parts, InodeId& out) const {
    int err = walk(parts, parts.size() - 1, out);
    if (err == 0 && !inodes.at(out).is_dir) return ENOTDIR;
    return err;
  }

  std::optional<InodeId> entry(InodeId dir, const std::string& name) const {
    const Entries& e = inodes.at(dir).entries;
    auto it = e.find(name);
    if (it == e.end()) return std::nullopt;
    return it->second;
  }

  // Applies `op` to the current entries of `dir` and records it as unsynced.
  void dir_change(InodeId dir, DirOp op) {
    Inode& d = inodes.at(dir);
    for (const std::string& name : op.erase) {
      auto it = d.entries.find(name);
      if (it == d.entries.end()) continue;
      --inodes.at(it->second).links;
      d.entries.erase(it);
    }
    for (const auto& [name, id] : op.link) {
      auto it = d.entries.find(name);
      if (it != d.entries.end()) --inodes.at(it->second).links;
      d.entries[name] = id;
      ++inodes.at(id).links;
    }
    // Erases come first in apply_dir_op too, so the replay matches.
    d.unsynced_dir.push_back(std::move(op));
  }

  InodeId new_inode(bool is_dir) {
    InodeId id = next_inode++;
    inodes[id].is_dir = is_dir;
    return id;
  }

  void file_write(Inode& ino, std::string_view data, std::uint64_t offset) {
    if (data.empty()) return;
    write_at(ino.current, data, offset);
    ino.unsynced.push_back(FileOp{false, offset, std::string(data)});
  }

  // Creates missing directories along `parts` directly in durable state.
  InodeId durable_mkdirs(const std::vector<std::string>& parts, std::size_t count) {
    InodeId cur = kRootInode;
    for (std::size_t i = 0; i < count; ++i) {
      Inode& dir = inodes.at(cur);
      if (!dir.is_dir) throw std::invalid_argument("SimFs: " + parts[i - 1] + " is not a directory");
      auto it = dir.entries.find(parts[i]);
      if (it != dir.entries.end()) {
        cur = it->second;
        dir.durable_entries[parts[i]] = cur;
        continue;
      }
      InodeId id = new_inode(true);  // std::map: `dir` stays valid
      dir.entries[parts[i]] = id;
      dir.durable_entries[parts[i]] = id;
      ++inodes.at(id).links;
      cur = id;
    }
    if (!inodes.at(cur).is_dir) throw std::invalid_argument("SimFs: a path component is not a directory");
    return cur;
  }

  // The content a file gets at a power cut: its durable bytes, then each
  // unsynced operation dropped, applied or torn.
  std::string crash_content(const Inode& ino) {
    std::string content = ino.durable;
    for (const FileOp& op : ino.unsynced) {
      std::uint64_t fate = uniform(3);
      if (fate == 0) continue;  // never reached the disk
      if (op.is_truncate || fate == 1) {
        apply_file_op(content, op);
        continue;
      }
      // Torn: a prefix reached the disk; maybe the size grew without the data.
      std::string piece = op.data.substr(0, static_cast<std::size_t>(uniform(op.data.size() + 1)));
      switch (uniform(4)) {
        case 0: piece.resize(op.data.size(), '\0'); break;
        case 1:
          while (piece.size() < op.data.size()) piece.push_back(static_cast<char>(rng() & 0xffU));
          break;
        default: break;
      }
      write_at(content, piece, op.offset);
    }
    return content;
  }

  void recount_links() {
    for (auto& [id, ino] : inodes) ino.links = 0;
    for (auto& [id, ino] : inodes) {
      if (!ino.is_dir) continue;
      for (const auto& [name, child] : ino.entries) ++inodes.at(child).links;
    }
  }

  void after_restart() {
    for (auto& [id, ino] : inodes) ino.handles = 0;
    ++epoch;
    crashed = false;
    crash_at.reset();
    sync_failures.clear();
    write_failures.clear();
  }

  void power_cut() {
    for (auto& [id, ino] : inodes) {
      if (!ino.is_dir) continue;
      Entries e = ino.durable_entries;
      std::uint64_t keep = uniform(ino.unsynced_dir.size() + 1);
      for (std::size_t i = 0; i < keep; ++i) apply_dir_op(e, ino.unsynced_dir[i]);
      ino.entries = e;
      ino.durable_entries = std::move(e);
      ino.unsynced_dir.clear();
    }
    std::set<InodeId> reachable{kRootInode};
    std::vector<InodeId> todo{kRootInode};
    while (!todo.empty()) {
      InodeId id = todo.back();
      todo.pop_back();
      for (const auto& [name, child] : inodes.at(id).entries) {
        if (reachable.insert(child).second && inodes.at(child).is_dir) todo.push_back(child);
      }
    }
    for (auto it = inodes.begin(); it != inodes.end();) {
      it = reachable.count(it->first) != 0 ? std::next(it) : inodes.erase(it);
    }
    for (auto& [id, ino] : inodes) {
      if (ino.is_dir) continue;
      std::string content = crash_content(ino);
      ino.current = content;
      ino.durable = std::move(content);
      ino.unsynced.clear();
    }
    recount_links();
    after_restart();
  }

  // --- File calls ---

  // Throws if crashed; otherwise an error if the handle is stale.
  std::optional<Error> check_handle(std::uint64_t handle_epoch, const std::string& path) const {
    throw_if_crashed();
    if (handle_epoch != epoch) {
      return Error::make(errc::storage_failed, "file " + path + ": stale file handle after restart");
    }
    return std::nullopt;
  }
};

namespace {

class SimFile final : public File {
 public:
  SimFile(std::shared_ptr<SimState> state, InodeId id, std::uint64_t epoch, bool writable, std::string path)
      : state_(std::move(state)), id_(id), epoch_(epoch), writable_(writable), path_(std::move(path)) {}

  ~SimFile() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->epoch != epoch_) return;
    auto it = state_->inodes.find(id_);
    if (it != state_->inodes.end() && it->second.handles > 0) --it->second.handles;
  }

  Result<void> pwrite(std::string_view data, std::uint64_t offset) override {
    SimState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto stale = s.check_handle(epoch_, path_)) return *stale;
    if (!writable_) return io_error("pwrite", path_, EBADF);
    if (offset > kMaxFileSize || data.size() > kMaxFileSize - offset) return io_error("pwrite", path_, EFBIG);
    Inode& ino = s.inodes.at(id_);
    std::uint64_t end = offset + data.size();
    if (s.begin_mutation()) {
      std::string_view prefix = data.substr(0, static_cast<std::size_t>(s.uniform(data.size() + 1)));
      if (s.fits(ino, std::max<std::uint64_t>(ino.current.size(), offset + prefix.size()))) {
        s.file_write(ino, prefix, offset);
      }
      s.crash();
    }
    ++s.write_calls;
    if (auto it = s.write_failures.find(s.write_calls); it != s.write_failures.end()) {
      errc code = it->second;
      s.write_failures.erase(it);
      std::string_view prefix = data.substr(0, static_cast<std::size_t>(s.uniform(data.size())));
      if (s.fits(ino, std::max<std::uint64_t>(ino.current.size(), offset + prefix.size()))) {
        s.file_write(ino, prefix, offset);
      }
      return io_error("pwrite", path_, errno_of(code));
    }
    if (!data.empty() && !s.fits(ino, std::max<std::uint64_t>(ino.current.size(), end))) {
      return io_error("pwrite", path_, ENOSPC);
    }
    s.file_write(ino, data, offset);
    return {};
  }

  Result<std::string> pread(std::uint64_t offset, std::size_t size) override {
    SimState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto stale = s.check_handle(epoch_, path_)) return *stale;
    const std::string& content = s.inodes.at(id_).current;
    if (offset >= content.size()) return std::string();
    return content.substr(static_cast<std::size_t>(offset), size);
  }

  Result<void> sync() override {
    SimState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto stale = s.check_handle(epoch_, path_)) return *stale;
    s.mutate_or_crash();
    Inode& ino = s.inodes.at(id_);
    ++s.sync_calls;
    if (auto it = s.sync_failures.find(s.sync_calls); it != s.sync_failures.end()) {
      errc code = it->second;
      s.sync_failures.erase(it);
      // Like Linux: the dirty pages are marked clean and their data lost for
      // durability, though still visible in the page cache.
      ino.unsynced.clear();
      return io_error("fdatasync", path_, errno_of(code));
    }
    for (const FileOp& op : ino.unsynced) apply_file_op(ino.durable, op);
    ino.unsynced.clear();
    ++s.syncs_ok;
    return {};
  }

  Result<std::uint64_t> size() override {
    SimState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto stale = s.check_handle(epoch_, path_)) return *stale;
    return static_cast<std::uint64_t>(s.inodes.at(id_).current.size());
  }

  Result<void> truncate(std::uint64_t size) override {
    SimState& s = *state_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto stale = s.check_handle(epoch_, path_)) return *stale;
    if (!writable_) return io_error("ftruncate", path_, EBADF);
    if (size > kMaxFileSize) return io_error("ftruncate", path_, EFBIG);
    s.mutate_or_crash();
    Inode& ino = s.inodes.at(id_);
    if (!s.fits(ino, size)) return io_error("ftruncate", path_, ENOSPC);
    ino.current.resize(static_cast<std::size_t>(size), '\0');
    ino.unsynced.push_back(FileOp{true, size, {}});
    return {};
  }

 private:
  std::shared_ptr<SimState> state_;
  InodeId id_;
  std::uint64_t epoch_;
  bool writable_;
  std::string path_;
};

}  // namespace
}  // namespace detail

using detail::InodeId;
using detail::SimState;

SimFs::SimFs(std::uint64_t seed) : state_(std::make_shared<SimState>(seed)) {}
SimFs::~SimFs() = default;

Result<std::unique_ptr<File>> SimFs::open(const std::string& path, OpenMode mode) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("open", path, false);
  if (!parts) return parts.error();
  InodeId dir = 0;
  int err = s.parent_of(*parts, dir);
  if (err == 0) {
    std::optional<InodeId> found = s.entry(dir, parts->back());
    if (found) {
      detail::Inode& ino = s.inodes.at(*found);
      if (ino.is_dir) return detail::io_error("open", path, EISDIR);
      ++ino.handles;
      return std::unique_ptr<File>(
          std::make_unique<detail::SimFile>(state_, *found, s.epoch, mode != OpenMode::read_only, path));
    }
    err = ENOENT;
    if (mode == OpenMode::create) {
      s.mutate_or_crash();
      InodeId id = s.new_inode(false);
      s.dir_change(dir, detail::DirOp{{}, {{parts->back(), id}}});
      ++s.inodes.at(id).handles;
      return std::unique_ptr<File>(std::make_unique<detail::SimFile>(state_, id, s.epoch, true, path));
    }
  }
  if (err == ENOENT && mode != OpenMode::create) {
    return Error::make(errc::chunk_not_found, "open " + path + ": " + detail::describe_errno(err));
  }
  return detail::io_error("open", path, err);
}

Result<void> SimFs::rename(const std::string& from, const std::string& to) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  std::string what = from + " -> " + to;
  Result<std::vector<std::string>> src_parts = detail::split_path("rename", from, false);
  if (!src_parts) return src_parts.error();
  Result<std::vector<std::string>> dst_parts = detail::split_path("rename", to, false);
  if (!dst_parts) return dst_parts.error();
  InodeId src_dir = 0;
  InodeId dst_dir = 0;
  if (int err = s.parent_of(*src_parts, src_dir); err != 0) return detail::io_error("rename", what, err);
  if (int err = s.parent_of(*dst_parts, dst_dir); err != 0) return detail::io_error("rename", what, err);
  std::optional<InodeId> src = s.entry(src_dir, src_parts->back());
  if (!src) return detail::io_error("rename", what, ENOENT);
  std::optional<InodeId> dst = s.entry(dst_dir, dst_parts->back());
  bool src_is_dir = s.inodes.at(*src).is_dir;
  if (dst) {
    if (*dst == *src) return {};  // the same file: rename(2) does nothing
    const detail::Inode& target = s.inodes.at(*dst);
    if (target.is_dir && !src_is_dir) return detail::io_error("rename", what, EISDIR);
    if (!target.is_dir && src_is_dir) return detail::io_error("rename", what, ENOTDIR);
    if (target.is_dir && !target.entries.empty()) return detail::io_error("rename", what, ENOTEMPTY);
  }
  if (src_is_dir && dst_parts->size() > src_parts->size() &&
      std::equal(src_parts->begin(), src_parts->end(), dst_parts->begin())) {
    return detail::io_error("rename", what, EINVAL);  // into its own subtree
  }
  s.mutate_or_crash();
  if (src_dir == dst_dir) {
    s.dir_change(src_dir, detail::DirOp{{src_parts->back()}, {{dst_parts->back(), *src}}});
  } else {
    s.dir_change(dst_dir, detail::DirOp{{}, {{dst_parts->back(), *src}}});
    s.dir_change(src_dir, detail::DirOp{{src_parts->back()}, {}});
  }
  return {};
}

Result<void> SimFs::remove(const std::string& path) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("remove", path, false);
  if (!parts) return parts.error();
  InodeId dir = 0;
  int err = s.parent_of(*parts, dir);
  if (err == ENOENT) return {};
  if (err != 0) return detail::io_error("remove", path, err);
  std::optional<InodeId> found = s.entry(dir, parts->back());
  if (!found) return {};
  if (s.inodes.at(*found).is_dir) return detail::io_error("remove", path, EISDIR);
  s.mutate_or_crash();
  s.dir_change(dir, detail::DirOp{{parts->back()}, {}});
  return {};
}

Result<void> SimFs::mkdirs(const std::string& path) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("mkdirs", path, true);
  if (!parts) return parts.error();
  // Check the whole path first so that an error creates nothing.
  std::size_t existing = 0;
  InodeId cur = detail::kRootInode;
  for (; existing < parts->size(); ++existing) {
    std::optional<InodeId> next = s.entry(cur, (*parts)[existing]);
    if (!next) break;
    if (!s.inodes.at(*next).is_dir) return detail::io_error("mkdirs", path, ENOTDIR);
    cur = *next;
  }
  if (existing == parts->size()) return {};
  s.mutate_or_crash();
  for (std::size_t i = existing; i < parts->size(); ++i) {
    InodeId id = s.new_inode(true);
    s.dir_change(cur, detail::DirOp{{}, {{(*parts)[i], id}}});
    cur = id;
  }
  return {};
}

Result<void> SimFs::sync_dir(const std::string& path) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("sync_dir", path, true);
  if (!parts) return parts.error();
  InodeId id = 0;
  if (int err = s.walk(*parts, parts->size(), id); err != 0) return detail::io_error("sync_dir", path, err);
  if (!s.inodes.at(id).is_dir) return detail::io_error("sync_dir", path, ENOTDIR);
  s.mutate_or_crash();
  ++s.sync_calls;
  if (auto it = s.sync_failures.find(s.sync_calls); it != s.sync_failures.end()) {
    errc code = it->second;
    s.sync_failures.erase(it);
    return detail::io_error("fsync", path, detail::errno_of(code));
  }
  detail::Inode& dir = s.inodes.at(id);
  dir.durable_entries = dir.entries;
  dir.unsynced_dir.clear();
  ++s.syncs_ok;
  return {};
}

Result<std::vector<std::string>> SimFs::list(const std::string& dir_path) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("list", dir_path, true);
  if (!parts) return parts.error();
  InodeId id = 0;
  if (int err = s.walk(*parts, parts->size(), id); err != 0) return detail::io_error("list", dir_path, err);
  const detail::Inode& dir = s.inodes.at(id);
  if (!dir.is_dir) return detail::io_error("list", dir_path, ENOTDIR);
  std::vector<std::string> names;
  for (const auto& [name, child] : dir.entries) {
    if (!s.inodes.at(child).is_dir) names.push_back(name);  // std::map: already sorted
  }
  return names;
}

Result<bool> SimFs::exists(const std::string& path) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.throw_if_crashed();
  Result<std::vector<std::string>> parts = detail::split_path("exists", path, true);
  if (!parts) return parts.error();
  InodeId id = 0;
  return s.walk(*parts, parts->size(), id) == 0;
}

void SimFs::crash_after_ops(std::uint64_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crash_at = state_->ops + n + 1;
}

void SimFs::crash_now() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crashed = true;
  state_->crash_at.reset();
}

bool SimFs::crashed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->crashed;
}

void SimFs::restart() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->power_cut();
}

void SimFs::restart_clean() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->after_restart();
}

void SimFs::fail_sync(std::uint64_t nth, errc code) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->sync_failures[state_->sync_calls + (nth == 0 ? 1 : nth)] = code;
}

void SimFs::fail_write(std::uint64_t nth, errc code) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->write_failures[state_->write_calls + (nth == 0 ? 1 : nth)] = code;
}

void SimFs::set_capacity(std::uint64_t bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->capacity = bytes;
}

void SimFs::clear_capacity() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->capacity.reset();
}

std::uint64_t SimFs::mutating_ops() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->ops;
}

std::uint64_t SimFs::syncs() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->syncs_ok;
}

Result<std::string> SimFs::read_all(const std::string& path) const {
  const SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  Result<std::vector<std::string>> parts = detail::split_path("read_all", path, false);
  if (!parts) return parts.error();
  InodeId id = 0;
  int err = s.walk(*parts, parts->size(), id);
  if (err == 0 && s.inodes.at(id).is_dir) err = EISDIR;
  if (err == ENOENT) return Error::make(errc::chunk_not_found, "read_all " + path + ": " + detail::describe_errno(err));
  if (err != 0) return detail::io_error("read_all", path, err);
  return s.inodes.at(id).current;
}

void SimFs::corrupt(const std::string& path, std::uint64_t offset, std::string_view bytes) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  Result<std::vector<std::string>> parts = detail::split_path("corrupt", path, false);
  if (!parts) throw std::invalid_argument("SimFs::corrupt: " + parts.error().message);
  InodeId id = 0;
  if (s.walk(*parts, parts->size(), id) != 0 || s.inodes.at(id).is_dir) {
    throw std::invalid_argument("SimFs::corrupt: no file " + path);
  }
  if (offset > detail::kMaxFileSize) throw std::invalid_argument("SimFs::corrupt: offset out of range");
  detail::Inode& ino = s.inodes.at(id);
  detail::write_at(ino.current, bytes, offset);
  detail::write_at(ino.durable, bytes, offset);
}

void SimFs::set_content(const std::string& path, std::string_view bytes) {
  SimState& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  Result<std::vector<std::string>> parts = detail::split_path("set_content", path, false);
  if (!parts) throw std::invalid_argument("SimFs::set_content: " + parts.error().message);
  InodeId dir = s.durable_mkdirs(*parts, parts->size() - 1);
  const std::string& name = parts->back();
  std::optional<InodeId> found = s.entry(dir, name);
  InodeId id = 0;
  if (found) {
    if (s.inodes.at(*found).is_dir) throw std::invalid_argument("SimFs::set_content: " + path + " is a directory");
    id = *found;
  } else {
    id = s.new_inode(false);
    s.inodes.at(dir).entries[name] = id;
    ++s.inodes.at(id).links;
  }
  s.inodes.at(dir).durable_entries[name] = id;
  detail::Inode& ino = s.inodes.at(id);
  ino.current = std::string(bytes);
  ino.durable = ino.current;
  ino.unsynced.clear();
}

}  // namespace horizon::wal
