#include "store/test_support.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
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

}  // namespace

// --- s3rver ---

Result<std::unique_ptr<S3rver>> S3rver::start() {
  const std::string script = std::string(HORIZON_SOURCE_DIR) + "/scripts/start-s3rver.sh";
  std::string last_output;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = free_port();
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("eh-s3rver-{}-{}", ::getpid(), port);
    std::filesystem::remove_all(dir);
    const std::string command =
        fmt::format("bash '{}' '{}' {} {} {} 2>&1", script, dir.string(), port, kBucket, ::getpid());
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
      if (pid > 0) return std::unique_ptr<S3rver>(new S3rver(pid, port, dir.string()));
    }
    last_output = output;
    std::filesystem::remove_all(dir);
    if (output.find("npm ci") != std::string::npos) break;  // missing: retrying will not help
  }
  return Error::make(errc::not_ready, "could not start s3rver with " + script + ":\n" + last_output);
}

S3rver::~S3rver() {
  if (pid_ > 0 && ::kill(pid_, SIGTERM) == 0) {
    // Bounded wait for it to go away (it is not our child: poll with kill 0).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::kill(pid_, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (::kill(pid_, 0) == 0) ::kill(pid_, SIGKILL);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  std::filesystem::remove(dir_ + ".log", ec);
}

std::string S3rver::url() const {
  return fmt::format("s3://{}:{}@us-east-1/{}?endpoint=http://127.0.0.1:{}", kKeyId, kSecret, kBucket, port_);
}

S3rver* shared_s3rver(std::string* error) {
  static std::unique_ptr<S3rver> server;
  static std::string start_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto s = S3rver::start();
    if (s) {
      server = std::move(*s);
    } else {
      start_error = s.error().message;
    }
  }
  if (!server && error != nullptr) *error = start_error;
  return server.get();
}

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
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("bind/listen failed");
  }
  port_ = ntohs(addr.sin_port);
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

}  // namespace horizon::store::test
