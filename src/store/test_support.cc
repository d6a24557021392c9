#include "store/test_support.h"

#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#ifndef HORIZON_SOURCE_DIR
#error "store_test needs HORIZON_SOURCE_DIR (set by horizon_test)"
#endif

namespace horizon::store::test {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Whatever";
  }
}

// A listening socket on 127.0.0.1 at a free port (stored in `port`).
int listen_on_loopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/listen failed");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

// --- servers started by a script ---

Result<ScriptedServer::Started> ScriptedServer::run_script(std::string_view script_name, std::string_view tag,
                                                           std::string_view bucket, std::string_view missing) {
  const std::string script = std::string(HORIZON_SOURCE_DIR) + "/scripts/" + std::string(script_name);
  std::string last_output;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = free_port();
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("eh-{}-{}-{}", tag, ::getpid(), port);
    std::filesystem::remove_all(dir);
    const std::string command =
        fmt::format("bash '{}' '{}' {} {} {} 2>&1", script, dir.string(), port, bucket, ::getpid());
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) return Error::make(errc::internal, "popen failed for " + script);
    std::string output;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) output += buf;
    const int status = ::pclose(p);
    if (status == 0) {
      // The pid is the last line.
      std::string_view out(output);
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.remove_suffix(1);
      const auto nl = out.rfind('\n');
      const auto last = nl == std::string_view::npos ? out : out.substr(nl + 1);
      const int pid = std::atoi(std::string(last).c_str());
      if (pid > 0) return Started{pid, port, dir.string()};
    }
    last_output = output;
    std::filesystem::remove_all(dir);
    if (output.find(missing) != std::string::npos) break;  // not installed: retrying will not help
  }
  return Error::make(errc::not_ready, "could not start the server with " + script + ":\n" + last_output);
}

namespace {

// Whether `pid` still runs. It is not our child, so it stays a zombie until
// whoever adopted it reaps it (that can take a second): a zombie is gone.
bool running(int pid) {
  if (::kill(pid, 0) != 0) return false;
  std::FILE* f = std::fopen(fmt::format("/proc/{}/stat", pid).c_str(), "r");
  if (f == nullptr) return false;
  char buf[512] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  // "PID (COMM) STATE ...": COMM may contain spaces and parentheses.
  const std::string_view stat(buf, n);
  const auto close = stat.rfind(')');
  return close == std::string_view::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

}  // namespace

ScriptedServer::~ScriptedServer() {
  if (pid_ <= 0) return;  // not ours
  if (::kill(pid_, SIGTERM) == 0) {
    // Bounded wait for it (and so what it started) to go away.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (running(pid_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (running(pid_)) ::kill(pid_, SIGKILL);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  std::filesystem::remove(dir_ + ".log", ec);
}

Result<std::unique_ptr<S3rver>> S3rver::start() {
  auto s = run_script("start-s3rver.sh", "s3rver", kBucket, "npm ci");
  if (!s) return s.error();
  return std::unique_ptr<S3rver>(new S3rver(std::move(*s)));
}

std::string S3rver::url() const {
  return fmt::format("s3://{}:{}@us-east-1/{}?endpoint={}", kKeyId, kSecret, kBucket, endpoint());
}

namespace {

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

Result<std::unique_ptr<Swift>> Swift::start() {
  if (const char* state = std::getenv("HORIZON_TEST_SWIFT"); state != nullptr && *state != '\0') {
    // Started once for the whole ctest run by scripts/swift-fixture.sh.
    const std::filesystem::path dir(state);
    if (auto error = read_file(dir / "error")) {
      return Error::make(errc::not_ready, "the ctest fixture could not start Swift:\n" + *error);
    }
    const auto port = read_file(dir / "port");
    const auto swift_dir = read_file(dir / "swift-dir");
    if (!port || !swift_dir || std::atoi(port->c_str()) <= 0) {
      return Error::make(errc::not_ready, fmt::format("HORIZON_TEST_SWIFT={} but {} has no port: did the ctest "
                                                      "fixture store.swift.start run (scripts/swift-fixture.sh)?",
                                                      state, (dir / "port").string()));
    }
    return std::unique_ptr<Swift>(new Swift(Started{0, std::atoi(port->c_str()), *swift_dir}));
  }
  auto s = run_script("start-swift.sh", "swift", kBucket, "install-deps.sh");
  if (!s) return s.error();
  return std::unique_ptr<Swift>(new Swift(std::move(*s)));
}

std::string Swift::url_with(std::string_view key_id_in_url, std::string_view secret_in_url,
                            std::string_view bucket) const {
  return fmt::format("s3://{}:{}@us-east-1/{}?endpoint={}", key_id_in_url, secret_in_url, bucket, endpoint());
}

namespace {

// The process-wide instance of T, started on first use.
template <typename T>
T* shared_server(std::string* error) {
  static std::unique_ptr<T> server;
  static std::string start_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto s = T::start();
    if (s) {
      server = std::move(*s);
    } else {
      start_error = s.error().message;
    }
  }
  if (!server && error != nullptr) *error = start_error;
  return server.get();
}

}  // namespace

S3rver* shared_s3rver(std::string* error) { return shared_server<S3rver>(error); }
Swift* shared_swift(std::string* error) { return shared_server<Swift>(error); }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// --- the fake HTTP server ---

std::string SeenRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = listen_on_loopback(port_);
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  thread_ = std::thread([this] { run(); });
}

FakeHttpServer::~FakeHttpServer() {
  const char c = 'x';
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::vector<SeenRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t FakeHttpServer::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

void FakeHttpServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::size_t n;
    {
      std::lock_guard lock(mu_);
      n = ++connections_;
    }
    serve(fd, n);
    ::close(fd);
  }
}

void FakeHttpServer::serve(int fd, std::size_t connection) {
  std::string buf;
  // Reads more bytes into buf; false on EOF, error or stop.
  auto fill = [&]() {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) return false;
    if (fds[1].revents != 0) return false;
    char chunk[65536];
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(got));
    return true;
  };
  for (;;) {
    std::size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return;
    }
    SeenRequest req;
    req.connection = connection;
    std::string_view head(buf.data(), head_end);
    auto line_end = head.find("\r\n");
    const auto request_line = head.substr(0, line_end);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.rfind(' ');
    req.method = std::string(request_line.substr(0, sp1));
    req.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    std::size_t content_length = 0;
    while (line_end != std::string_view::npos) {
      const auto start = line_end + 2;
      line_end = head.find("\r\n", start);
      const auto line =
          head.substr(start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = lower(std::string(line.substr(0, colon)));
      std::string value = trim(line.substr(colon + 1));
      if (name == "content-length") content_length = std::stoul(value);
      req.headers.emplace_back(std::move(name), std::move(value));
    }
    buf.erase(0, head_end + 4);
    while (buf.size() < content_length) {
      if (!fill()) return;
    }
    req.body = buf.substr(0, content_length);
    buf.erase(0, content_length);

    std::size_t index;
    {
      std::lock_guard lock(mu_);
      index = requests_.size();
      requests_.push_back(req);
    }
    const FakeResponse resp = handler_(req, index);
    if (resp.hang) {
      // Say nothing; wait until the client gives up (closes) or we stop.
      while (fill()) {
      }
      return;
    }
    std::string out = fmt::format("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (const auto& h : resp.headers) out += h + "\r\n";
    out += fmt::format("Content-Length: {}\r\n", resp.content_length.value_or(resp.body.size()));
    if (resp.close_after) out += "Connection: close\r\n";
    out += "\r\n";
    if (req.method != "HEAD") out += resp.body;
    if (!send_all(fd, out)) return;
    if (resp.close_after || (resp.content_length && *resp.content_length != resp.body.size())) return;
  }
}

// --- the corrupting relay ---

CorruptingProxy::CorruptingProxy(int upstream_port, std::string needle, std::string replacement)
    : upstream_port_(upstream_port), needle_(std::move(needle)), replacement_(std::move(replacement)) {
  if (needle_.empty() || needle_.size() != replacement_.size()) {
    throw std::invalid_argument("CorruptingProxy: needle and replacement must be non-empty and of one length");
  }
  listen_fd_ = listen_on_loopback(port_);
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  thread_ = std::thread([this] { run(); });
}

CorruptingProxy::~CorruptingProxy() {
  const char c = 'x';
  (void)!::write(wake_[1], &c, 1);  // stays readable: every relay sees it
  thread_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mu_);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void CorruptingProxy::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    relays_.emplace_back([this, fd] { relay(fd); });
  }
}

void CorruptingProxy::relay(int client) {
  const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
  if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (upstream >= 0) ::close(upstream);
    ::close(client);
    return;
  }
  // Per direction: bytes not sent yet because they may start a needle that
  // the next read completes.
  std::string held[2];
  const int from[2] = {client, upstream};
  const int to[2] = {upstream, client};
  auto forward = [&](int d, std::string_view data) {
    std::string& buf = held[d];
    buf.append(data);
    for (auto pos = buf.find(needle_); pos != std::string::npos; pos = buf.find(needle_, pos + needle_.size())) {
      buf.replace(pos, needle_.size(), replacement_);
      ++replacements_;
    }
    // Hold back the longest tail that is a proper prefix of the needle.
    std::size_t keep = std::min(buf.size(), needle_.size() - 1);
    while (keep > 0 && buf.compare(buf.size() - keep, keep, needle_, 0, keep) != 0) --keep;
    const bool ok = send_all(to[d], std::string_view(buf).substr(0, buf.size() - keep));
    buf.erase(0, buf.size() - keep);
    return ok;
  };
  for (bool open = true; open;) {
    pollfd fds[3] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) continue;
    if (fds[2].revents != 0) break;
    for (int d = 0; d < 2 && open; ++d) {
      if (fds[d].revents == 0) continue;
      char chunk[65536];
      const ssize_t got = ::recv(from[d], chunk, sizeof chunk, 0);
      if (got <= 0) {
        send_all(to[d], held[d]);
        open = false;
      } else if (!forward(d, std::string_view(chunk, static_cast<std::size_t>(got)))) {
        open = false;
      }
    }
  }
  ::close(upstream);
  ::close(client);
}

}  // namespace horizon::store::test
