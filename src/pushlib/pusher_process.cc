// PusherProcess: `horizon pusher` as a child whose stdin is a pipe only the
// parent holds, so that the child sees EOF when the parent dies.

#include "pushlib/pushlib.h"
#include "pushlib/pushlib_internal.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace pushlib {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// "horizon" next to this program, if it exists there.
std::optional<std::string> horizon_next_to_self() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  std::string self(buf, static_cast<std::size_t>(n));
  const auto slash = self.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  std::string candidate = self.substr(0, slash + 1) + "horizon";
  if (!is_executable_file(candidate)) return std::nullopt;
  return candidate;
}

// The path to exec for `program`: itself if it has a '/', else the first
// executable match in PATH. Resolved before fork so that the child only
// calls async-signal-safe functions.
Result<std::string> resolve_program(const std::string& program) {
  if (program.empty()) return Error::make(errc::invalid_argument, "the pusher command's program is empty");
  if (program.find('/') != std::string::npos) return program;
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    path = path.substr(colon + 1);
  }
  return Error::make(errc::internal, fmt::format("cannot start the Pusher: \"{}\" not found in PATH", program));
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

namespace detail {

Result<std::vector<std::string>> pusher_command(const PusherProcessOptions& options) {
  if (!options.command.empty()) return options.command;
  if (options.endpoint_url.empty()) {
    return Error::make(errc::invalid_argument, "PusherProcessOptions needs endpoint_url (or command)");
  }
  std::string binary = options.horizon_binary;
  if (binary.empty()) binary = horizon_next_to_self().value_or("horizon");
  std::vector<std::string> argv{binary, "pusher", "--endpoint", options.endpoint_url, "--stop-on-stdin-eof"};
  if (!options.proxy.empty()) {
    argv.emplace_back("--proxy");
    argv.push_back(options.proxy);
  }
  return argv;
}

}  // namespace detail

struct PusherProcess::Impl {
  ~Impl() { close_fd(stdin_write); }

  // Reaps the child if it has exited (blocking if `block`).
  Result<bool> reap(bool block) {
    if (status) return true;
    int st = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Error::make(errc::internal, fmt::format("waitpid({}): {}", pid, errno_text(errno)));
    if (r == 0) return false;
    status = st;
    return true;
  }

  // Waits up to `timeout` for the child to exit (without reaping it).
  void wait_exit(std::chrono::milliseconds timeout) {
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": call the system call.
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
        if (r > 0 || (r < 0 && errno != EINTR)) break;
      }
      ::close(pidfd);
      return;
    }
    // No pidfd (old kernel): poll waitpid.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = reap(false);
      if (!r || *r) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  pid_t pid = -1;
  int stdin_write = -1;
  std::chrono::milliseconds stop_timeout{0};
  std::optional<int> status;  // wait status once reaped
  std::mutex mu;
};

PusherProcess::PusherProcess(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PusherProcess::~PusherProcess() { (void)stop(); }

Result<std::unique_ptr<PusherProcess>> PusherProcess::start(PusherProcessOptions options) {
  auto args = detail::pusher_command(options);
  if (!args) return args.error();
  auto program = resolve_program(args->front());
  if (!program) return program.error();
  std::vector<char*> argv;
  for (auto& a : *args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in[2];      // the child's stdin; the parent keeps in[1] open
  int report[2];  // exec failure report; closed by a successful exec (O_CLOEXEC)
  if (::pipe2(in, O_CLOEXEC) != 0) return Error::make(errc::internal, "pipe: " + errno_text(errno));
  if (::pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(in[0]);
    ::close(in[1]);
    return Error::make(errc::internal, "pipe: " + errno_text(err));
  }

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    for (int fd : {in[0], in[1], report[0], report[1]}) ::close(fd);
    return Error::make(errc::internal, "fork: " + errno_text(err));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (in[0] == STDIN_FILENO) {
      ::fcntl(STDIN_FILENO, F_SETFD, 0);
    } else {
      ::dup2(in[0], STDIN_FILENO);
    }
    // Start with the default signal state, whatever the application did
    // (a blocked SIGTERM or an ignored SIGPIPE survive exec otherwise).
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    ::execv(program->c_str(), argv.data());
    const int err = errno;
    ssize_t ignored = ::write(report[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }

  ::close(in[0]);
  ::close(report[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);

  auto impl = std::make_unique<Impl>();
  impl->pid = pid;
  impl->stdin_write = in[1];
  impl->stop_timeout = options.stop_timeout;
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    close_fd(impl->stdin_write);
    (void)impl->reap(true);
    return Error::make(errc::internal,
                       fmt::format("cannot start the Pusher: exec {}: {}", *program, errno_text(exec_errno)));
  }
  return std::unique_ptr<PusherProcess>(new PusherProcess(std::move(impl)));
}

int PusherProcess::pid() const { return impl_->pid; }

bool PusherProcess::running() {
  std::lock_guard lock(impl_->mu);
  auto r = impl_->reap(false);
  return r && !*r;
}

Result<int> PusherProcess::stop() {
  if (!impl_) return 0;
  std::lock_guard lock(impl_->mu);
  if (impl_->status) return *impl_->status;
  close_fd(impl_->stdin_write);  // EOF on the child's stdin: it stops
  auto exited = impl_->reap(false);
  if (!exited) return exited.error();
  if (!*exited) {
    impl_->wait_exit(impl_->stop_timeout);
    exited = impl_->reap(false);
    if (!exited) return exited.error();
    if (!*exited) ::kill(impl_->pid, SIGKILL);
  }
  auto r = impl_->reap(true);
  if (!r) return r.error();
  return *impl_->status;
}

}  // namespace pushlib
