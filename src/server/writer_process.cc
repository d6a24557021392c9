#include "server/writer_process.h"
#include "core/log_throttle.h"
#include "core/thread_name.h"
#include "core/timestamp.h"

#include "metrics/metrics.h"
#include "net/ca.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "server/api.h"
#include "server/bootstrap.h"
#include "server/service_notify.h"
#include "server/shipper.h"
#include "pubsub/server.h"
#include "store/object_store.h"
#include "wal/fs.h"
#include "writer/engine.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <limits>

namespace horizon::server {

std::string default_data_dir() {
  if (const char* d = std::getenv("HORIZON_DATA"); d != nullptr && *d != '\0') return d;
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return std::string(h) + "/.local/share/event-horizon";
  }
  return "horizon-data";
}

Result<DescriptorPlan> plan_descriptors(std::uint64_t limit, const DescriptorPlan& wanted) {
  if (limit >= kOtherDescriptors + wanted.total()) return wanted;
  // The least that still works: a few connections of each kind and a small
  // LRU of chunk files (each miss reopens a file).
  DescriptorPlan least{std::min<std::size_t>(wanted.api, 16), std::min<std::size_t>(wanted.pubsub, 8),
                       std::min<std::size_t>(wanted.metrics, 2), std::min<std::size_t>(wanted.engine_files, 16)};
  if (limit < kOtherDescriptors + least.total()) {
    return Error::make(errc::invalid_argument,
                       fmt::format("the open-file limit is {}; the Writer needs at least {} (better several thousand: "
                                   "every connection takes one; raise it with `ulimit -n` or systemd's LimitNOFILE=)",
                                   limit, kOtherDescriptors + least.total()));
  }
  const std::size_t available = static_cast<std::size_t>(limit) - kOtherDescriptors;
  DescriptorPlan plan;
  plan.engine_files = std::clamp<std::size_t>(available / 4, least.engine_files, wanted.engine_files);
  plan.metrics = std::clamp<std::size_t>(16, least.metrics, std::max(least.metrics, wanted.metrics));
  const std::size_t connections = available - plan.engine_files - plan.metrics;
  plan.pubsub = std::clamp<std::size_t>(connections / 3, least.pubsub, wanted.pubsub);
  plan.api = std::min(wanted.api, connections - plan.pubsub);
  return plan;
}

namespace {

constexpr std::uint64_t kMinCheckpointBytes = 64 * 1024;
constexpr double kScrubBytesPerSecond = 100e6;  // the start-up scrub's average read rate at most

// "valid until 2031-11-28T16:25:55.000Z" (for logs).
std::string certificate_validity_text(std::string_view cert_pem) {
  auto v = net::certificate_validity(cert_pem);
  if (!v) return "validity unknown";
  return "valid until " + Timestamp{static_cast<std::int64_t>(v->not_after) * 1000}.to_string();
}

std::string advertised(const std::string& host, std::uint16_t port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

}  // namespace

int start_failed(const std::string& what) {
  spdlog::error("{}", what);
  return 1;
}

int start_refused(const std::string& what) {
  spdlog::error("{}", what);
  return kExitRefused;
}

int start_failed(const Error& e) {
  const bool refused = e.code == errc::invalid_argument || e.code == errc::conflict || e.code == errc::corruption;
  return refused ? start_refused(e.message) : start_failed(e.message);
}

int run_writer(WriterOptions o) {
  // Sealed chunks go through several 8 MiB buffers each (read, encode, read
  // back, decode). glibc serves blocks that large with fresh mmaps, or trims
  // them back to the kernel when freed: every chunk then page-faults about
  // 24 MiB of new zeroed pages (about half of the shipper's CPU at full
  // append rate). Keep such blocks on the heap and the freed space for reuse.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  spdlog::set_default_logger(spdlog::stderr_color_mt("writer"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l [%n] %v", spdlog::pattern_time_type::utc);

  // Block the shutdown signals before any thread starts; sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Connections and chunk files need descriptors: raise the soft limit to
  // the hard limit.
  if (rlimit nofile{}; getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  std::string api_host, pubsub_host, metrics_host;
  std::uint16_t api_port = 0, pubsub_port = 0, metrics_port = 0;
  if (!split_host_port(o.api, api_host, api_port))
    return start_refused(fmt::format("--api \"{}\" is not host:port", o.api));
  if (o.commit_on != "io" && o.commit_on != "thread") {
    return start_refused(fmt::format("--commit-on \"{}\" must be io or thread", o.commit_on));
  }
  if (o.io_threads < 2) return start_refused(fmt::format("--io-threads {} must be at least 2", o.io_threads));
  if (!(o.sync_pacing == 0 || (o.sync_pacing >= 1 && o.sync_pacing <= 10))) {
    return start_refused(fmt::format("--sync-pacing {} must be 0 (off) or from 1 to 10", o.sync_pacing));
  }
  const bool pubsub_enabled = o.pubsub != "off";
  if (pubsub_enabled && !split_host_port(o.pubsub, pubsub_host, pubsub_port)) {
    return start_refused(fmt::format("--pubsub \"{}\" is not host:port", o.pubsub));
  }
  if (!split_host_port(o.metrics, metrics_host, metrics_port)) {
    return start_refused(fmt::format("--metrics \"{}\" is not host:port", o.metrics));
  }
  if (!(o.activity_interval_seconds >= 0.01 && o.activity_interval_seconds <= 3600)) {
    return start_refused(
        fmt::format("--activity-interval {} must be between 0.01 and 3600 seconds", o.activity_interval_seconds));
  }
  if (!(o.ship_backoff_max_seconds >= 0.2 && o.ship_backoff_max_seconds <= 3600)) {
    return start_refused(
        fmt::format("--ship-backoff-max {} must be between 0.2 and 3600 seconds", o.ship_backoff_max_seconds));
  }
  if (o.chunk_size < 1024)
    return start_refused(fmt::format("--chunk-size {} is below the minimum of 1024 bytes", o.chunk_size));
  if (o.checkpoint_bytes < kMinCheckpointBytes) {
    return start_refused(
        fmt::format("--checkpoint-bytes {} is below the minimum of {} bytes", o.checkpoint_bytes, kMinCheckpointBytes));
  }

  // Share the open-file limit (see DescriptorPlan).
  DescriptorPlan wanted;
  wanted.api = net::HttpServerOptions{}.max_connections;
  wanted.pubsub = pubsub_enabled ? pubsub::ServerOptions{}.max_clients : 0;
  wanted.metrics = net::HttpServerOptions{}.max_connections;
  wanted.engine_files = writer::EngineOptions{}.max_open_files;
  rlimit nofile{};
  const std::uint64_t fd_limit = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
                                     ? static_cast<std::uint64_t>(nofile.rlim_cur)
                                     : std::numeric_limits<std::uint64_t>::max();
  auto fds = plan_descriptors(fd_limit, wanted);
  if (!fds) return start_refused(fds.error().message);
  if (!(*fds == wanted)) {
    spdlog::warn("the open-file limit is {}: connection caps lowered to API {}, pub/sub {}, metrics {}, and {} open "
                 "chunk files (raise the limit above {} for the full caps: `ulimit -n`, systemd LimitNOFILE=)",
                 fd_limit, fds->api, fds->pubsub, fds->metrics, fds->engine_files,
                 kOtherDescriptors + wanted.total());
  }

  // Flags are valid: only now touch the file system.
  if (o.data_dir.empty()) o.data_dir = default_data_dir();
  if (auto made = wal::make_dirs_durably(o.data_dir); !made) {
    return start_failed(fmt::format("cannot create data directory {}: {}", o.data_dir, made.error().message));
  }
  std::error_code ec;
  o.data_dir = std::filesystem::canonical(o.data_dir, ec).string();
  if (o.store_url.empty()) {
    const char* s = std::getenv("STORE");
    o.store_url = (s != nullptr && *s != '\0') ? s : "file://" + o.data_dir + "/store";
  }

  auto lock = wal::DirLock::acquire(o.data_dir);
  if (!lock) return start_failed(lock.error().message);
  auto store = store::open_store(o.store_url);
  if (!store) return start_failed(store.error());
  BootstrapConfig bc{o.data_dir, o.store_url, o.advertise};
  auto identity = bootstrap_or_load(bc, **store);
  if (!identity) return start_failed(identity.error());
  if (identity->fresh) {
    spdlog::info("bootstrapped a new Writer {} in {}: client credentials are in {}/client.env (mode 0600), the CA "
                 "certificate in {}/ca.pem",
                 identity->writer_id, o.data_dir, o.data_dir, o.data_dir);
  }
  if (!identity->renewed.empty()) {
    spdlog::info("renewed the server certificate ({}): {}", identity->renewed,
                 certificate_validity_text(identity->server_cert_pem));
  }
  // TLS credentials the listeners present; replaced when the certificate is
  // renewed while the Writer runs (check_certificates below).
  auto credentials = net::ServerCredentials::make(identity->server_cert_pem, identity->server_key_pem);
  if (!credentials) return start_failed(credentials.error().message);

  metrics::Registry registry;
  auto& sync_latency = registry.histogram("horizon_wal_sync_duration_seconds", "Duration of WAL fdatasync calls",
                                          metrics::latency_buckets());
  auto fs = wal::open_posix_fs(o.data_dir);
  if (!fs) return start_failed(fs.error().message);
  std::atomic<bool> storage_failed{false};
  writer::EngineOptions eo;
  eo.server = o.advertise;
  eo.chunk_size = o.chunk_size;
  eo.checkpoint_bytes = o.checkpoint_bytes;
  eo.sync_pacing = o.sync_pacing;
  eo.max_open_files = fds->engine_files;
  eo.on_sync = [&sync_latency](double s) { sync_latency.observe(s); };
  auto& checkpoint_duration = registry.histogram(
      "horizon_checkpoint_duration_seconds",
      "Duration of checkpoints (new WAL segment, chunk file syncs, snapshot; off the commit thread)",
      metrics::latency_buckets());
  eo.on_checkpoint = [&checkpoint_duration](double s, const Error* e) {
    checkpoint_duration.observe(s);
    // Other failures latch the engine and are logged by on_failure.
    if (e != nullptr && e->code == errc::disk_full) {
      spdlog::warn("checkpoint failed: {} (the WAL keeps everything; the next checkpoint retries)", e->message);
    }
  };
  // RELIABILITY A6: a chunk file that fails its checksum on a read or
  // before shipping is quarantined by the engine; said once per chunk.
  auto& damaged_chunks = registry.counter(
      "horizon_damaged_chunks_total",
      "Chunks whose local file failed its checksum (quarantined: neither served nor shipped until restart)");
  eo.on_damaged_chunk = [&damaged_chunks](const Error& e) {
    damaged_chunks.inc();
    spdlog::error("{}", e.message);
  };
  // Fail-stop (RELIABILITY A7): a latched storage failure (a failed
  // fdatasync or WAL write) stops the process within a second, so that a
  // supervisor restarts it and recovery replays the WAL. The failed batch
  // and anything arriving meanwhile get 503 storage_failed.
  eo.on_failure = [&storage_failed](const Error& e) {
    spdlog::error("{}", e.message);
    storage_failed.store(true);
    ::kill(::getpid(), SIGTERM);  // wakes the sigwait below
  };
  // Realtime hints (SPEC §6): after every commit to a subscribed stream,
  // publish sub:<subscription> <cursor>. The server never blocks.
  std::atomic<pubsub::Server*> notifier{nullptr};
  eo.on_notify = [&notifier](const std::vector<writer::Notification>& notes) {
    pubsub::Server* server = notifier.load(std::memory_order_acquire);
    if (server == nullptr) return;
    for (const auto& n : notes) server->publish("sub:" + n.subscription.str(), n.cursor.to_string());
  };
  // A sealed chunk is shipped right away: shipped before the next
  // checkpoint, it is never written to a local chunk file.
  std::atomic<Shipper*> ship_now{nullptr};
  eo.on_seal = [&ship_now] {
    if (Shipper* s = ship_now.load(std::memory_order_acquire)) s->wake();
  };
  auto engine = writer::Engine::open(**fs, eo);
  if (!engine) return start_failed(engine.error().message);
  const auto& rec = (*engine)->recovery();
  spdlog::info("storage engine ready: {} streams, {} commits replayed, WAL tail cut {} bytes{}",
               (*engine)->stream_names().size(), rec.commits_replayed, rec.torn_tail_bytes,
               rec.torn_tail_bytes > 0 ? " (a torn record and/or stale bytes of a recycled segment file)" : "");

  // A data directory older than the history the store holds (a restored
  // backup, a copy) would seal chunks again with other lines.
  if (auto r = check_history_mark(**store, identity->writer_id, (*engine)->last_commit(), o.data_dir); !r) {
    return start_failed(r.error());
  }

  // Long-term storage: ship sealed chunks to the store in the background.
  auto master_key = codec::MasterKey::parse_hex(identity->master_key);
  if (!master_key)
    return start_refused("the data directory's HORIZON_KEY is not usable: " + master_key.error().message);
  ShipperMetrics shipper_metrics(registry);
  ShipperOptions shipper_options;
  shipper_options.backoff_max =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(o.ship_backoff_max_seconds));
  shipper_options.writer_id = identity->writer_id;
  Shipper shipper(**engine, **store, *master_key, shipper_options, &shipper_metrics);
  shipper.start();
  ship_now.store(&shipper, std::memory_order_release);

  pubsub::ServerOptions ps;
  ps.address = pubsub_host;
  ps.port = pubsub_port;
  ps.credentials = *credentials;
  ps.token = identity->token;
  ps.max_clients = std::max<std::size_t>(fds->pubsub, 1);
  std::unique_ptr<pubsub::Server> pubsub_server;
  if (pubsub_enabled) {
    auto started = pubsub::Server::start(ps, &registry);
    if (!started) return start_failed(started.error().message);
    pubsub_server = std::move(*started);
    notifier.store(pubsub_server.get(), std::memory_order_release);
  }
  const std::string pubsub_address =
      pubsub_server ? advertised(o.advertise, pubsub_server->port()) : std::string("off");

  ApiMetrics api_metrics(registry);
  register_engine_metrics(registry, **engine);
  net::HttpServerOptions api_opts;
  api_opts.address = api_host;
  api_opts.port = api_port;
  api_opts.credentials = *credentials;
  api_opts.name = "api";
  api_opts.threads = o.io_threads;
  api_opts.max_connections = fds->api;
  auto& rejected = registry.counter_family("horizon_http_rejected_requests_total",
                                           "Writer API requests refused before reaching an endpoint (malformed or "
                                           "ambiguous HTTP, size limits), by error code",
                                           {"code"});
  api_opts.on_rejected = [&rejected](const Error& e) { rejected.with({e.wire_code()}).inc(); };
  auto api = net::HttpServer::start(api_opts, make_api_handler(**engine, identity->token, api_metrics, o.commit_on == "io"));
  if (!api) return start_failed(api.error().message);

  net::HttpServerOptions metrics_opts;
  metrics_opts.address = metrics_host;
  metrics_opts.port = metrics_port;
  metrics_opts.tls = false;
  metrics_opts.threads = 1;
  metrics_opts.name = "metrics";
  metrics_opts.max_connections = fds->metrics;
  auto metrics_server = net::HttpServer::start(metrics_opts, [&registry](net::HttpRequest req, net::Responder respond) {
    net::HttpResponse r;
    if (req.path() != "/metrics" || req.method != "GET") {
      r.status = 404;
      r.body = R"({"error":"endpoint_not_found","message":"the metrics port serves GET /metrics"})";
      return respond(std::move(r));
    }
    r.content_type = metrics::Registry::kContentType;
    r.body = registry.render();
    respond(std::move(r));
  });
  if (!metrics_server) return start_failed(metrics_server.error().message);

  // Discovery names the ports actually bound (which may have been 0).
  if (auto r = publish_discovery(**store, *identity, advertised(o.advertise, (*api)->port()),
                                 pubsub_server ? pubsub_address : std::string());
      !r) {
    return start_failed("cannot publish discovery to the store: " + r.error().message);
  }
  // Subscription activity (SPEC §7): every interval, durable like any append.
  std::mutex activity_mu;
  std::condition_variable activity_cv;
  bool activity_stop = false;
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(o.activity_interval_seconds));
  // Certificates: renewed when due (bootstrap.h), at start and then at
  // every activity interval while the Writer runs; their ends are metrics;
  // a CA near its end is a warning at start and then daily.
  auto& cert_expiry = registry.gauge_family("horizon_tls_certificate_expiry_timestamp_seconds",
                                            "End of validity (Unix time) of the TLS certificates: the server "
                                            "certificate (renewed 90 days ahead) and the internal CA (never renewed)",
                                            {"certificate"});
  // The gauges change only when a certificate does: the CA never, the
  // server certificate at a renewal.
  auto set_expiry = [&cert_expiry](std::string_view which, std::string_view pem) {
    if (auto v = net::certificate_validity(pem)) cert_expiry.with({which}).set(v->not_after);
  };
  set_expiry("ca", identity->ca_pem);
  set_expiry("server", (*credentials)->cert_pem());
  std::time_t next_ca_warning = 0;
  LogThrottle renewal_failures(std::chrono::hours(1));
  auto check_certificates = [&] {
    const std::time_t now = std::time(nullptr);
    auto renewal = renew_server_cert_if_due(o.data_dir, o.advertise, identity->ca_pem, (*credentials)->cert_pem(), now);
    if (!renewal) {
      if (const auto n = renewal_failures.admit(); n > 0) {
        spdlog::error("cannot renew the server certificate ({} failed attempts since the last message): {}", n,
                      renewal.error().message);
      }
    } else if (*renewal) {
      if (auto r = (*credentials)->replace((*renewal)->cert_pem, (*renewal)->key_pem); !r) {
        spdlog::error("cannot use the renewed server certificate: {}", r.error().message);
      } else {
        spdlog::info("renewed the server certificate ({}): {}; new connections present it", (*renewal)->reason,
                     certificate_validity_text((*renewal)->cert_pem));
        set_expiry("server", (*renewal)->cert_pem);
      }
    }
    if (now >= next_ca_warning) {
      if (auto w = ca_expiry_warning(identity->ca_pem, now)) {
        spdlog::warn("{}", *w);
        next_ca_warning = now + 24 * 3600;
      }
    }
  };
  check_certificates();
  std::thread activity([&] {
    set_thread_name("eh-activity");
    std::unique_lock guard(activity_mu);
    while (!activity_cv.wait_for(guard, interval, [&] { return activity_stop; })) {
      guard.unlock();
      check_certificates();
      (*engine)->activity_round([](Result<void> r) {
        if (!r) spdlog::warn("subscription activity round failed: {}", r.error().message);
      });
      guard.lock();
    }
  });

  // RELIABILITY A6: one scrub of the chunk files this Writer holds, in the
  // background after each start, so that damage at rest is found (and the
  // chunk quarantined, logged, counted) before a reader or the shipper
  // meets it. Paced at kScrubBytesPerSecond on average, so that a large
  // backlog of unshipped chunks is not a read storm at every start.
  std::mutex scrub_mu;
  std::condition_variable scrub_cv;
  bool scrub_stop = false;
  std::thread scrub([&] {
    set_thread_name("eh-scrub");
    const auto started = std::chrono::steady_clock::now();
    const auto r = (*engine)->scrub([&](const writer::Engine::ScrubReport& so_far) {
      const auto due = started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(so_far.bytes) /
                                                                   kScrubBytesPerSecond));
      std::unique_lock guard(scrub_mu);
      return !scrub_cv.wait_until(guard, due, [&] { return scrub_stop; });
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (r.stopped) return;
    if (r.damaged == 0 && r.errors == 0) {
      spdlog::info("scrub: {} held chunks ({:.1f} MB) match their checksums ({:.2f} s){}", r.chunks,
                   static_cast<double>(r.bytes) / 1e6, s,
                   r.unchecked > 0 ? fmt::format("; {} have no checksum (begun before a version-1 snapshot)",
                                                 r.unchecked)
                                   : std::string());
    } else {
      spdlog::error("scrub: {} of {} held chunks damaged (quarantined, see above), {} unreadable{} ({:.2f} s)",
                    r.damaged, r.chunks, r.errors,
                    r.first_error ? fmt::format(", first: {}", r.first_error->message) : std::string(), s);
    }
  });

  spdlog::info("writer {} ready: api https://{} (listening {}:{}), pubsub {}, metrics http://{}:{}/metrics, data {}, "
               "store {}",
               identity->writer_id, advertised(o.advertise, (*api)->port()), api_host, (*api)->port(),
               pubsub_address, metrics_host, (*metrics_server)->port(), o.data_dir,
               (*store)->describe());
  // Every listener accepts connections now: a Type=notify unit's dependents may start.
  if (auto n = notify_service_manager(
          fmt::format("READY=1\nSTATUS=ready: api https://{}", advertised(o.advertise, (*api)->port())));
      !n) {
    spdlog::warn("cannot tell the service manager that the Writer is ready: {}", n.error().message);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  (void)notify_service_manager("STOPPING=1");
  if (storage_failed.load()) {
    // Nothing is left to save (everything acknowledged is in the WAL) and
    // nothing may wait on the store or the disk: answer what is in flight,
    // close the connections, exit.
    spdlog::error("stopping after the storage failure (fail-stop, exit status {}); restart the Writer: it "
                  "recovers from the WAL",
                  kExitStorageFailed);
    (*api)->stop(std::chrono::milliseconds(200));
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(kExitStorageFailed);
  }
  spdlog::info("received {}, shutting down: no new connections, finishing in-flight requests",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*api)->stop(std::chrono::milliseconds(5000));
  (*metrics_server)->stop(std::chrono::milliseconds(1000));
  {
    std::lock_guard guard(activity_mu);
    activity_stop = true;
  }
  activity_cv.notify_all();
  activity.join();
  {
    std::lock_guard guard(scrub_mu);
    scrub_stop = true;
  }
  scrub_cv.notify_all();
  scrub.join();
  ship_now.store(nullptr, std::memory_order_release);
  shipper.stop();
  notifier.store(nullptr, std::memory_order_release);
  if (pubsub_server) pubsub_server->stop();
  if (auto r = (*engine)->close(); !r) {
    if (r.error().code == errc::disk_full) {
      // Nothing is lost and nothing failed: the last checkpoint found no
      // space, the WAL holds everything and the next start replays it. A
      // stop while the disk is full is still a clean stop (exit 0), so a
      // supervisor does not count it as a failure.
      spdlog::warn("shutdown checkpoint skipped: {} (the WAL has everything; the next start replays it)",
                   r.error().message);
    } else {
      spdlog::error("shutdown checkpoint failed: {} (the WAL still has everything; the next start recovers it)",
                    r.error().message);
      return 1;
    }
  }
  spdlog::info("clean shutdown complete");
  return 0;
}

}  // namespace horizon::server
