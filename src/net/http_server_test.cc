// The HTTP server's own behaviour, over plain TCP with a raw socket client:
// the response bytes it renders (status line, headers, keep-alive rules),
// 100-continue, and the per-connection deadlines (header/idle and body
// timeouts, none while a handler works). TLS, limits and the API itself are
// covered through the real binary in tests/e2e.

#include "net/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace horizon::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A blocking TCP client with a receive timeout.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send(const std::string& s) { ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }

  // Reads one response: the head, then Content-Length bytes of body.
  std::string response() {
    for (;;) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t len = 0;
        auto cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= end + 4 + len) {
          std::string out = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return out;
        }
      }
      if (!fill()) return "EOF:" + buf_;
    }
  }
  // True when the server closed the connection (EOF) before `limit`.
  bool closed_within(std::chrono::milliseconds limit) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      char c;
      ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;  // reset
      if (n > 0) buf_.push_back(c);
    }
    return false;
  }

 private:
  bool fill() {
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string buf_;
};

HttpServerOptions plain_options() {
  HttpServerOptions o;
  o.address = "127.0.0.1";
  o.tls = false;
  o.threads = 2;
  o.name = "test";
  return o;
}

// Echoes method, path and body; "/slow" answers from another thread after
// 600 ms; "/close" asks to close; "/bad-header" sets a header with a CR LF.
Handler test_handler() {
  return [](HttpRequest req, Responder respond) {
    HttpResponse r;
    if (req.path() == "/slow") {
      std::thread([respond] {
        std::this_thread::sleep_for(600ms);
        HttpResponse late;
        late.body = "late";
        respond(late);
      }).detach();
      return;
    }
    if (req.path() == "/close") r.close = true;
    if (req.path() == "/bad-header") {
      r.headers.emplace_back("X-Ok", "yes");
      r.headers.emplace_back("X-Injected", "a\r\nSet-Cookie: x=1");
    }
    if (req.path() == "/created") r.status = 201;
    if (req.path() == "/empty") {
      r.status = 204;
      r.content_type = "text/plain";
    } else {
      r.body = req.method + " " + std::string(req.path()) + " " + req.body;
    }
    respond(r);
  };
}

TEST(HttpServer, RendersStatusHeadersAndBodyAndKeepsTheConnectionAlive) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("POST /created HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(c.response(),
            "HTTP/1.1 201 Created\r\nServer: event-horizon\r\nContent-Type: application/json\r\n"
            "Content-Length: 19\r\n\r\nPOST /created hello");
  // Same connection, a second request.
  c.send("GET /x?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.response(),
            "HTTP/1.1 200 OK\r\nServer: event-horizon\r\nContent-Type: application/json\r\n"
            "Content-Length: 7\r\n\r\nGET /x ");
}

TEST(HttpServer, Http10ClosesUnlessKeepAliveIsAsked) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  {
    RawClient c((*server)->port());
    c.send("GET /a HTTP/1.0\r\n\r\n");
    EXPECT_EQ(c.response(),
              "HTTP/1.0 200 OK\r\nServer: event-horizon\r\nContent-Type: application/json\r\n"
              "Content-Length: 7\r\n\r\nGET /a ");
    EXPECT_TRUE(c.closed_within(3s));
  }
  {
    RawClient c((*server)->port());
    c.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    std::string r = c.response();
    EXPECT_NE(r.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << r;
    c.send("GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_NE(c.response().find("GET /c"), std::string::npos);
  }
}

TEST(HttpServer, CloseRequestsAndHttp11CloseSayConnectionClose) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  {
    RawClient c((*server)->port());
    c.send("GET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_NE(c.response().find("\r\nConnection: close\r\n"), std::string::npos);
    EXPECT_TRUE(c.closed_within(3s));
  }
  {
    RawClient c((*server)->port());
    c.send("GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_NE(c.response().find("\r\nConnection: close\r\n"), std::string::npos);
    EXPECT_TRUE(c.closed_within(3s));
  }
}

TEST(HttpServer, HeaderValuesWithLineBreaksAreDropped) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("GET /bad-header HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string r = c.response();
  EXPECT_NE(r.find("\r\nX-Ok: yes\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("X-Injected"), std::string::npos) << r;
  EXPECT_EQ(r.find("Set-Cookie"), std::string::npos) << r;
}

TEST(HttpServer, NoContentHasNoContentLength) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("DELETE /empty HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(c.response(), "HTTP/1.1 204 No Content\r\nServer: event-horizon\r\nContent-Type: text/plain\r\n\r\n");
  c.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");  // still alive
  EXPECT_NE(c.response().find("GET /a"), std::string::npos);
}

TEST(HttpServer, ExpectContinueGetsAnInterimResponse) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
  EXPECT_EQ(c.response(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("abc");
  EXPECT_NE(c.response().find("POST /p abc"), std::string::npos);
}

// Bodies arrive with their header, after it, in pieces, chunked, or with the
// next request in the same segment; each is framed exactly.
TEST(HttpServer, BodiesAreFramedWhateverTheReadsThatBringThem) {
  auto o = plain_options();
  o.max_body_bytes = 8;
  auto server = HttpServer::start(o, test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  // Two requests with bodies (and one without) in one write.
  c.send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxy"
         "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_NE(c.response().find("\r\n\r\nPOST /a abc"), std::string::npos);
  EXPECT_NE(c.response().find("\r\n\r\nPOST /b xy"), std::string::npos);
  EXPECT_NE(c.response().find("\r\n\r\nGET /c "), std::string::npos);
  // Part of the body with the header, the rest later.
  c.send("POST /d HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n12");
  std::this_thread::sleep_for(50ms);
  c.send("345");
  EXPECT_NE(c.response().find("\r\n\r\nPOST /d 12345"), std::string::npos);
  // Chunked, all in one write, then split inside a chunk.
  c.send("POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_NE(c.response().find("\r\n\r\nPOST /e abcde"), std::string::npos);
  c.send("POST /f HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab");
  std::this_thread::sleep_for(50ms);
  c.send("cd\r\n0\r\n\r\n");
  EXPECT_NE(c.response().find("\r\n\r\nPOST /f abcd"), std::string::npos);
  // A chunked body over the limit, whole in the first segment: 413, closed.
  c.send("POST /g HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n");
  const std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
  EXPECT_NE(r.find("body_too_large"), std::string::npos) << r;
  EXPECT_TRUE(c.closed_within(2s));
}

// A malformed chunk size in a buffered body is a 400, not a hang.
TEST(HttpServer, AMalformedBufferedBodyIsABadRequest) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
  const std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  EXPECT_NE(r.find("malformed HTTP request body"), std::string::npos) << r;
}

// A rejected request (http_request.h has the rules) is answered with its
// JSON error and closes the connection: requests pipelined behind it never
// reach the handler, those before it are answered in order.
TEST(HttpServer, ARejectedRequestEndsThePipelineBehindIt) {
  std::atomic<int> handled{0};
  auto server = HttpServer::start(plain_options(), [&handled](HttpRequest req, Responder respond) {
    ++handled;
    test_handler()(std::move(req), std::move(respond));
  });
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n1"
         "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
         "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_NE(c.response().find("\r\n\r\nPOST /a 1"), std::string::npos);
  const std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 501 Not Implemented\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find(R"({"error":"not_implemented","message":"transfer coding \"gzip\" is not supported)"), std::string::npos)
      << r;
  EXPECT_TRUE(c.closed_within(2s));
  EXPECT_EQ(handled.load(), 1);

  // A request line longer than the whole header limit: 414, not 431.
  RawClient d((*server)->port());
  d.send("GET /" + std::string(20000, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string long_line = d.response();
  EXPECT_EQ(long_line.rfind("HTTP/1.1 414 URI Too Long\r\n", 0), 0u) << long_line.substr(0, 200);
  EXPECT_NE(long_line.find(R"("error":"uri_too_long")"), std::string::npos) << long_line.substr(0, 300);
  EXPECT_TRUE(d.closed_within(2s));
  EXPECT_EQ(handled.load(), 1);
}

TEST(HttpServer, IdleConnectionIsClosedAfterTheHeaderTimeout) {
  auto o = plain_options();
  o.header_timeout = 300ms;
  auto server = HttpServer::start(o, test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient idle((*server)->port());
  RawClient partial((*server)->port());
  partial.send("GET / HTTP/1.1\r\nHost: t\r\nHost:");  // slowloris: never finishes its headers
  const auto t0 = Clock::now();
  EXPECT_TRUE(idle.closed_within(5s));
  EXPECT_GE(Clock::now() - t0, 250ms);  // not before its deadline (less the accept time)
  EXPECT_TRUE(partial.closed_within(5s));
  // The sessions end on their threads just after the sockets close.
  const auto until = Clock::now() + 5s;
  while ((*server)->connections() > 0 && Clock::now() < until) std::this_thread::sleep_for(5ms);
  EXPECT_EQ((*server)->connections(), 0u);
}

TEST(HttpServer, KeepAliveIdleTimeoutStartsAfterTheResponse) {
  auto o = plain_options();
  o.header_timeout = 300ms;
  auto server = HttpServer::start(o, test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  for (int i = 0; i < 4; ++i) {  // 4 x 150 ms: longer than one timeout, each gap shorter
    std::this_thread::sleep_for(150ms);
    c.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    ASSERT_NE(c.response().find("GET /a"), std::string::npos) << "request " << i;
  }
  EXPECT_TRUE(c.closed_within(5s));
}

TEST(HttpServer, SlowBodyIsClosedAfterTheBodyTimeout) {
  auto o = plain_options();
  o.body_timeout = 300ms;
  auto server = HttpServer::start(o, test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_TRUE(c.closed_within(5s));
}

TEST(HttpServer, AHandlerSlowerThanTheTimeoutsStillAnswers) {
  auto o = plain_options();
  o.header_timeout = 200ms;
  o.body_timeout = 200ms;
  auto server = HttpServer::start(o, test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(c.response(),
            "HTTP/1.1 200 OK\r\nServer: event-horizon\r\nContent-Type: application/json\r\n"
            "Content-Length: 4\r\n\r\nlate");
}

TEST(HttpServer, StopClosesConnectionsAndIsIdempotent) {
  auto server = HttpServer::start(plain_options(), test_handler());
  ASSERT_TRUE(server) << server.error().message;
  RawClient c((*server)->port());
  c.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_NE(c.response().find("GET /a"), std::string::npos);
  const auto t0 = Clock::now();
  (*server)->stop();
  EXPECT_LT(Clock::now() - t0, 3s);  // no request in flight: no grace period to wait out
  EXPECT_TRUE(c.closed_within(5s));
  EXPECT_EQ((*server)->connections(), 0u);
  (*server)->stop();
}

}  // namespace
}  // namespace horizon::net
