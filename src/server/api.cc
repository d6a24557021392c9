#include "server/api.h"

#include "core/wire.h"
#include "net/secrets.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>

namespace horizon::server {

namespace {

using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

HttpResponse json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse error(const Error& e) {
  HttpResponse r = json(e.http_status(), e.to_json_body());
  if (e.code == errc::unauthorized) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

// Exactly one "Authorization: Bearer <token>" header with the right token.
bool authorized(const HttpRequest& req, const std::string& token) {
  const std::string* value = req.only_header("authorization");
  if (value == nullptr) return false;
  constexpr std::string_view kPrefix = "Bearer ";
  const std::string& v = *value;
  if (v.size() <= kPrefix.size() || v.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  return net::constant_time_equal(std::string_view(v).substr(kPrefix.size()), token);
}

struct Route {
  std::string_view path;
  std::string_view method;
};
constexpr Route kRoutes[] = {
    {"/writer/create_stream", "POST"}, {"/writer/append", "POST"}, {"/writer/subscribe", "POST"},
    {"/writer/unsubscribe", "POST"},   {"/writer/liveread", "POST"}, {"/health", "GET"},
};
constexpr std::size_t kRouteCount = std::size(kRoutes);
// The endpoint label of a request for an unknown path: never the path
// itself, which would give every client-chosen path its own series.
constexpr std::string_view kOtherEndpoint = "other";

// horizon_http_requests_total children by route (kRouteCount: unknown paths)
// and status, looked up in the family once and then kept: the family's
// lookup takes a mutex and builds the label list.
class RequestCounters {
 public:
  explicit RequestCounters(metrics::Family<metrics::Counter>& family) : family_(family) {}

  metrics::Counter& at(std::size_t route, int status) {
    if (status < kMinStatus || status > kMaxStatus) return lookup(route, status);
    auto& slot = slots_[route][static_cast<std::size_t>(status - kMinStatus)];
    metrics::Counter* c = slot.load(std::memory_order_acquire);
    if (c == nullptr) {
      c = &lookup(route, status);
      slot.store(c, std::memory_order_release);  // racing threads store the same child
    }
    return *c;
  }

 private:
  static constexpr int kMinStatus = 100;
  static constexpr int kMaxStatus = 599;
  metrics::Counter& lookup(std::size_t route, int status) {
    const std::string code = std::to_string(status);
    return family_.with({route < kRouteCount ? kRoutes[route].path : kOtherEndpoint, code});
  }
  metrics::Family<metrics::Counter>& family_;
  std::array<std::array<std::atomic<metrics::Counter*>, kMaxStatus - kMinStatus + 1>, kRouteCount + 1> slots_{};
};

}  // namespace

ApiMetrics::ApiMetrics(metrics::Registry& r)
    : requests(r.counter_family("horizon_http_requests_total", "Writer API requests by endpoint and status code",
                                {"endpoint", "code"})),
      create_stream_ops(r.counter("horizon_create_stream_ops_total", "Streams created")),
      append_ops(r.counter("horizon_append_ops_total", "Successful append requests")),
      subscribe_ops(r.counter("horizon_subscribe_ops_total", "Successful subscribe requests")),
      unsubscribe_ops(r.counter("horizon_unsubscribe_ops_total", "Successful unsubscribe requests")),
      liveread_ops(r.counter("horizon_liveread_ops_total", "Successful live reads")),
      appended_lines(r.counter("horizon_appended_lines_total", "Application lines appended (meta lines excluded)")),
      unauthorized(r.counter("horizon_unauthorized_requests_total", "Requests rejected for a missing or wrong token")),
      append_latency(r.histogram("horizon_append_latency_seconds",
                                 "Time from a parsed append request to its durable acknowledgement",
                                 metrics::latency_buckets())) {}

net::Handler make_api_handler(writer::Engine& engine, std::string token, ApiMetrics& m, bool lead_commits) {
  // Appends between parse and answer. An append with nothing else in flight
  // while appends come one at a time (the last group commit held one) is
  // committed on its I/O thread: no hand-off to the commit thread and back.
  // Under load the commit thread gathers the group while the I/O threads
  // keep reading the other connections.
  auto appends_in_flight = std::make_shared<std::atomic<int>>(0);
  auto counters = std::make_shared<RequestCounters>(m.requests);
  return [&engine, token = std::move(token), &m, lead_commits, appends_in_flight, counters](HttpRequest req,
                                                                                            Responder respond) {
    const std::string_view path = req.path();
    std::size_t route_index = 0;
    while (route_index < kRouteCount && kRoutes[route_index].path != path) ++route_index;
    // Everything an answer needs, without the request (an append's answer
    // comes from the commit thread, after the request is gone).
    auto reply = [counters, route_index, respond = std::move(respond)](HttpResponse r) {
      counters->at(route_index, r.status).inc();
      respond(std::move(r));
    };
    if (route_index == kRouteCount) {
      return reply(error(Error::make(errc::endpoint_not_found, fmt::format("no endpoint {}", path.substr(0, 200)))));
    }
    const Route* route = &kRoutes[route_index];
    if (req.method != route->method) {
      HttpResponse r = error(Error::make(errc::method_not_allowed,
                                         fmt::format("{} takes {}, not {}", route->path, route->method,
                                                     req.method.substr(0, 20))));
      r.headers.emplace_back("Allow", std::string(route->method));
      return reply(std::move(r));
    }
    if (path == "/health") {
      if (auto f = engine.failure()) return reply(error(*f));
      return reply(json(200, R"({"status":"ok"})"));
    }
    if (!authorized(req, token)) {
      m.unauthorized.inc();
      return reply(error(Error::make(errc::unauthorized, "")));
    }

    if (path == "/writer/create_stream") {
      auto r = wire::parse_create_stream_request(req.body);
      if (!r) return reply(error(r.error()));
      return engine.create_stream(r->name, [reply, name = r->name, &m](Result<void> done) {
        if (!done) return reply(error(done.error()));
        m.create_stream_ops.inc();
        reply(json(201, wire::to_json(wire::CreateStreamRequest{name})));
      });
    }
    if (path == "/writer/append") {
      auto r = wire::parse_append_request(req.body);
      if (!r) return reply(error(r.error()));
      const auto started = std::chrono::steady_clock::now();
      const auto lines = r->lines.size();
      const int others = appends_in_flight->fetch_add(1);
      auto done = [reply = std::move(reply), started, lines, &m, appends_in_flight](Result<writer::AppendOutcome> d) {
        appends_in_flight->fetch_sub(1);
        if (!d) return reply(error(d.error()));
        if (d->conflict) return reply(json(409, wire::conflict_body(d->offset)));
        m.append_ops.inc();
        m.appended_lines.inc(lines);
        m.append_latency.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        reply(json(201, wire::to_json(wire::AppendResponse{d->offset})));
      };
      if (!lead_commits || others > 0 || engine.last_group_size() > 1) {
        return engine.append(std::move(*r), std::move(done));
      }
      return engine.submit_and_lead([&] { engine.append(std::move(*r), std::move(done)); });
    }
    if (path == "/writer/subscribe" || path == "/writer/unsubscribe") {
      auto r = wire::parse_subscription_request(req.body);
      if (!r) return reply(error(r.error()));
      const bool sub = path == "/writer/subscribe";
      auto done = [reply, sub, &m](Result<void> d) {
        if (!d) return reply(error(d.error()));
        (sub ? m.subscribe_ops : m.unsubscribe_ops).inc();
        reply(json(200, "{}"));
      };
      if (sub) return engine.subscribe(r->stream, r->subscription_id, std::move(done));
      return engine.unsubscribe(r->stream, r->subscription_id, std::move(done));
    }
    // /writer/liveread
    auto r = wire::parse_live_read_request(req.body);
    if (!r) return reply(error(r.error()));
    auto read = engine.read(r->cursor, static_cast<std::size_t>(r->max_lines_to_read));
    if (!read) return reply(error(read.error()));
    m.liveread_ops.inc();
    HttpResponse ok = json(200, std::move(read->bytes));
    ok.content_type = "text/plain; charset=utf-8";
    reply(std::move(ok));
  };
}

void register_engine_metrics(metrics::Registry& registry, const writer::Engine& engine) {
  const writer::Engine* e = &engine;
  auto stat = [e](auto field) { return [e, field] { return static_cast<std::int64_t>(e->stats().*field); }; };
  registry.gauge_callback("horizon_wal_syncs", "WAL fdatasyncs (one per group commit) since start",
                          stat(&writer::Engine::Stats::commits));
  registry.gauge_callback("horizon_wal_paced_syncs",
                          "WAL syncs the commit thread started late to let concurrent appends join the group "
                          "(--sync-pacing) since start",
                          stat(&writer::Engine::Stats::paced_commits));
  registry.gauge_callback("horizon_wal_written_bytes", "Bytes written to the WAL since start",
                          stat(&writer::Engine::Stats::wal_bytes));
  registry.gauge_callback("horizon_checkpoints", "Checkpoints since start", stat(&writer::Engine::Stats::checkpoints));
  registry.gauge_callback("horizon_open_streams", "Streams that exist",
                          [e] { return static_cast<std::int64_t>(e->stream_names().size()); });
  registry.gauge_callback("horizon_ship_backlog_chunks", "Sealed chunks not yet confirmed by the store",
                          [e] { return static_cast<std::int64_t>(e->ship_queue().size()); });
  registry.gauge_callback("horizon_chunk_memory_bytes",
                          "Committed chunk bytes held in memory until a checkpoint writes them to chunk files "
                          "(chunks shipped before that are never written locally)",
                          [e] { return static_cast<std::int64_t>(e->chunk_memory_bytes()); });
  registry.gauge_callback("horizon_engine_failed", "1 when the storage engine latched a write failure",
                          [e] { return e->failed() ? 1 : 0; });
}

}  // namespace horizon::server
