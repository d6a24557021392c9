#include "net/http_server.h"

#include "net/tls.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
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
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::vector<std::string> HttpRequest::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string HttpRequest::path() const { return target.substr(0, target.find('?')); }

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = fmt::format(R"({{"error":"{}","message":"{}"}})", code, message);
  r.close = true;
  return r;
}

// Waits for the handler's answer, which may come from any thread: the
// answer is posted to this coroutine's executor (one thread), stored, and
// wakes the coroutine by cancelling a timer it waits on. (The post can only
// run once the coroutine is suspended in async_wait, on the same thread.)
// An answer given on this thread before the handler returns (an error, a
// live read, an append the handler committed itself) is taken directly.
asio::awaitable<HttpResponse> call_handler(const Handler& handler, HttpRequest req) {
  auto ex = co_await asio::this_coro::executor;
  struct Pending {
    explicit Pending(const asio::any_io_executor& e) : wake(e, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;
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

}  // namespace

// One io_context per I/O thread, each connection on one of them (round
// robin): a connection's reads, handler, answer and writes stay on one
// thread, with no hand-offs between the threads of a shared context.
struct IoThreads {
  explicit IoThreads(int n) {
    for (int i = 0; i < std::max(1, n); ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
      guards.emplace_back(asio::make_work_guard(*contexts.back()));
    }
  }
  asio::io_context& next() { return *contexts[turn++ % contexts.size()]; }
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::size_t turn = 0;  // used by the accept loop only
};

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  IoThreads ios{options.threads};
  asio::io_context& io = *ios.contexts.front();  // the acceptor's
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;
  bool stopped = false;

  Impl(HttpServerOptions o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  Result<void> setup_tls() { return configure_server_tls(tls, options.cert_pem, options.key_pem, options.name); }

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

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(ios.next(), kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        // Out of file descriptors (or another transient error): keep
        // serving the open connections and try again shortly instead of
        // spinning on accept.
        spdlog::warn("{}: accept failed: {}; retrying in 100 ms", options.name, ec.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
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
      if (options.tls) {
        asio::co_spawn(ex, tls_session(beast::ssl_stream<beast::tcp_stream>(std::move(socket), tls)),
                       [this](std::exception_ptr e) { session_done(e); });
      } else {
        asio::co_spawn(ex, plain_session(beast::tcp_stream(std::move(socket))),
                       [this](std::exception_ptr e) { session_done(e); });
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

  asio::awaitable<void> tls_session(beast::ssl_stream<beast::tcp_stream> stream) {
    beast::get_lowest_layer(stream).expires_after(options.header_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (ec) co_return;  // downgrade attempts, wrong CA, plain HTTP: just close
    co_await serve(stream);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(kTuple);
  }

  asio::awaitable<void> plain_session(beast::tcp_stream stream) {
    co_await serve(stream);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  template <class Stream>
  asio::awaitable<bool> write(Stream& stream, const HttpResponse& r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "event-horizon");
    res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive && !r.close);
    res.body() = r.body;
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(options.body_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, kTuple);
    co_return !ec && res.keep_alive();
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream) {
    beast::flat_buffer buffer;
    std::string remote;  // the peer's address, once per connection (a syscall)
    {
      boost::system::error_code rec;
      auto ep = beast::get_lowest_layer(stream).socket().remote_endpoint(rec);
      if (!rec) remote = ep.address().to_string();
    }
    for (;;) {
      if (stopping) co_return;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser.body_limit(options.max_body_bytes);
      beast::get_lowest_layer(stream).expires_after(options.header_timeout);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec == http::error::body_limit) {  // a declared Content-Length over the limit
        co_await write(stream, error_response(413, "body_too_large",
                                              fmt::format("request body exceeds {} bytes", options.max_body_bytes)),
                       11, false);
        co_return;
      }
      if (ec == http::error::header_limit) {
        co_await write(stream, error_response(431, "headers_too_large",
                                              fmt::format("request headers exceed {} bytes", options.max_header_bytes)),
                       11, false);
        co_return;
      }
      if (ec) {
        co_await write(stream, error_response(400, "bad_request", "malformed HTTP request: " + ec.message()), 11, false);
        co_return;
      }
      auto& head = parser.get();
      if (auto len = parser.content_length(); len && *len > options.max_body_bytes) {
        co_await write(stream, error_response(413, "body_too_large",
                                              fmt::format("request body of {} bytes exceeds {} bytes", *len,
                                                          options.max_body_bytes)),
                       head.version(), false);
        co_return;
      }
      if (lower(std::string(head[http::field::expect])) == "100-continue") {
        http::response<http::empty_body> cont{http::status::continue_, head.version()};
        auto [wec, wn] = co_await http::async_write(stream, cont, kTuple);
        if (wec) co_return;
      }
      beast::get_lowest_layer(stream).expires_after(options.body_timeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (bec == http::error::body_limit) {
        co_await write(stream, error_response(413, "body_too_large",
                                              fmt::format("request body exceeds {} bytes", options.max_body_bytes)),
                       head.version(), false);
        co_return;
      }
      if (bec) {
        if (bec != beast::error::timeout && bec != http::error::end_of_stream) {
          co_await write(stream, error_response(400, "bad_request", "malformed HTTP request body: " + bec.message()),
                         head.version(), false);
        }
        co_return;
      }
      auto msg = parser.release();
      HttpRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      for (const auto& f : msg) req.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
      req.body = std::move(msg.body());
      req.remote = remote;
      const bool keep_alive = msg.keep_alive();
      const unsigned version = msg.version();
      ++in_flight;
      HttpResponse resp = co_await call_handler(handler, std::move(req));
      --in_flight;
      if (!co_await write(stream, resp, version, keep_alive)) co_return;
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
  asio::co_spawn(p->io, p->accept_loop(), asio::detached);
  for (auto& ctx : p->ios.contexts) {
    p->threads.emplace_back([c = ctx.get()] { c->run(); });
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
  for (auto& ctx : impl_->ios.contexts) ctx->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace horizon::net
