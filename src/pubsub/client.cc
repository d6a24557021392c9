#include "pubsub/client.h"

#include "pubsub/protocol.h"
#include "pubsub/pubsub_internal.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>
#include <vector>

namespace horizon::pubsub {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadBufferBytes = 64 * 1024;
static_assert(kReadBufferBytes > kMaxLineBytes + 1);
constexpr std::size_t kMaxBatchItems = 4096;
constexpr std::size_t kMaxBatchBytes = 64 * 1024;
// close(): how long BYE and the server's close may take.
constexpr std::chrono::milliseconds kCloseGrace{2000};
// A connection that lasted this long (or got an OK) was healthy: the
// backoff starts over after it ends.
constexpr std::chrono::milliseconds kHealthyAfter{1000};
// Distinct failure reasons remembered for "log once per reason".
constexpr std::size_t kMaxLoggedReasons = 64;

using Clock = std::chrono::steady_clock;

void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("pubsub client: {} ended by an exception: {}", what, ex.what());
  }
}

// One connection attempt and, if it succeeds, the connection.
struct Connection {
  Connection(asio::io_context& io, std::shared_ptr<ssl::context> context)
      : tls(std::move(context)),
        stream(io, *tls),
        resolver(io),
        wake(io, asio::steady_timer::time_point::max()),
        deadline(io) {}

  std::shared_ptr<ssl::context> tls;  // the CA of the target it was made for; outlives the stream
  ssl::stream<tcp::socket> stream;
  tcp::resolver resolver;
  asio::steady_timer wake;      // the writer waits on it; cancel() wakes it
  asio::steady_timer deadline;  // connect timeout
  std::size_t subs_sent = 0;    // subs[0..subs_sent) were sent on this connection
  bool serving = false;         // TLS is up; reader and writer run
  bool reported = false;        // on_state(true) was called for it
  bool ended = false;           // the reader is done: the writer must stop
  bool bye_sent = false;
  bool timed_out = false;
  bool got_ok = false;

  void abort() {
    boost::system::error_code ignored;
    resolver.cancel();
    stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream.lowest_layer().close(ignored);
    wake.cancel();
    deadline.cancel();
  }
};

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

// The client's state (ClientCore is this).
struct ClientCore {
  ClientCore(ClientOptions o, ClientCallbacks c)
      : options(std::move(o)), callbacks(std::move(c)), backoff(options.backoff_initial, options.backoff_max) {}

  ClientOptions options;
  ClientCallbacks callbacks;

  // Shared with API threads.
  mutable std::mutex mu;
  std::vector<std::string> subs;            // guarded by mu; in subscription order
  std::unordered_set<std::string> sub_set;  // guarded by mu
  detail::LatestValueQueue pubs;            // guarded by mu
  bool writer_idle = false;                 // guarded by mu
  std::atomic<bool> connected{false};
  std::atomic<bool> close_requested{false};
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<std::uint64_t> oks{0};
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> superseded{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::int64_t> max_backoff_ms{0};

  // I/O-thread only.
  bool closing = false;
  std::shared_ptr<Connection> current;
  detail::Backoff backoff;
  std::mt19937_64 rng{std::random_device{}()};
  std::set<std::string> logged_reasons;

  std::shared_ptr<ssl::context> tls;  // trusts options.ca_pem; replaced by retarget()

  // Declared last: destroyed first (pending handlers reference the above).
  asio::io_context io{1};
  asio::steady_timer backoff_timer{io};
  asio::steady_timer close_timer{io};
  std::thread thread;

  void retarget();
  void wake_writer() {
    asio::post(io, [this] {
      if (current) current->wake.cancel();
    });
  }
  void begin_close();
  void report(bool up) {
    connected = up;
    if (callbacks.on_state) callbacks.on_state(up);
  }
};

namespace {

asio::awaitable<std::string> connect_once(ClientCore* self, std::shared_ptr<Connection> conn) {
  const ClientOptions& o = self->options;
  conn->deadline.expires_after(o.connect_timeout);
  conn->deadline.async_wait([weak = std::weak_ptr<Connection>(conn)](boost::system::error_code ec) {
    if (ec) return;
    if (auto c = weak.lock()) {
      c->timed_out = true;
      c->abort();
    }
  });
  auto [rec, endpoints] = co_await conn->resolver.async_resolve(o.host, std::to_string(o.port), kTuple);
  if (self->closing) co_return "closing";
  if (conn->timed_out) co_return "connect timed out (resolve)";
  if (rec) co_return fmt::format("cannot resolve {}: {}", o.host, rec.message());
  auto [cec, endpoint] = co_await asio::async_connect(conn->stream.lowest_layer(), endpoints, kTuple);
  if (self->closing) co_return "closing";
  if (conn->timed_out) co_return "connect timed out";
  if (cec) co_return fmt::format("cannot connect: {}", cec.message());
  boost::system::error_code ignored;
  conn->stream.lowest_layer().set_option(tcp::no_delay(true), ignored);

  SSL* ssl = conn->stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_address(o.host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, o.host.c_str()) != 1) co_return "TLS: cannot set the expected IP address";
  } else {
    // SSL_set_tlsext_host_name without its old-style cast (SNI).
    void* sni = const_cast<char*>(o.host.c_str());
    if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, sni) != 1 ||
        SSL_set1_host(ssl, o.host.c_str()) != 1) {
      co_return "TLS: cannot set the expected host name";
    }
  }
  auto [hec] = co_await conn->stream.async_handshake(ssl::stream_base::client, kTuple);
  if (conn->timed_out) co_return "connect timed out (TLS handshake)";
  if (hec) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      co_return fmt::format("TLS certificate verification failed: {}", X509_verify_cert_error_string(verify));
    }
    co_return fmt::format("TLS handshake failed: {}", hec.message());
  }
  conn->deadline.cancel();
  co_return std::string();
}

asio::awaitable<void> writer_loop(ClientCore* self, std::shared_ptr<Connection> conn) {
  std::string out;
  std::vector<detail::LatestValueQueue::Item> items;
  append_auth(out, self->options.token);
  for (;;) {
    if (conn->ended) co_return;
    std::size_t n = 0;
    {
      std::lock_guard lock(self->mu);
      for (; conn->subs_sent < self->subs.size(); ++conn->subs_sent) append_sub(out, self->subs[conn->subs_sent]);
      // PUB lines are formatted under the lock: publish() may erase idle
      // slots, and with them the topic strings the items point to.
      n = self->pubs.take(items, kMaxBatchItems, kMaxBatchBytes);
      for (std::size_t i = 0; i < n; ++i) append_pub(out, *items[i].topic, items[i].message);
      if (out.empty() && self->closing && !conn->bye_sent) {
        append_bye(out);
        conn->bye_sent = true;
      }
      self->writer_idle = out.empty();
    }
    if (out.empty()) {
      co_await conn->wake.async_wait(kTuple);
      continue;
    }
    auto [ec, written] = co_await asio::async_write(conn->stream, asio::buffer(out), kTuple);
    if (ec) {
      conn->abort();  // the reader's pending read fails and ends the connection
      co_return;
    }
    out.clear();
    self->published.fetch_add(n, std::memory_order_relaxed);
    if (!conn->reported && !conn->ended) {
      conn->reported = true;  // AUTH and the SUBs are out
      self->connects.fetch_add(1, std::memory_order_relaxed);
      self->logged_reasons.clear();
      self->report(true);
    }
  }
}

// Returns why the connection ended.
asio::awaitable<std::string> reader_loop(ClientCore* self, std::shared_ptr<Connection> conn) {
  std::vector<char> buf(kReadBufferBytes);
  std::size_t have = 0;
  for (;;) {
    auto [ec, n] = co_await conn->stream.async_read_some(asio::buffer(buf.data() + have, buf.size() - have), kTuple);
    if (ec) {
      if (ec == asio::error::eof || ec == ssl::error::stream_truncated) co_return "connection closed by the server";
      co_return fmt::format("connection lost: {}", ec.message());
    }
    have += n;
    std::size_t start = 0;
    while (start < have) {
      const void* nl = std::memchr(buf.data() + start, '\n', have - start);
      if (nl == nullptr) break;
      const auto end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
      const std::string_view line(buf.data() + start, end - start);
      start = end + 1;
      auto parsed = parse_server_line(line);
      if (!parsed) co_return "protocol error from the server: " + parsed.error().message;
      if (parsed->kind == ServerLine::Kind::kOk) {
        conn->got_ok = true;
        self->oks.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      self->notifications.fetch_add(1, std::memory_order_relaxed);
      if (self->callbacks.on_notify)
        self->callbacks.on_notify(std::string(parsed->topic), std::string(parsed->message));
    }
    const std::size_t rest = have - start;
    if (rest > kMaxLineBytes)
      co_return fmt::format("protocol error from the server: line over {} bytes", kMaxLineBytes);
    std::memmove(buf.data(), buf.data() + start, rest);
    have = rest;
  }
}

asio::awaitable<void> run(ClientCore* self) {
  const ClientOptions& o = self->options;
  self->backoff.reset(Clock::now());
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  while (!self->closing) {
    self->attempts.fetch_add(1, std::memory_order_relaxed);
    auto conn = std::make_shared<Connection>(self->io, self->tls);
    self->current = conn;
    std::string reason = co_await connect_once(self, conn);
    if (reason.empty() && !self->closing) {
      const auto up_since = Clock::now();
      conn->serving = true;
      {
        std::lock_guard lock(self->mu);
        self->writer_idle = false;
      }
      asio::co_spawn(self->io, writer_loop(self, conn),
                     [](std::exception_ptr e) { log_exception("the connection writer", e); });
      reason = co_await reader_loop(self, conn);
      if (conn->got_ok || Clock::now() - up_since >= kHealthyAfter) self->backoff.reset(Clock::now());
    }
    conn->ended = true;
    conn->abort();
    self->current.reset();
    const bool was_up = conn->reported;
    if (self->closing) {
      if (was_up) self->report(false);
      break;
    }
    if (self->logged_reasons.size() >= kMaxLoggedReasons) self->logged_reasons.clear();
    if (self->logged_reasons.insert(reason).second) {
      spdlog::warn("pubsub client: {}:{}: {}; reconnecting with backoff", o.host, o.port, reason);
    }
    self->report(false);
    const auto at = self->backoff.next_attempt(Clock::now(), jitter(self->rng));
    const auto period = self->backoff.last_period().count();
    if (period > self->max_backoff_ms.load()) self->max_backoff_ms = period;
    self->backoff_timer.expires_at(at);
    co_await self->backoff_timer.async_wait(kTuple);  // close() cancels it
    if (!self->closing && o.retarget) self->retarget();
  }
}

// A client context that trusts `ca_pem` alone (TLS >= 1.2, peer verified).
Result<std::shared_ptr<ssl::context>> make_tls(const std::string& ca_pem) {
  auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  tls->add_certificate_authority(asio::buffer(ca_pem), ec);
  if (ec) {
    return Error::make(errc::invalid_argument, "pubsub client: the CA is not a valid PEM certificate: " + ec.message());
  }
  return tls;
}

}  // namespace

void ClientCore::retarget() {
  auto t = options.retarget();
  if (!t || (t->host == options.host && t->port == options.port && t->ca_pem == options.ca_pem)) return;
  if (t->host.empty() || t->port == 0) {
    spdlog::warn("pubsub client: ignoring a new target without host or port; staying with {}:{}", options.host,
                 options.port);
    return;
  }
  auto context = make_tls(t->ca_pem);
  if (!context) {
    spdlog::warn("pubsub client: ignoring the new target {}:{}: {}", t->host, t->port, context.error().message);
    return;
  }
  spdlog::info("pubsub client: connecting to {}:{} from now on (was {}:{}{})", t->host, t->port, options.host,
               options.port, t->ca_pem == options.ca_pem ? "" : "; other CA certificates");
  options.host = std::move(t->host);
  options.port = t->port;
  options.ca_pem = std::move(t->ca_pem);
  tls = std::move(*context);
  backoff.reset(Clock::now());
  logged_reasons.clear();
}

void ClientCore::begin_close() {
  closing = true;
  backoff_timer.cancel();
  close_timer.expires_after(kCloseGrace);
  close_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec && current) current->abort();
  });
  if (!current) return;
  if (current->serving) {
    current->wake.cancel();  // the writer flushes, sends BYE; the server closes
  } else {
    current->abort();  // an attempt in progress: give up
  }
}

struct Client::Impl : ClientCore {
  using ClientCore::ClientCore;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Client>> Client::start(ClientOptions options, ClientCallbacks callbacks) {
  if (options.host.empty() || options.port == 0) {
    return Error::make(errc::invalid_argument, "pubsub client: host and port are required");
  }
  if (!is_valid_token(options.token)) {
    return Error::make(errc::invalid_argument, "pubsub client: the token must be 1 or more bytes in 0x21-0x7E");
  }
  if (options.backoff_initial.count() <= 0 || options.backoff_max.count() <= 0 ||
      options.connect_timeout.count() <= 0) {
    return Error::make(errc::invalid_argument, "pubsub client: backoff and timeout values must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(callbacks));
  auto tls = make_tls(impl->options.ca_pem);
  if (!tls) return tls.error();
  impl->tls = std::move(*tls);
  Impl* p = impl.get();
  asio::co_spawn(p->io, run(p), [p](std::exception_ptr e) {
    log_exception("the connection loop", e);
    p->close_timer.cancel();
    p->io.stop();
  });
  p->thread = std::thread([p] { p->io.run(); });
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::~Client() { close(); }

Result<void> Client::subscribe(std::string_view topic) {
  if (!is_valid_topic(topic)) {
    return Error::make(errc::invalid_argument,
                       "pubsub client: a topic is 1-256 bytes of printable ASCII without space");
  }
  Impl& s = *impl_;
  bool wake = false;
  {
    std::lock_guard lock(s.mu);
    if (!s.sub_set.emplace(topic).second) return {};
    s.subs.emplace_back(topic);
    wake = std::exchange(s.writer_idle, false);
  }
  if (wake) s.wake_writer();
  return {};
}

Result<void> Client::publish(std::string_view topic, std::string_view message) {
  if (!is_valid_topic(topic)) {
    return Error::make(errc::invalid_argument,
                       "pubsub client: a topic is 1-256 bytes of printable ASCII without space");
  }
  if (!is_valid_message(message)) {
    return Error::make(errc::invalid_argument,
                       "pubsub client: a message is 0-1024 bytes of UTF-8 without control characters");
  }
  Impl& s = *impl_;
  bool wake = false;
  {
    std::lock_guard lock(s.mu);
    if (s.pubs.find(topic) == nullptr && s.pubs.topics() >= kMaxPendingTopics) {
      // Forget the topics whose last message was sent (a scan, only when
      // some are idle; when all are pending the new topic is dropped).
      if (s.pubs.pending() < s.pubs.topics()) s.pubs.erase_idle();
      if (s.pubs.topics() >= kMaxPendingTopics) {
        s.dropped.fetch_add(1, std::memory_order_relaxed);
        return {};
      }
    }
    if (s.pubs.put(topic, message).superseded) s.superseded.fetch_add(1, std::memory_order_relaxed);
    wake = std::exchange(s.writer_idle, false);
  }
  if (wake) s.wake_writer();
  return {};
}

void Client::close() {
  Impl& s = *impl_;
  if (!s.close_requested.exchange(true)) {
    asio::post(s.io, [p = &s] { p->begin_close(); });
  }
  if (s.thread.joinable() && s.thread.get_id() != std::this_thread::get_id()) s.thread.join();
}

bool Client::connected() const { return impl_->connected.load(); }

ClientStats Client::stats() const {
  const Impl& s = *impl_;
  ClientStats st;
  st.attempts = s.attempts.load();
  st.connects = s.connects.load();
  st.notifications = s.notifications.load();
  st.oks = s.oks.load();
  st.published = s.published.load();
  st.superseded = s.superseded.load();
  st.dropped = s.dropped.load();
  st.max_backoff_period = std::chrono::milliseconds(s.max_backoff_ms.load());
  return st;
}

}  // namespace horizon::pubsub
