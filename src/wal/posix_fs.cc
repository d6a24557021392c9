// The real Fs (fs.h) over a directory on disk, and DirLock.
//
// Every path is resolved relative to an O_DIRECTORY fd of the root with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); on kernels without openat2
// the path is walked one component at a time with O_NOFOLLOW, which gives the
// same guarantee because components are never "." or "..".
#include "wal/fs.h"
#include "wal/mutant.h"
#include "wal/path_internal.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utility>

namespace horizon::wal {
namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr int kOpenat2Retries = 16;

// glibc exposes the GNU strerror_r (returns char*) or the XSI one (returns
// int) depending on feature macros; these overloads accept either.
[[maybe_unused]] std::string strerror_text(const char* text, const char* /*buf*/) { return text; }
[[maybe_unused]] std::string strerror_text(int rc, const char* buf) {
  return rc == 0 ? std::string(buf) : std::string("unknown error");
}

std::string describe_errno(int err) {
  char buf[256] = {};
  return strerror_text(strerror_r(err, buf, sizeof buf), buf);
}

std::string display(std::string_view path) { return path.empty() ? std::string(".") : std::string(path); }

// `<op> <path>: <strerror>`; ENOSPC/EDQUOT are disk_full, the rest storage_failed.
Error io_error(std::string_view op, std::string_view path, int err) {
  errc code = (err == ENOSPC || err == EDQUOT) ? errc::disk_full : errc::storage_failed;
  return Error::make(code, std::string(op) + " " + display(path) + ": " + describe_errno(err));
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

using detail::split_path;

std::string join(const std::vector<std::string>& parts, std::size_t begin, std::size_t end) {
  std::string out;
  for (std::size_t i = begin; i < end; ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out.empty() ? std::string(".") : out;
}

int open_flags_cloexec(int flags) { return flags | O_CLOEXEC; }

std::atomic<bool> g_no_openat2{false};

// Fallback resolution: walks directories with O_NOFOLLOW from `root_fd`.
// Returns an fd or -1 with errno set.
int open_walking(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
  if (parts.empty()) return ::openat(root_fd, ".", open_flags_cloexec(flags));
  UniqueFd dir;
  int cur = root_fd;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    int next = ::openat(cur, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    dir = UniqueFd(next);
    cur = dir.get();
  }
  return ::openat(cur, parts.back().c_str(), open_flags_cloexec(flags | O_NOFOLLOW), mode);
}

// Opens `parts` beneath `root_fd` refusing symlinks. Returns an fd or -1 with
// errno set.
int open_beneath(int root_fd, const std::vector<std::string>& parts, int flags, mode_t mode) {
  if (!g_no_openat2.load(std::memory_order_relaxed)) {
    std::string rel = join(parts, 0, parts.size());
    open_how how{};
    how.flags = static_cast<std::uint64_t>(static_cast<unsigned>(open_flags_cloexec(flags)));
    how.mode = (flags & O_CREAT) != 0 ? mode : 0;
    how.resolve = mutant::active(mutant::Id::follow_symlinks) ? 0 : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    for (int attempt = 0; attempt < kOpenat2Retries; ++attempt) {
      long rc = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
      if (rc >= 0) return static_cast<int>(rc);
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno != ENOSYS) return -1;
      g_no_openat2.store(true, std::memory_order_relaxed);
      break;
    }
    if (!g_no_openat2.load(std::memory_order_relaxed)) return -1;
  }
  int fd = -1;
  do {
    fd = open_walking(root_fd, parts, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// The parent directory of a path (an O_PATH fd, or the root fd itself) and the
// last component.
struct Parent {
  UniqueFd owned;
  int fd = -1;
  std::string name;
};

// Opens the parent of `parts` (non-empty). Returns errno on failure.
std::pair<Parent, int> open_parent(int root_fd, const std::vector<std::string>& parts) {
  Parent p;
  p.name = parts.back();
  if (parts.size() == 1) {
    p.fd = root_fd;
    return {std::move(p), 0};
  }
  std::vector<std::string> dir(parts.begin(), parts.end() - 1);
  int fd = open_beneath(root_fd, dir, O_PATH | O_DIRECTORY, 0);
  if (fd < 0) return {std::move(p), errno};
  p.owned = UniqueFd(fd);
  p.fd = fd;
  return {std::move(p), 0};
}

// fsync of the directory at `path` (absolute or relative to the cwd).
int fsync_dir_path(const std::string& path) {
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  UniqueFd dir(fd);
  while (::fsync(dir.get()) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// mkdir -p for the user-supplied root path (which may be absolute). The
// parent of each directory it creates is synced: a new directory's name is
// durable only then (a power loss right after a first start would otherwise
// take the whole data directory with it).
int mkdir_p(const std::string& path) {
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    if (path[i - 1] == '/') continue;
    std::string prefix = path.substr(0, i);
    if (::mkdir(prefix.c_str(), kDirMode) != 0) {
      if (errno == EEXIST) continue;
      return errno;
    }
    const std::size_t slash = prefix.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : prefix.substr(0, slash);
    if (int err = fsync_dir_path(parent); err != 0) return err;
  }
  return 0;
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  Result<void> pwrite(std::string_view data, std::uint64_t offset) override {
    if (!offset_ok(offset, data.size())) return range_error("pwrite", offset);
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::pwrite(fd_.get(), p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("pwrite", path_, errno);
      }
      if (n == 0) return io_error("pwrite", path_, EIO);
      std::size_t done = static_cast<std::size_t>(n);
      p += done;
      left -= done;
      offset += done;
    }
    return {};
  }

  Result<std::string> pread(std::uint64_t offset, std::size_t size) override {
    Result<std::uint64_t> file_size = this->size();
    if (!file_size) return file_size.error();
    if (offset >= *file_size || size == 0) return std::string();
    // Bound the buffer by the file size so that a huge `size` does not allocate.
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, *file_size - offset));
    std::string out(want, '\0');
    std::size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd_.get(), out.data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("pread", path_, errno);
      }
      if (n == 0) break;  // end of file (it shrank meanwhile)
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
  }

  Result<void> sync() override {
    while (::fdatasync(fd_.get()) != 0) {
      if (errno != EINTR) return io_error("fdatasync", path_, errno);
    }
    return {};
  }

  Result<std::uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return io_error("fstat", path_, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  Result<void> truncate(std::uint64_t size) override {
    if (!offset_ok(size, 0)) return range_error("ftruncate", size);
    while (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return io_error("ftruncate", path_, errno);
    }
    return {};
  }

 private:
  static bool offset_ok(std::uint64_t offset, std::size_t len) {
    constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
    return offset <= kMax && len <= kMax - offset;
  }
  Error range_error(std::string_view op, std::uint64_t offset) const {
    return Error::make(errc::invalid_argument,
                       std::string(op) + " " + path_ + ": offset " + std::to_string(offset) + " is out of range");
  }

  UniqueFd fd_;
  std::string path_;
};

class PosixFs final : public Fs {
 public:
  explicit PosixFs(UniqueFd root) : root_(std::move(root)) {}

  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    Result<std::vector<std::string>> parts = split_path("open", path, false);
    if (!parts) return parts.error();
    int flags = mode == OpenMode::read_only ? O_RDONLY : O_RDWR;
    if (mode == OpenMode::create) flags |= O_CREAT;
    int fd = open_beneath(root_.get(), *parts, flags, kFileMode);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT && mode != OpenMode::create) {
        return Error::make(errc::chunk_not_found, "open " + path + ": " + describe_errno(err));
      }
      return io_error("open", path, err);
    }
    UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return io_error("fstat", path, errno);
    if (!S_ISREG(st.st_mode)) return io_error("open", path, S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(owned.release(), path));
  }

  Result<void> rename(const std::string& from, const std::string& to) override {
    std::string what = from + " -> " + to;
    Result<std::vector<std::string>> from_parts = split_path("rename", from, false);
    if (!from_parts) return from_parts.error();
    Result<std::vector<std::string>> to_parts = split_path("rename", to, false);
    if (!to_parts) return to_parts.error();
    auto [src, src_err] = open_parent(root_.get(), *from_parts);
    if (src_err != 0) return io_error("rename", what, src_err);
    auto [dst, dst_err] = open_parent(root_.get(), *to_parts);
    if (dst_err != 0) return io_error("rename", what, dst_err);
    if (::renameat(src.fd, src.name.c_str(), dst.fd, dst.name.c_str()) != 0) return io_error("rename", what, errno);
    return {};
  }

  Result<void> remove(const std::string& path) override {
    Result<std::vector<std::string>> parts = split_path("remove", path, false);
    if (!parts) return parts.error();
    auto [parent, err] = open_parent(root_.get(), *parts);
    if (err == ENOENT) return {};
    if (err != 0) return io_error("remove", path, err);
    if (::unlinkat(parent.fd, parent.name.c_str(), 0) != 0 && errno != ENOENT) return io_error("remove", path, errno);
    return {};
  }

  Result<void> mkdirs(const std::string& path) override {
    Result<std::vector<std::string>> parts = split_path("mkdirs", path, true);
    if (!parts) return parts.error();
    UniqueFd dir;
    int cur = root_.get();
    for (const std::string& part : *parts) {
      if (::mkdirat(cur, part.c_str(), kDirMode) != 0 && errno != EEXIST) return io_error("mkdirs", path, errno);
      int next = ::openat(cur, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) return io_error("mkdirs", path, errno);
      dir = UniqueFd(next);
      cur = dir.get();
    }
    return {};
  }

  Result<void> sync_dir(const std::string& path) override {
    Result<std::vector<std::string>> parts = split_path("sync_dir", path, true);
    if (!parts) return parts.error();
    UniqueFd dir;
    int fd = root_.get();
    if (!parts->empty()) {
      dir = UniqueFd(open_beneath(root_.get(), *parts, O_RDONLY | O_DIRECTORY, 0));
      if (!dir.valid()) return io_error("sync_dir", path, errno);
      fd = dir.get();
    }
    while (::fsync(fd) != 0) {
      if (errno != EINTR) return io_error("fsync", path, errno);
    }
    return {};
  }

  Result<std::vector<std::string>> list(const std::string& path) override {
    Result<std::vector<std::string>> parts = split_path("list", path, true);
    if (!parts) return parts.error();
    int fd = open_beneath(root_.get(), *parts, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return io_error("list", path, errno);
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      ::close(fd);
      return io_error("list", path, err);
    }
    std::vector<std::string> names;
    int err = 0;
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(dir);
      if (entry == nullptr) {
        err = errno;
        break;
      }
      std::string_view name(entry->d_name);
      if (name == "." || name == "..") continue;
      bool regular = entry->d_type == DT_REG;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat st {};
        regular = ::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
      }
      if (regular) names.emplace_back(name);
    }
    ::closedir(dir);
    if (err != 0) return io_error("list", path, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<bool> exists(const std::string& path) override {
    Result<std::vector<std::string>> parts = split_path("exists", path, true);
    if (!parts) return parts.error();
    if (parts->empty()) return true;
    auto [parent, err] = open_parent(root_.get(), *parts);
    if (err == ENOENT || err == ENOTDIR) return false;
    if (err != 0) return io_error("exists", path, err);
    struct stat st {};
    if (::fstatat(parent.fd, parent.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return io_error("exists", path, errno);
  }

 private:
  UniqueFd root_;
};

}  // namespace

Result<void> make_dirs_durably(const std::string& path) {
  if (path.empty()) return Error::make(errc::invalid_argument, "mkdir: the path is empty");
  if (int err = mkdir_p(path); err != 0) return io_error("mkdir", path, err);
  return {};
}

Result<std::unique_ptr<Fs>> open_posix_fs(const std::string& root) {
  if (root.empty()) return Error::make(errc::invalid_argument, "open_posix_fs: the data directory path is empty");
  if (int err = mkdir_p(root); err != 0) {
    return io_error("mkdir data directory", root, err);
  }
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("open data directory", root, errno);
  return std::unique_ptr<Fs>(std::make_unique<PosixFs>(std::move(fd)));
}

Result<std::unique_ptr<DirLock>> DirLock::acquire(const std::string& root) {
  if (root.empty()) return Error::make(errc::invalid_argument, "lock: the data directory path is empty");
  if (int err = mkdir_p(root); err != 0) return io_error("mkdir data directory", root, err);
  std::string lock_path = root + "/LOCK";
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kFileMode));
  if (!fd.valid()) return io_error("open lock file", lock_path, errno);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return Error::make(errc::not_ready,
                         "data directory " + root + " is in use by another Writer (lock " + lock_path + " is held)");
    }
    return io_error("flock", lock_path, errno);
  }
  return std::unique_ptr<DirLock>(new DirLock(fd.release()));
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace horizon::wal
