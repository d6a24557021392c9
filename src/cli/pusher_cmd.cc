#include "cli/pusher_cmd.h"

#include "codec/chunk_codec.h"
#include "core/wire.h"
#include "net/http_server.h"
#include "pubsub/client.h"
#include "pusher/pusher.h"
#include "reader/reader.h"
#include "server/writer_process.h"
#include "store/object_store.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <curl/curl.h>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

namespace horizon::cli {

namespace {

// What is wrong with the application's URL as libcurl reads it, if anything
// (before, only the scheme was checked, and "https://[::1/x" was retried
// forever).
std::optional<std::string> endpoint_problem(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return std::string("libcurl failed to initialize");
  std::optional<std::string> problem;
  if (const CURLUcode rc = curl_url_set(u, CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK) {
    problem = curl_url_strerror(rc);
  } else {
    char* scheme = nullptr;
    char* host = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (scheme == nullptr || (std::string_view(scheme) != "http" && std::string_view(scheme) != "https")) {
      problem = fmt::format("the scheme is {}", scheme == nullptr ? "missing" : scheme);
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == nullptr || *host == '\0') {
      problem = "no host";
    }
    curl_free(scheme);
    curl_free(host);
  }
  curl_url_cleanup(u);
  return problem;
}

// A small pool that forwards proxy requests to the Writer (blocking HTTPS
// calls must not run on the HTTP server's I/O threads).
class Forwarder {
 public:
  Forwarder(ClientConfig config, int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, config] {
        Client client(config);
        std::unique_lock lock(mu_);
        for (;;) {
          cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
          if (stop_ && jobs_.empty()) return;
          auto job = std::move(jobs_.front());
          jobs_.pop_front();
          lock.unlock();
          job(client);
          lock.lock();
        }
      });
    }
  }
  ~Forwarder() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::function<void(Client&)> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<std::function<void(Client&)>> jobs_;
  std::vector<std::thread> threads_;
};

}  // namespace

std::optional<pubsub::Target> pubsub_target(const WriterAddress& w) {
  pubsub::Target t;
  if (w.pubsub.empty() || !server::split_host_port(w.pubsub, t.host, t.port)) return std::nullopt;
  t.ca_pem = w.ca_pem;
  return t;
}

int run_pusher(const ClientFlags& flags, const PusherCommand& cmd) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("pusher"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l [%n] %v", spdlog::pattern_time_type::utc);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // The stop signal is taken from the start: until the Pusher runs (the
  // configuration comes from the store's discovery record, which a stalled
  // s3:// server could hold for minutes) there is nothing to finish, so a
  // stop exits at once; while it runs a stop (signal or stdin EOF) calls
  // `stop`; once run_pusher is returning, nothing. The detached stdin thread
  // may outlive run_pusher: it reaches the Pusher only through this.
  struct StopHook {
    enum class Phase { starting, running, finished };
    std::mutex mu;
    Phase phase = Phase::starting;  // guarded by mu
    std::function<void()> stop;     // guarded by mu; set while running
    void finish() {
      std::lock_guard lock(mu);
      phase = Phase::finished;
      stop = nullptr;
    }
  };
  auto hook = std::make_shared<StopHook>();
  std::thread signal_thread([hook, &signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::lock_guard lock(hook->mu);
    if (hook->phase == StopHook::Phase::starting) {
      spdlog::info("{} while starting: exiting", sig == SIGINT ? "SIGINT" : "SIGTERM");
      spdlog::default_logger()->flush();
      std::_Exit(0);
    }
    if (hook->phase == StopHook::Phase::running) hook->stop();
  });
  // Runs at every return, after the Pusher is gone (it is declared first):
  // nothing is left to stop; it releases the signal thread (the signal is
  // blocked, sigwait takes it) and joins it.
  struct Release {
    std::thread& t;
    StopHook& hook;
    ~Release() {
      hook.finish();
      ::kill(::getpid(), SIGTERM);
      t.join();
    }
  } release{signal_thread, *hook};
  if (auto problem = endpoint_problem(cmd.endpoint)) {
    return server::start_refused(
        fmt::format("--endpoint \"{}\" must be an http:// or https:// URL: {}", cmd.endpoint, *problem));
  }
  auto cfg = resolve_client_config(flags);
  // Only a configuration error is refused. A damaged discovery record
  // (corruption) is mended by the Writer's next start (it rewrites its
  // record), so it is worth a restart, unlike the Writer's own refusals.
  if (!cfg) {
    return cfg.error().code == errc::invalid_argument ? server::start_refused(cfg.error().message)
                                                      : server::start_failed(cfg.error().message);
  }
  // One store for chunks and the discovery record: stopping cancels both.
  std::shared_ptr<store::ObjectStore> store = cfg->locator->store();
  std::shared_ptr<codec::MasterKey> key;
  if (!cfg->key.empty()) {
    auto k = codec::MasterKey::parse_hex(cfg->key);
    if (!k) return server::start_refused("HORIZON_KEY: " + k.error().message);
    key = std::make_shared<codec::MasterKey>(std::move(*k));
  }
  const ClientConfig config = *cfg;

  pusher::PusherOptions po;
  po.endpoint = cmd.endpoint;
  po.make_reader = [config, store, key]() {
    auto client = std::make_shared<Client>(config);
    reader::ReaderOptions o;
    o.store = store.get();
    o.key = key.get();
    o.cache_dir = reader_cache_dir();
    o.live = [client](const Cursor& from, std::size_t n) { return live_read(*client, from, n); };
    return std::make_unique<reader::Reader>(std::move(o));
  };

  // Pub/sub: instant wake-ups (hints only; the periodic path is the fallback).
  // A lost connection also has the discovery record read again (refresher,
  // only with pub/sub on): a Writer whose pub/sub address alone changed is
  // found without a failed request.
  std::unique_ptr<LocatorRefresher> refresher;
  std::unique_ptr<pubsub::Client> notifications;
  pusher::Pusher* pusher_ptr = nullptr;
  if (auto first = pubsub_target(WriterAddress{config.api, config.pubsub, config.ca_pem})) {
    refresher = std::make_unique<LocatorRefresher>(config.locator);
    pubsub::ClientOptions co;
    co.host = std::move(first->host);
    co.port = first->port;
    co.ca_pem = std::move(first->ca_pem);
    co.token = config.token;
    // The Writer's pub/sub server wherever the discovery record names it now
    // (the locator reads it again when a request finds the Writer gone, or
    // the refresher when this client loses its connection).
    co.retarget = [locator = config.locator] { return pubsub_target(locator->current()); };
    pubsub::ClientCallbacks cb;
    cb.on_notify = [&pusher_ptr](std::string, std::string message) {
      auto c = Cursor::parse(message);
      if (c && pusher_ptr != nullptr) pusher_ptr->wake(c->stream());
    };
    cb.on_state = [r = refresher.get()](bool connected) {
      if (!connected) r->poke();
    };
    auto pc = pubsub::Client::start(co, cb);
    if (pc) notifications = std::move(*pc);
    else spdlog::warn("pub/sub disabled: {}", pc.error().message);
  }
  po.on_subscription = [&notifications](const std::string& sub) {
    if (notifications) (void)notifications->subscribe("sub:" + sub);
  };
  pusher::Pusher pusher(po);
  pusher_ptr = &pusher;

  // The writer proxy: same paths and bodies as the Writer API, no TLS, no token.
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<net::HttpServer> proxy;
  if (!cmd.proxy.empty() && cmd.proxy != "off") {
    std::string phost;
    std::uint16_t pport = 0;
    if (!server::split_host_port(cmd.proxy, phost, pport))
      return server::start_refused(fmt::format("--proxy \"{}\" is not host:port", cmd.proxy));
    forwarder = std::make_unique<Forwarder>(config, 4);
    net::HttpServerOptions ho;
    ho.address = phost;
    ho.port = pport;
    ho.tls = false;
    ho.name = "writer-proxy";
    Forwarder* fw = forwarder.get();
    auto server = net::HttpServer::start(ho, [fw](net::HttpRequest req, net::Responder respond) {
      const std::string path(req.path());
      if (req.method != "POST" || path.rfind("/writer/", 0) != 0) {
        net::HttpResponse r;
        r.status = 404;
        r.body = R"({"error":"endpoint_not_found","message":"the writer proxy forwards POST /writer/..."})";
        return respond(std::move(r));
      }
      fw->submit([path, body = std::move(req.body), respond](Client& client) {
        auto res = client.post(path, body);
        net::HttpResponse r;
        if (!res) {
          // Also a request cut after it went out: its outcome is unknown,
          // as for any 5xx (an append may have been applied; use After).
          r.status = 503;
          r.body = Error::make(errc::not_ready, "writer proxy: " + res.error().message).to_json_body();
        } else {
          r.status = static_cast<int>(res->status);
          r.body = std::move(res->body);
          if (path == "/writer/liveread" && r.status == 200) r.content_type = "text/plain; charset=utf-8";
        }
        respond(std::move(r));
      });
    });
    if (!server) return server::start_failed(server.error().message);
    proxy = std::move(*server);
    spdlog::info("writer proxy on http://{}:{}", phost, proxy->port());
  }

  // Reads have no side effects: a store read in progress (an s3:// server
  // that stopped answering could hold it for minutes) is cancelled at once;
  // a push in progress to the application finishes.
  auto stop_all = [&pusher, store] {
    pusher.stop();
    store->cancel();
  };
  {
    std::lock_guard lock(hook->mu);
    hook->stop = stop_all;
    hook->phase = StopHook::Phase::running;
  }
  std::thread stdin_thread;
  if (cmd.stop_on_stdin_eof) {
    stdin_thread = std::thread([hook] {
      char buf[256];
      while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
      }
      std::lock_guard lock(hook->mu);
      if (hook->phase != StopHook::Phase::running) return;  // run_pusher is returning
      spdlog::info("stdin closed (the parent is gone): stopping");
      hook->stop();
    });
  }
  auto r = pusher.run();
  spdlog::info("stopping");
  if (proxy) proxy->stop(std::chrono::milliseconds(1000));
  forwarder.reset();
  if (notifications) notifications->close();
  hook->finish();  // before the Pusher goes away: a late signal or stdin EOF does nothing
  if (stdin_thread.joinable()) stdin_thread.detach();  // blocked in read(); the process exits now
  if (!r) return server::start_failed(r.error().message);
  return 0;
}

}  // namespace horizon::cli
