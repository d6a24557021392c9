#include "net/http_server.h"
#include "core/log_throttle.h"
#include "core/text.h"
#include "core/thread_name.h"

#include "net/http_request.h"
#include "net/tls.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace horizon::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// Every connection lives on one io_context: concrete executor types instead
// of any_io_executor (no type-erased executor copies per operation).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using TlsStream = ssl::stream<Socket>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
template <class T>
using Task = asio::awaitable<T, Executor>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable_t<Executor>{});
using Clock = std::chrono::steady_clock;

const std::string* HttpRequest::only_header(std::string_view name) const {
  const std::string* found = nullptr;
  for (const auto& [k, v] : headers) {
    if (k != name) continue;
    if (found != nullptr) return nullptr;
    found = &v;
  }
  return found;
}

std::string_view HttpRequest::path() const { return std::string_view(target).substr(0, target.find('?')); }

namespace {

// Waits for the handler's answer, which may come from any thread: the
// answer is posted to this coroutine's executor (one thread), stored, and
// wakes the coroutine by cancelling a timer it waits on. (The post can only
// run once the coroutine is suspended in async_wait, on the same thread.)
// An answer given on this thread before the handler returns (an error, a
// live read, an append the handler committed itself) is taken directly.
Task<HttpResponse> call_handler(const Handler& handler, HttpRequest req) {
  auto ex = co_await asio::this_coro::executor;
  struct Pending {
    explicit Pending(const Executor& e) : wake(e, Timer::time_point::max()) {}
    Timer wake;
    std::optional<HttpResponse> answer;
    std::atomic<bool> in_call{true};
    std::thread::id caller = std::this_thread::get_id();
  };
  auto pending = std::make_shared<Pending>(ex);
  handler(std::move(req), [pending](HttpResponse resp) {
    if (pending->in_call.load() && std::this_thread::get_id() == pending->caller) {
      pending->answer = std::move(resp);
      return;
    }
    asio::post(pending->wake.get_executor(), [pending, resp = std::move(resp)]() mutable {
      pending->answer = std::move(resp);
      pending->wake.cancel();
    });
  });
  pending->in_call = false;
  while (!pending->answer.has_value()) {
    co_await pending->wake.async_wait(kTuple);
  }
  co_return std::move(*pending->answer);
}

// The response head and body in one buffer, written with one call (no
// per-field allocations of a Beast message). Header names and values come
// from the handlers, never from the request; a value with CR or LF is
// dropped rather than split into two headers.
void render(std::string& out, const HttpResponse& r, unsigned version, bool keep_alive) {
  out.clear();
  const auto status = static_cast<http::status>(r.status);
  out += "HTTP/";
  append_decimal(out, version / 10);
  out += '.';
  append_decimal(out, version % 10);
  out += ' ';
  append_decimal(out, r.status);
  out += ' ';
  out += std::string_view(http::obsolete_reason(status));
  out += "\r\nServer: event-horizon\r\n";
  auto header = [&out](std::string_view name, std::string_view value) {
    if (name.find_first_of("\r\n:") != std::string_view::npos || value.find_first_of("\r\n") != std::string_view::npos) {
      return;
    }
    out.append(name).append(": ").append(value).append("\r\n");
  };
  header("Content-Type", r.content_type);
  for (const auto& [k, v] : r.headers) header(k, v);
  if (r.status >= 200 && r.status != 204 && r.status != 304) {
    out += "Content-Length: ";
    append_decimal(out, r.body.size());
    out += "\r\n";
  }
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  out += r.body;
}

// Connection deadlines of one I/O thread, checked by one timer every tick
// while connections exist, instead of a timer re-armed for every read and
// write (which costs a timerfd_settime syscall for most requests). A
// deadline that passes closes the connection's socket: its pending
// operation ends with an error and the session sees expired().
// Single-threaded: used only on its io_context's thread.
class Watchdog {
 public:
  static constexpr std::chrono::milliseconds kTick{100};

  class Watch {
   public:
    Watch(Watchdog& dog, Socket& socket) : dog_(dog), socket_(socket) { dog_.add(this); }
    ~Watch() { dog_.remove(this); }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    void expires_after(std::chrono::milliseconds d) { deadline_ = Clock::now() + d; }
    void disable() { deadline_ = Clock::time_point::max(); }
    bool expired() const { return expired_; }

   private:
    friend class Watchdog;
    Watchdog& dog_;
    Socket& socket_;
    Clock::time_point deadline_ = Clock::time_point::max();
    bool expired_ = false;
  };

  explicit Watchdog(asio::io_context& io) : timer_(std::in_place, io.get_executor()) {}
  // Before the io_context goes: drops the timer (its queued handler is
  // destroyed with the context, never run).
  void detach() { timer_.reset(); }
  // Closes every watched connection now (server stop).
  void close_all() {
    for (Watch* w : watches_) expire(*w);
  }

 private:
  void add(Watch* w) {
    watches_.push_back(w);
    if (!armed_) arm();
  }
  void remove(Watch* w) {
    auto it = std::find(watches_.begin(), watches_.end(), w);
    if (it == watches_.end()) return;
    *it = watches_.back();
    watches_.pop_back();
  }
  void arm() {
    if (!timer_) return;
    armed_ = true;
    timer_->expires_after(kTick);
    timer_->async_wait([this](boost::system::error_code ec) {
      armed_ = false;
      if (ec) return;
      sweep();
      if (!watches_.empty()) arm();
    });
  }
  void sweep() {
    const auto now = Clock::now();
    for (Watch* w : watches_) {
      if (!w->expired_ && w->deadline_ <= now) expire(*w);
    }
  }
  static void expire(Watch& w) {
    w.expired_ = true;
    boost::system::error_code ignored;
    w.socket_.close(ignored);
  }

  std::optional<Timer> timer_;
  std::vector<Watch*> watches_;
  bool armed_ = false;
};

}  // namespace

// One io_context per I/O thread, each connection on one of them (round
// robin): a connection's reads, handler, answer and writes stay on one
// thread, with no hand-offs between the threads of a shared context.
struct IoThreads {
  explicit IoThreads(int n) {
    for (int i = 0; i < std::max(1, n); ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
      guards.emplace_back(asio::make_work_guard(*contexts.back()));
      dogs.push_back(std::make_unique<Watchdog>(*contexts.back()));
    }
  }
  ~IoThreads() {
    // Timers first (they need their context), then the contexts (their
    // sessions unregister from the watchdogs), then the watchdogs.
    for (auto& d : dogs) d->detach();
    guards.clear();
    contexts.clear();
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  std::size_t next() { return turn++ % contexts.size(); }
  std::vector<std::unique_ptr<Watchdog>> dogs;  // before contexts: outlives them
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<Executor>> guards;
  std::size_t turn = 0;  // used by the accept loop only
};

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  IoThreads ios{options.threads};
  asio::io_context& io = *ios.contexts.front();  // the acceptor's
  ssl::context tls{ssl::context::tls_server};
  Acceptor acceptor{io.get_executor()};
  LogThrottle accept_failures{std::chrono::seconds(10)};  // accept_loop only
  std::vector<std::thread> threads;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;
  bool stopped = false;

  RequestLimits limits{options.max_header_bytes, options.max_body_bytes, options.max_target_bytes};

  Impl(HttpServerOptions o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  HttpResponse reject(const Error& e) const {
    if (options.on_rejected) options.on_rejected(e);
    return rejection(e);
  }

  Result<void> setup_tls() {
    return configure_server_tls(tls, options.cert_pem, options.key_pem, options.name, options.credentials);
  }

  Result<void> listen() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(options.address, ec);
    if (ec) return Error::make(errc::invalid_argument, fmt::format("{}: bad listen address \"{}\"", options.name, options.address));
    tcp::endpoint ep(addr, options.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error::make(errc::not_ready, fmt::format("{}: cannot listen on {}:{}: {}", options.name, options.address,
                                                      options.port, ec.message()));
    }
    port = acceptor.local_endpoint().port();
    return {};
  }

  Task<void> accept_loop() {
    for (;;) {
      const std::size_t slot = ios.next();
      auto [ec, socket] = co_await acceptor.async_accept(*ios.contexts[slot], kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        // Out of file descriptors (or another transient error): keep
        // serving the open connections and try again shortly instead of
        // spinning on accept.
        if (const auto n = accept_failures.admit()) {
          spdlog::warn("{}: accept failed ({} times since the last report): {}; retrying every 100 ms", options.name,
                       n, ec.message());
        }
        Timer pause(io.get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(kTuple);
        continue;
      }
      if (connections.load() >= options.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);  // fast reject
        continue;
      }
      ++connections;
      {
        // Answers are single small writes; do not hold them back (Nagle).
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
      }
      auto ex = socket.get_executor();
      Watchdog& dog = *ios.dogs[slot];
      if (options.tls) {
        asio::co_spawn(ex, tls_session(TlsStream(std::move(socket), tls), dog),
                       [this](std::exception_ptr e) { session_done(e); });
      } else {
        asio::co_spawn(ex, plain_session(std::move(socket), dog), [this](std::exception_ptr e) { session_done(e); });
      }
    }
  }

  void session_done(std::exception_ptr e) {
    --connections;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::warn("{}: connection ended by an exception: {}", options.name, ex.what());
      }
    }
  }

  Task<void> tls_session(TlsStream stream, Watchdog& dog) {
    // Asio asks OpenSSL to free a connection's record buffers after every
    // read and write (SSL_MODE_RELEASE_BUFFERS): two zeroed ~17 KiB
    // allocations per request. Keep them instead: at most about 34 KiB per
    // connection, times the connection cap.
    SSL_clear_mode(stream.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    Watchdog::Watch watch(dog, stream.next_layer());
    watch.expires_after(options.header_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (ec) co_return;  // downgrade attempts, wrong CA, plain HTTP: just close
    co_await serve(stream, watch);
    if (watch.expired()) co_return;
    watch.expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  }

  Task<void> plain_session(Socket socket, Watchdog& dog) {
    Watchdog::Watch watch(dog, socket);
    co_await serve(socket, watch);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  template <class Stream>
  Task<bool> write(Stream& stream, Watchdog::Watch& watch, std::string& out, const HttpResponse& r, unsigned version,
                   bool keep_alive) {
    keep_alive = keep_alive && !r.close;
    render(out, r, version, keep_alive);
    watch.expires_after(options.body_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
    co_return !ec && keep_alive;
  }

  template <class Stream>
  Task<void> serve(Stream& stream, Watchdog::Watch& watch) {
    beast::flat_buffer buffer;
    std::string out;     // the response being written, reused
    std::string remote;  // the peer's address, once per connection (a syscall)
    {
      boost::system::error_code rec;
      auto ep = beast::get_lowest_layer(stream).remote_endpoint(rec);
      if (!rec) remote = ep.address().to_string();
    }
    auto write = [&](const HttpResponse& r, unsigned version, bool keep_alive) {
      return this->write(stream, watch, out, r, version, keep_alive);
    };
    for (;;) {
      if (stopping) co_return;
      RequestParser parser;
      parser.apply(limits);
      watch.expires_after(options.header_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      if (watch.expired() || ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec) {
        const std::string_view buffered(static_cast<const char*>(buffer.data().data()), buffer.size());
        co_await write(reject(head_error(ec, parser, buffered, limits)), 11, false);
        co_return;
      }
      if (auto rejected = check_request_head(parser, n, limits)) {  // n: the head's bytes
        co_await write(reject(*rejected), 11, false);
        co_return;
      }
      if (parser.expects_continue()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        watch.expires_after(options.body_timeout);
        auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
        if (wec) co_return;
      }
      // The body usually came with the header: parse what is buffered here
      // (async_read would do the same, then post its completion: a round
      // trip through the I/O thread's queue for every request).
      parser.eager(true);
      boost::system::error_code bec;
      while (!parser.is_done() && buffer.size() > 0) {
        const std::size_t used = parser.put(buffer.data(), bec);
        buffer.consume(used);
        if (bec == http::error::need_more) {
          bec = {};
          break;
        }
        if (bec || used == 0) break;
      }
      if (!bec && !parser.is_done()) {
        watch.expires_after(options.body_timeout);
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
        if (watch.expired()) co_return;
        bec = rec;
      }
      if (bec) {
        if (bec != http::error::end_of_stream && bec != asio::error::operation_aborted) {
          co_await write(reject(body_error(bec, limits)), parser.version(), false);
        }
        co_return;
      }
      HttpRequest req = std::move(parser.request());
      req.remote = remote;
      const bool keep_alive = parser.keep_alive();
      const unsigned version = parser.version();
      ++in_flight;
      watch.disable();  // the handler's time is not the client's
      HttpResponse resp = co_await call_handler(handler, std::move(req));
      --in_flight;
      if (!co_await write(resp, version, keep_alive)) co_return;
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, Handler handler) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (impl->options.tls) {
    if (auto r = impl->setup_tls(); !r) return r.error();
  }
  if (auto r = impl->listen(); !r) return r.error();
  Impl* p = impl.get();
  asio::co_spawn(p->io.get_executor(), p->accept_loop(), asio::detached);
  for (std::size_t i = 0; i < p->ios.contexts.size(); ++i) {
    p->threads.emplace_back([c = p->ios.contexts[i].get(), name = fmt::format("{}-{}", p->options.name, i)] {
      set_thread_name(name);
      c->run();
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return impl_->port; }

std::size_t HttpServer::connections() const { return impl_->connections.load(); }

void HttpServer::stop(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  asio::post(impl_->io, [p = impl_.get()] {
    boost::system::error_code ignored;
    p->acceptor.close(ignored);
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Close the remaining connections on their own threads and let their
  // sessions end (briefly), then stop the threads.
  for (std::size_t i = 0; i < impl_->ios.contexts.size(); ++i) {
    asio::post(*impl_->ios.contexts[i], [d = impl_->ios.dogs[i].get()] { d->close_all(); });
  }
  const auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (impl_->connections.load() > 0 && std::chrono::steady_clock::now() < close_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& ctx : impl_->ios.contexts) ctx->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace horizon::net
