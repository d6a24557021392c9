#include "net/secrets.h"

#include "core/digest.h"

#include <climits>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace horizon::net {
namespace {

constexpr mode_t kSecretMode = 0600;
constexpr mode_t kPublicMode = 0644;
constexpr std::size_t kTempSuffixBytes = 8;

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

// `<op> <path>: <strerror>`; ENOSPC/EDQUOT are disk_full, the rest storage_failed.
// Prefixed by "write <target>: " when `path` is the temp file or directory.
Error io_error(std::string_view op, std::string_view path, int err, std::string_view target = {}) {
  errc code = (err == ENOSPC || err == EDQUOT) ? errc::disk_full : errc::storage_failed;
  std::string prefix = target.empty() ? std::string() : "write " + std::string(target) + ": ";
  return Error::make(code, prefix + std::string(op) + " " + std::string(path) + ": " + describe_errno(err));
}

// Closes the fd on scope exit unless released; close errors here are ignored
// (the success path closes explicitly and checks).
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Removes the temp file on scope exit unless dismissed.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void dismiss() { path_.clear(); }

 private:
  std::string path_;
};

std::string parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

Result<void> write_file_atomically(const std::string& path, std::string_view content, mode_t mode) {
  if (path.empty()) return Error::make(errc::invalid_argument, "write file: empty path");
  auto suffix = random_hex(kTempSuffixBytes);
  if (!suffix) return suffix.error();
  const std::string temp = path + ".tmp." + *suffix;

  int raw_fd = -1;
  do {
    raw_fd = ::open(temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) return io_error("open", temp, errno, path);
  ScopedFd fd(raw_fd);
  TempFileGuard guard(temp);

  // The umask may have cleared bits of `mode`; the final mode is exact.
  if (::fchmod(fd.get(), mode) != 0) return io_error("fchmod", temp, errno, path);

  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", temp, errno, path);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return io_error("fsync", temp, errno, path);
  if (::close(fd.release()) != 0) return io_error("close", temp, errno, path);

  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    return io_error("rename " + temp + " to", path, err);
  }
  guard.dismiss();

  const std::string dir = parent_directory(path);
  int raw_dir = -1;
  do {
    raw_dir = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (raw_dir < 0 && errno == EINTR);
  if (raw_dir < 0) return io_error("open directory", dir, errno, path);
  ScopedFd dir_fd(raw_dir);
  if (::fsync(dir_fd.get()) != 0) return io_error("fsync directory", dir, errno, path);
  return {};
}

}  // namespace

Result<std::string> random_bytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t done = 0;
  while (done < n) {
    const std::size_t step = std::min<std::size_t>(n - done, static_cast<std::size_t>(INT_MAX));
    ERR_clear_error();
    if (RAND_priv_bytes(reinterpret_cast<unsigned char*>(out.data() + done), static_cast<int>(step)) != 1) {
      char buf[256] = {};
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      ERR_clear_error();
      return Error::make(errc::internal, std::string("RAND_priv_bytes failed: ") + buf);
    }
    done += step;
  }
  return out;
}

Result<std::string> random_hex(std::size_t n_bytes) {
  auto bytes = random_bytes(n_bytes);
  if (!bytes) return bytes.error();
  std::string out = horizon::hex(*bytes);
  OPENSSL_cleanse(bytes->data(), bytes->size());
  return out;
}

bool constant_time_equal(std::string_view candidate, std::string_view secret) {
  if (candidate.size() != secret.size()) {
    // The same work as an equal-length comparison of the candidate.
    (void)CRYPTO_memcmp(candidate.data(), candidate.data(), candidate.size());
    return false;
  }
  return CRYPTO_memcmp(candidate.data(), secret.data(), candidate.size()) == 0;
}

Result<std::optional<std::string>> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return io_error("open", path, errno);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return io_error("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

Result<void> write_secret_file(const std::string& path, std::string_view content) {
  return write_file_atomically(path, content, kSecretMode);
}

Result<void> write_public_file(const std::string& path, std::string_view content) {
  return write_file_atomically(path, content, kPublicMode);
}

}  // namespace horizon::net
