#include "pubsub/server.h"
#include "core/log_throttle.h"
#include "core/thread_name.h"

#include "core/text.h"
#include "metrics/metrics.h"
#include "net/secrets.h"
#include "net/tls.h"
#include "pubsub/protocol.h"
#include "pubsub/pubsub_internal.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace horizon::pubsub {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// The subscription index is split by topic hash so that publishers on
// different topics rarely meet on a lock.
constexpr std::size_t kShards = 64;
// Bytes read per read_some; larger than a line, so a whole line always fits.
constexpr std::size_t kReadBufferBytes = 16 * 1024;
static_assert(kReadBufferBytes > kMaxLineBytes + 1);
// Messages a writer takes out of its queue for one write: at most this
// many, and about this many bytes of topics and messages (which bounds
// the write buffer of a connection).
constexpr std::size_t kMaxBatchItems = 4096;
constexpr std::size_t kMaxBatchBytes = 64 * 1024;
// After BYE, the time allowed for the TLS close_notify exchange.
constexpr std::chrono::milliseconds kByeGrace{2000};
// How long stop() waits for connections to wind down before stopping the
// I/O threads regardless.
constexpr std::chrono::milliseconds kStopGrace{5000};

enum class Reject : std::uint8_t { kLimit, kTls, kAuth, kProtocol, kTimeout };
constexpr std::array<std::string_view, 5> kRejectNames = {"limit", "tls", "auth", "protocol", "timeout"};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("pubsub server: {} ended by an exception: {}", what, ex.what());
  }
}

}  // namespace

struct Session;

// Everything the server shares between its threads (ServerCore is this).
struct ServerCore {
  explicit ServerCore(ServerOptions o) : options(std::move(o)), io(std::max(1, options.threads)) {}

  struct Subscriber {
    std::shared_ptr<Session> session;
    detail::LatestValueQueue::Slot* slot;  // owned by the session's queue
  };
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<Subscriber>, StringHash, std::equal_to<>> topics;  // guarded by mu
  };

  ServerOptions options;

  // Statistics (always kept) and the registry's metrics (when given).
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> superseded{0};
  std::atomic<std::uint64_t> invalid_published{0};
  std::array<std::atomic<std::uint64_t>, kRejectNames.size()> rejected{};
  std::atomic<std::size_t> clients{0};
  std::atomic<std::size_t> subscriptions{0};
  metrics::Gauge* m_clients = nullptr;
  metrics::Gauge* m_subscriptions = nullptr;
  metrics::Counter* m_published = nullptr;
  metrics::Counter* m_delivered = nullptr;
  metrics::Counter* m_superseded = nullptr;
  std::array<metrics::Counter*, kRejectNames.size()> m_rejected{};

  std::array<Shard, kShards> shards;

  // Every live session, for stop() and stats(). Lock order: sessions_mu,
  // then a session's mu. A shard's mu is never held with sessions_mu.
  mutable std::mutex sessions_mu;
  std::condition_variable sessions_cv;
  std::unordered_set<Session*> sessions;  // guarded by sessions_mu

  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::uint16_t port = 0;

  // Declared last: destroyed first, so that sessions still owned by
  // pending handlers are destroyed while the members above exist.
  ssl::context tls{ssl::context::tls_server};
  asio::io_context io;
  tcp::acceptor acceptor{asio::make_strand(io)};
  LogThrottle accept_failures{std::chrono::seconds(10)};  // accept_loop only
  std::vector<std::thread> threads;

  Result<void> setup_tls();
  Result<void> listen();
  void register_metrics(metrics::Registry& registry);

  void reject(Reject why) {
    const auto i = static_cast<std::size_t>(why);
    rejected[i].fetch_add(1, std::memory_order_relaxed);
    if (m_rejected[i]) m_rejected[i]->inc();
  }
  void count_delivered(std::uint64_t n) {
    delivered.fetch_add(n, std::memory_order_relaxed);
    if (m_delivered) m_delivered->inc(n);
  }
  void count_superseded() {
    superseded.fetch_add(1, std::memory_order_relaxed);
    if (m_superseded) m_superseded->inc();
  }
  void add_subscriptions(std::int64_t delta) {
    subscriptions.fetch_add(static_cast<std::size_t>(delta), std::memory_order_acq_rel);
    if (m_subscriptions) m_subscriptions->add(delta);
  }

  Shard& shard_for(std::string_view topic) { return shards[StringHash{}(topic) % kShards]; }

  void publish(std::string_view topic, std::string_view message);
  bool subscribe(const std::shared_ptr<Session>& session, std::string_view topic);
  void unsubscribe_all(const std::shared_ptr<Session>& session);
};

// One client connection. The reader coroutine owns the protocol state; the
// writer coroutine drains `queue` and the owed OKs; both run on the
// connection's strand. Publishers (any thread) only touch the members
// guarded by `mu`.
struct Session : std::enable_shared_from_this<Session> {
  Session(ServerCore& s, tcp::socket socket, std::string remote_address)
      : server(s),
        stream(std::move(socket), s.tls),
        wake(stream.get_executor(), asio::steady_timer::time_point::max()),
        deadline(stream.get_executor()),
        remote(std::move(remote_address)) {
    {
      std::lock_guard lock(server.sessions_mu);
      server.sessions.insert(this);
    }
    server.clients.fetch_add(1, std::memory_order_relaxed);
    if (server.m_clients) server.m_clients->add(1);
  }

  ~Session() {
    if (server.m_clients) server.m_clients->add(-1);
    server.clients.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lock(server.sessions_mu);
    server.sessions.erase(this);
    server.sessions_cv.notify_all();
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  ServerCore& server;
  ssl::stream<tcp::socket> stream;
  asio::steady_timer wake;      // the writer waits on it; cancel() wakes it
  asio::steady_timer deadline;  // the auth timeout, then the BYE grace
  const std::string remote;

  // Strand-only state.
  std::atomic<bool> authenticated{false};  // atomic for clients()
  bool closing = false;                    // the reader is done: the writer must stop
  bool bye = false;                        // ... after a TLS close_notify
  bool aborted = false;                    // the socket is closed
  std::size_t oks_owed = 0;

  // Shared with publishers.
  mutable std::mutex mu;
  detail::LatestValueQueue queue;  // guarded by mu
  bool closed = false;             // guarded by mu; no more deliveries
  bool writer_idle = false;        // guarded by mu; the writer waits (or is about to wait) on `wake`
  std::uint64_t superseded = 0;    // guarded by mu
  std::atomic<std::uint64_t> delivered{0};

  // Any thread. Never waits except for `mu`.
  void deliver(const std::shared_ptr<Session>& self, detail::LatestValueQueue::Slot& slot, std::string_view message) {
    bool wake_writer = false;
    bool replaced = false;
    {
      std::lock_guard lock(mu);
      if (closed) return;
      replaced = queue.put(slot, message).superseded;
      if (replaced) ++superseded;
      if (writer_idle) {
        writer_idle = false;
        wake_writer = true;
      }
    }
    if (replaced) server.count_superseded();
    // The post runs on the strand once the writer is suspended in
    // async_wait (it set writer_idle in the same strand turn), so the
    // cancel cannot be lost.
    if (wake_writer) asio::post(stream.get_executor(), [s = self] { s->wake.cancel(); });
  }

  // Strand only: closes the socket at once; pending reads and writes fail.
  void abort() {
    aborted = true;
    boost::system::error_code ignored;
    stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream.lowest_layer().close(ignored);
    wake.cancel();
  }
};

void ServerCore::publish(std::string_view topic, std::string_view message) {
  published.fetch_add(1, std::memory_order_relaxed);
  if (m_published) m_published->inc();
  if (subscriptions.load(std::memory_order_acquire) == 0) return;  // nobody listens at all
  Shard& shard = shard_for(topic);
  std::shared_lock lock(shard.mu);
  auto it = shard.topics.find(topic);
  if (it == shard.topics.end()) return;
  // Only now, with someone to deliver to, is the message worth checking.
  if (!is_valid_message(message)) {
    invalid_published.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  for (const Subscriber& sub : it->second) sub.session->deliver(sub.session, *sub.slot, message);
}

bool ServerCore::subscribe(const std::shared_ptr<Session>& session, std::string_view topic) {
  bool created = false;
  detail::LatestValueQueue::Slot* slot = nullptr;
  {
    std::lock_guard lock(session->mu);
    if (session->closed) return false;
    if (session->queue.find(topic) == nullptr && session->queue.topics() >= options.max_topics_per_client) {
      return false;
    }
    slot = &session->queue.slot(topic, &created);
  }
  if (!created) return true;  // SUB twice: idempotent
  Shard& shard = shard_for(topic);
  {
    std::unique_lock lock(shard.mu);
    auto it = shard.topics.find(topic);
    if (it == shard.topics.end()) it = shard.topics.emplace(std::string(topic), std::vector<Subscriber>{}).first;
    it->second.push_back(Subscriber{session, slot});
  }
  add_subscriptions(1);
  return true;
}

void ServerCore::unsubscribe_all(const std::shared_ptr<Session>& session) {
  std::vector<std::string> topics;
  {
    std::lock_guard lock(session->mu);
    session->closed = true;
    topics = session->queue.topic_list();
  }
  for (const std::string& topic : topics) {
    Shard& shard = shard_for(topic);
    std::unique_lock lock(shard.mu);
    auto it = shard.topics.find(topic);
    if (it == shard.topics.end()) continue;  // stop() cleared the index
    auto& subs = it->second;
    auto pos = std::find_if(subs.begin(), subs.end(), [&](const Subscriber& s) { return s.session == session; });
    if (pos == subs.end()) continue;
    *pos = std::move(subs.back());
    subs.pop_back();
    if (subs.empty()) shard.topics.erase(it);
    lock.unlock();
    add_subscriptions(-1);
  }
}

namespace {

enum class LineResult : std::uint8_t { kContinue, kBye, kReject };
enum class ReaderEnd : std::uint8_t { kClosed, kBye, kRejected };

LineResult handle_line(const std::shared_ptr<Session>& self, std::string_view line) {
  ServerCore& srv = self->server;
  auto cmd = parse_client_line(line);
  if (!cmd) {
    spdlog::debug("pubsub server: closing {}: {}", self->remote, cmd.error().message);
    srv.reject(Reject::kProtocol);
    return LineResult::kReject;
  }
  using Kind = ClientCommand::Kind;
  if (cmd->kind == Kind::kBye) return LineResult::kBye;
  if (cmd->kind == Kind::kAuth) {
    if (self->authenticated) {
      spdlog::debug("pubsub server: closing {}: AUTH after a successful AUTH", self->remote);
      srv.reject(Reject::kProtocol);
      return LineResult::kReject;
    }
    if (!net::constant_time_equal(cmd->token, srv.options.token)) {
      spdlog::debug("pubsub server: closing {}: wrong token", self->remote);
      srv.reject(Reject::kAuth);
      return LineResult::kReject;
    }
    self->authenticated = true;
    self->deadline.cancel();
    return LineResult::kContinue;
  }
  if (!self->authenticated) {
    spdlog::debug("pubsub server: closing {}: command before AUTH", self->remote);
    srv.reject(Reject::kProtocol);
    return LineResult::kReject;
  }
  if (cmd->kind == Kind::kPub) {
    srv.publish(cmd->topic, cmd->message);
    return LineResult::kContinue;
  }
  // kSub
  if (!srv.subscribe(self, cmd->topic)) {
    spdlog::debug("pubsub server: closing {}: more than {} topics", self->remote, srv.options.max_topics_per_client);
    srv.reject(Reject::kProtocol);
    return LineResult::kReject;
  }
  ++self->oks_owed;
  self->wake.cancel();  // on the strand: wakes the writer if it waits
  return LineResult::kContinue;
}

asio::awaitable<ReaderEnd> reader_loop(std::shared_ptr<Session> self) {
  std::vector<char> buf(kReadBufferBytes);
  std::size_t have = 0;
  for (;;) {
    auto [ec, n] = co_await self->stream.async_read_some(asio::buffer(buf.data() + have, buf.size() - have), kTuple);
    if (ec) co_return ReaderEnd::kClosed;  // EOF, reset, or aborted (timeout, stop)
    have += n;
    std::size_t start = 0;
    while (start < have) {
      const void* nl = std::memchr(buf.data() + start, '\n', have - start);
      if (nl == nullptr) break;
      const auto end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
      const std::string_view line(buf.data() + start, end - start);
      start = end + 1;
      switch (handle_line(self, line)) {
        case LineResult::kContinue: break;
        case LineResult::kBye: co_return ReaderEnd::kBye;
        case LineResult::kReject: co_return ReaderEnd::kRejected;
      }
      if (self->aborted) co_return ReaderEnd::kClosed;
    }
    const std::size_t rest = have - start;
    if (rest > kMaxLineBytes) {
      spdlog::debug("pubsub server: closing {}: line longer than {} bytes", self->remote, kMaxLineBytes);
      self->server.reject(Reject::kProtocol);
      co_return ReaderEnd::kRejected;
    }
    std::memmove(buf.data(), buf.data() + start, rest);
    have = rest;
  }
}

asio::awaitable<void> writer_loop(std::shared_ptr<Session> self) {
  std::string out;
  std::vector<detail::LatestValueQueue::Item> items;
  for (;;) {
    // After BYE the writer flushes what is owed (the OKs, pending NOTIFYs)
    // once, then sends close_notify; after anything else it just stops.
    const bool last_round = self->closing;
    if (last_round && (!self->bye || self->aborted)) break;
    out.clear();
    for (; self->oks_owed > 0; --self->oks_owed) append_ok(out);
    std::size_t n = 0;
    {
      std::lock_guard lock(self->mu);
      n = self->queue.take(items, kMaxBatchItems, kMaxBatchBytes);
      self->writer_idle = n == 0 && out.empty();
    }
    for (std::size_t i = 0; i < n; ++i) append_notify(out, *items[i].topic, items[i].message);
    if (out.empty()) {
      if (last_round) break;
      co_await self->wake.async_wait(kTuple);  // cancelled to wake us
      continue;
    }
    auto [ec, written] = co_await asio::async_write(self->stream, asio::buffer(out), kTuple);
    if (ec) {
      self->abort();  // the reader's pending read fails and ends the session
      co_return;
    }
    self->delivered.fetch_add(n, std::memory_order_relaxed);
    self->server.count_delivered(n);
    if (last_round) break;
  }
  if (self->bye && !self->aborted) {
    co_await self->stream.async_shutdown(kTuple);  // bounded by the BYE grace deadline
  }
  self->abort();
}

void on_deadline(const std::weak_ptr<Session>& weak, boost::system::error_code ec) {
  if (ec) return;  // cancelled
  auto self = weak.lock();
  if (!self || self->aborted) return;
  if (!self->authenticated && !self->closing) {
    spdlog::debug("pubsub server: closing {}: not authenticated in time", self->remote);
    self->server.reject(Reject::kTimeout);
  }
  self->abort();
}

// Called once, on the strand, when the reader is done.
void finish(const std::shared_ptr<Session>& self, ReaderEnd end) {
  self->server.unsubscribe_all(self);
  self->deadline.cancel();
  self->closing = true;
  if (end == ReaderEnd::kBye && !self->aborted) {
    self->bye = true;
    self->deadline.expires_after(kByeGrace);
    self->deadline.async_wait(
        [weak = std::weak_ptr<Session>(self)](boost::system::error_code ec) { on_deadline(weak, ec); });
    self->wake.cancel();  // the writer sends close_notify and closes
  } else {
    self->abort();
  }
}

asio::awaitable<void> run_session(std::shared_ptr<Session> self) {
  ServerCore& srv = self->server;
  if (srv.stopping) {
    self->abort();
    co_return;
  }
  // The auth timeout covers the TLS handshake too.
  self->deadline.expires_after(srv.options.auth_timeout);
  self->deadline.async_wait(
      [weak = std::weak_ptr<Session>(self)](boost::system::error_code ec) { on_deadline(weak, ec); });
  auto [ec] = co_await self->stream.async_handshake(ssl::stream_base::server, kTuple);
  if (ec) {
    // Plain TCP, TLS < 1.2, garbage, or the deadline fired (counted there).
    if (!self->aborted) {
      spdlog::debug("pubsub server: closing {}: TLS handshake failed: {}", self->remote, ec.message());
      srv.reject(Reject::kTls);
    }
    self->deadline.cancel();
    self->abort();
    co_return;
  }
  asio::co_spawn(self->stream.get_executor(), writer_loop(self),
                 [](std::exception_ptr e) { log_exception("a connection writer", e); });
  const ReaderEnd end = co_await reader_loop(self);
  finish(self, end);
}

asio::awaitable<void> accept_loop(ServerCore* srv) {
  for (;;) {
    auto [ec, socket] = co_await srv->acceptor.async_accept(asio::make_strand(srv->io), kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || srv->stopping) co_return;
      // Out of file descriptors (or another transient error): keep serving
      // the open connections and retry shortly instead of spinning.
      if (const auto n = srv->accept_failures.admit()) {
        spdlog::warn("pubsub server: accept failed ({} times since the last report): {}; retrying every 100 ms", n,
                     ec.message());
      }
      asio::steady_timer pause(srv->acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    boost::system::error_code ignored;
    if (srv->stopping) {
      socket.close(ignored);
      co_return;
    }
    if (srv->clients.load(std::memory_order_relaxed) >= srv->options.max_clients) {
      socket.close(ignored);  // fast reject
      srv->reject(Reject::kLimit);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ignored);
    std::string remote = "?";
    if (auto ep = socket.remote_endpoint(ignored); !ignored) {
      remote = fmt::format("{}:{}", ep.address().to_string(), ep.port());
    }
    auto session = std::make_shared<Session>(*srv, std::move(socket), std::move(remote));
    auto ex = session->stream.get_executor();
    asio::co_spawn(ex, run_session(std::move(session)), [](std::exception_ptr e) { log_exception("a connection", e); });
  }
}

}  // namespace

Result<void> ServerCore::setup_tls() {
  return net::configure_server_tls(tls, options.cert_pem, options.key_pem, "pubsub server", options.credentials);
}

Result<void> ServerCore::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.address, ec);
  if (ec) {
    return Error::make(errc::invalid_argument,
                       fmt::format("pubsub server: bad listen address \"{}\"", printable_excerpt(options.address)));
  }
  tcp::endpoint ep(addr, options.port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::make(errc::not_ready, fmt::format("pubsub server: cannot listen on {}:{}: {}", options.address,
                                                    options.port, ec.message()));
  }
  port = acceptor.local_endpoint().port();
  return {};
}

void ServerCore::register_metrics(metrics::Registry& registry) {
  m_clients = &registry.gauge("horizon_pubsub_clients", "Open pub/sub connections, authenticated or not.");
  m_subscriptions =
      &registry.gauge("horizon_pubsub_subscriptions", "Pub/sub subscriptions: (connection, topic) pairs.");
  m_published = &registry.counter("horizon_pubsub_published_total",
                                  "Messages published to the pub/sub server (in-process and PUB commands).");
  m_delivered = &registry.counter("horizon_pubsub_delivered_total", "NOTIFY lines written to pub/sub clients.");
  m_superseded =
      &registry.counter("horizon_pubsub_superseded_total",
                        "Pending pub/sub notifications replaced by a newer message for the same connection and topic.");
  auto& family = registry.counter_family("horizon_pubsub_rejected_connections_total",
                                         "Pub/sub connections closed by the server, by reason.", {"reason"});
  for (std::size_t i = 0; i < kRejectNames.size(); ++i) m_rejected[i] = &family.with({kRejectNames[i]});
}

struct Server::Impl : ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options, metrics::Registry* registry) {
  if (!is_valid_token(options.token)) {
    return Error::make(errc::invalid_argument, "pubsub server: the token must be 1 or more bytes in 0x21-0x7E");
  }
  if (options.max_clients == 0 || options.auth_timeout.count() <= 0 || options.max_topics_per_client == 0) {
    return Error::make(errc::invalid_argument,
                       "pubsub server: max_clients, auth_timeout and max_topics_per_client must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto r = impl->setup_tls(); !r) return r.error();
  if (auto r = impl->listen(); !r) return r.error();
  if (registry) impl->register_metrics(*registry);
  Impl* p = impl.get();
  asio::co_spawn(p->acceptor.get_executor(), accept_loop(p),
                 [](std::exception_ptr e) { log_exception("the accept loop", e); });
  for (int i = 0; i < std::max(1, p->options.threads); ++i) {
    p->threads.emplace_back([p, i] {
      set_thread_name(fmt::format("eh-pubsub-{}", i));
      p->io.run();
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() { stop(); }

void Server::publish(std::string_view topic, std::string_view message) { impl_->publish(topic, message); }

std::uint16_t Server::port() const { return impl_->port; }

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  asio::post(s.acceptor.get_executor(), [p = &s] {
    boost::system::error_code ignored;
    p->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(s.sessions_mu);
    for (Session* raw : s.sessions) {
      if (auto session = raw->weak_from_this().lock()) live.push_back(std::move(session));
    }
  }
  // Outside sessions_mu: dropping the last reference runs ~Session, which
  // takes that mutex.
  for (auto& session : live) {
    auto ex = session->stream.get_executor();
    asio::post(ex, [session = std::move(session)] { session->abort(); });
  }
  live.clear();
  {
    // Each session ends once its reader and writer have seen the closed
    // socket and the index has let go of it.
    std::unique_lock lock(s.sessions_mu);
    s.sessions_cv.wait_for(lock, kStopGrace, [&] { return s.sessions.empty(); });
  }
  s.io.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  for (auto& shard : s.shards) {
    std::unordered_map<std::string, std::vector<Impl::Subscriber>, StringHash, std::equal_to<>> dropped;
    {
      std::unique_lock lock(shard.mu);
      dropped.swap(shard.topics);
    }
    for (const auto& [topic, subs] : dropped) s.add_subscriptions(-static_cast<std::int64_t>(subs.size()));
  }
}

ServerStats Server::stats() const {
  const Impl& s = *impl_;
  ServerStats st;
  st.clients = s.clients.load(std::memory_order_relaxed);
  st.subscriptions = s.subscriptions.load(std::memory_order_relaxed);
  st.published = s.published.load(std::memory_order_relaxed);
  st.delivered = s.delivered.load(std::memory_order_relaxed);
  st.superseded = s.superseded.load(std::memory_order_relaxed);
  st.invalid_published = s.invalid_published.load(std::memory_order_relaxed);
  st.rejected_limit = s.rejected[static_cast<std::size_t>(Reject::kLimit)].load(std::memory_order_relaxed);
  st.rejected_tls = s.rejected[static_cast<std::size_t>(Reject::kTls)].load(std::memory_order_relaxed);
  st.rejected_auth = s.rejected[static_cast<std::size_t>(Reject::kAuth)].load(std::memory_order_relaxed);
  st.rejected_protocol = s.rejected[static_cast<std::size_t>(Reject::kProtocol)].load(std::memory_order_relaxed);
  st.rejected_timeout = s.rejected[static_cast<std::size_t>(Reject::kTimeout)].load(std::memory_order_relaxed);
  std::lock_guard lock(s.sessions_mu);
  for (const Session* session : s.sessions) {
    std::lock_guard session_lock(session->mu);
    const std::size_t pending = session->queue.pending();
    st.pending += pending;
    st.max_client_pending = std::max(st.max_client_pending, pending);
    st.max_client_high_water = std::max(st.max_client_high_water, session->queue.high_water());
  }
  return st;
}

std::vector<ClientInfo> Server::clients() const {
  const Impl& s = *impl_;
  std::vector<ClientInfo> out;
  std::lock_guard lock(s.sessions_mu);
  out.reserve(s.sessions.size());
  for (const Session* session : s.sessions) {
    ClientInfo info;
    info.remote = session->remote;
    info.authenticated = session->authenticated.load();
    info.delivered = session->delivered.load(std::memory_order_relaxed);
    std::lock_guard session_lock(session->mu);
    info.topics = session->queue.topics();
    info.pending = session->queue.pending();
    info.high_water = session->queue.high_water();
    info.superseded = session->superseded;
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace horizon::pubsub
