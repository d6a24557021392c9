// pubsub_bench: NOTIFY throughput to one consumer and publish->NOTIFY
// latency through the real pub/sub server over TLS on this machine (issue:
// pub/sub, "Performance": >= 1,000,000 NOTIFY/s delivered to one consumer,
// p99 <= 2 ms at 1,000 publishes/s).
//
//   pubsub_bench [--seconds S] [--latency-seconds L] [--rate R] [--threads T]
//
// Methodology (the original's): producer -> server -> consumer. The
// consumer is a pubsub::Client (TLS, its own I/O thread) subscribed to N
// topics; the producer publishes as fast as it can for S seconds, either
// in-process (Server::publish) or through a second pubsub::Client sending
// PUB over TLS; topics are used round-robin. We count what the consumer
// receives. Latest-value semantics may supersede messages for a consumer
// that falls behind, so published, delivered and superseded are reported
// separately (delivered + superseded == published once drained); the
// "keeps up" rows pace the producer so that every message is delivered.
// The rate is delivered / (first publish .. last NOTIFY received).
//
// Baseline (same run): Server::publish() calls/s with no subscriber.
// Latency: R publishes/s for L seconds on one topic, each message carrying
// its steady_clock send time; the consumer records receive - send.

#include "net/ca.h"
#include "pubsub/client.h"
#include "pubsub/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using horizon::pubsub::Client;
using horizon::pubsub::ClientCallbacks;
using horizon::pubsub::ClientOptions;
using horizon::pubsub::Server;
using horizon::pubsub::ServerOptions;

constexpr const char* kToken = "bench-token-0123456789abcdef";

struct Config {
  double seconds = 2.0;
  double latency_seconds = 5.0;
  int rate = 1000;
  int threads = 1;
};

struct Pki {
  horizon::net::CertifiedKey ca;
  horizon::net::CertifiedKey server;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pubsub_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<Server> start_server(const Pki& pki, int threads) {
  ServerOptions o;
  o.address = "127.0.0.1";
  o.cert_pem = pki.server.cert_pem;
  o.key_pem = pki.server.key_pem;
  o.token = kToken;
  o.threads = threads;
  auto s = Server::start(o, nullptr);
  if (!s) die(s.error().to_string());
  return std::move(*s);
}

ClientOptions client_options(const Pki& pki, std::uint16_t port) {
  ClientOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.ca_pem = pki.ca.cert_pem;
  o.token = kToken;
  return o;
}

// Waits for `pred` (bounded); false on timeout.
template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

// Counts NOTIFY lines and remembers when the last one arrived.
struct Consumer {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::int64_t> last_ns{0};
  std::unique_ptr<Client> client;

  void start(const Pki& pki, std::uint16_t port, const std::vector<std::string>& topics) {
    ClientCallbacks cb;
    cb.on_notify = [this](std::string, std::string) {
      received.fetch_add(1, std::memory_order_relaxed);
      last_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    };
    auto c = Client::start(client_options(pki, port), cb);
    if (!c) die(c.error().to_string());
    client = std::move(*c);
    for (const auto& t : topics) {
      if (!client->subscribe(t)) die("subscribe");
    }
    if (!wait_for([&] { return client->stats().oks >= topics.size(); })) die("consumer did not subscribe");
  }
};

struct Row {
  std::string name;
  std::uint64_t published = 0;   // publish() calls by the producer
  std::uint64_t sent = 0;        // PUB lines written by the producer client (PUB rows)
  std::uint64_t at_server = 0;   // published as seen by the server
  std::uint64_t delivered = 0;   // NOTIFY received by the consumer
  std::uint64_t superseded = 0;  // server-side + producer-client-side
  std::uint64_t dropped = 0;     // producer client: over its pending-topic cap
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(delivered) / seconds : 0; }
};

std::vector<std::string> make_topics(std::size_t n) {
  std::vector<std::string> t;
  t.reserve(n);
  for (std::size_t i = 0; i < n; ++i) t.push_back("sub:/_sub/bench-" + std::to_string(i));
  return t;
}

// pace_per_s == 0: as fast as possible.
Row run_throughput(const Pki& pki, const Config& cfg, const std::string& name, std::size_t n_topics, bool via_pub,
                   double pace_per_s) {
  auto server = start_server(pki, cfg.threads);
  const auto topics = make_topics(n_topics);
  Consumer consumer;
  consumer.start(pki, server->port(), topics);

  std::unique_ptr<Client> producer;
  if (via_pub) {
    auto c = Client::start(client_options(pki, server->port()), {});
    if (!c) die(c.error().to_string());
    producer = std::move(*c);
    if (!wait_for([&] { return producer->connected(); })) die("producer did not connect");
  }

  const std::string payload = "/_sub/bench:12:1048576:127.0.0.1";  // a cursor-sized message
  Row row;
  row.name = name;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  std::uint64_t i = 0;
  for (;;) {
    if ((i & 255) == 0) {
      const auto now = Clock::now();
      if (now >= end) break;
      if (pace_per_s > 0) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(i) / pace_per_s));
        if (due > now) std::this_thread::sleep_until(due);
      }
    }
    const std::string& topic = topics[i % n_topics];
    if (via_pub) {
      if (!producer->publish(topic, payload)) die("publish");
    } else {
      server->publish(topic, payload);
    }
    ++i;
  }
  row.published = i;

  // Drain: the producer client's queue reaches the server, then every
  // message the server got is delivered or superseded.
  std::uint64_t client_superseded = 0;
  if (via_pub) {
    if (!wait_for([&] {
          const auto st = producer->stats();
          return st.published + st.superseded + st.dropped == row.published;
        })) {
      die("producer did not flush");
    }
    const auto st = producer->stats();
    row.sent = st.published;
    client_superseded = st.superseded;
    row.dropped = st.dropped;
    if (!wait_for([&] { return server->stats().published == row.sent; })) die("server did not get every PUB");
  }
  if (!wait_for([&] {
        const auto st = server->stats();
        return consumer.received.load() + st.superseded == st.published;
      })) {
    const auto st = server->stats();
    std::fprintf(stderr, "drain timeout: received %llu superseded %llu published %llu\n",
                 static_cast<unsigned long long>(consumer.received.load()),
                 static_cast<unsigned long long>(st.superseded), static_cast<unsigned long long>(st.published));
    die("consumer did not drain");
  }
  const auto st = server->stats();
  row.at_server = st.published;
  row.delivered = consumer.received.load();
  row.superseded = st.superseded + client_superseded;
  const auto last = Clock::time_point(Clock::duration(consumer.last_ns.load()));
  row.seconds = std::chrono::duration<double>(last - start).count();
  if (producer) producer->close();
  consumer.client->close();
  server->stop();
  return row;
}

// publish() calls/s to topics nobody subscribed to; with `others`, while a
// client is subscribed to that many other topics (the hash lookup path).
double baseline_publish_no_subscriber(const Pki& pki, const Config& cfg, std::size_t others) {
  auto server = start_server(pki, cfg.threads);
  Consumer consumer;
  if (others > 0) {
    std::vector<std::string> subscribed;
    for (std::size_t i = 0; i < others; ++i) subscribed.push_back("other-" + std::to_string(i));
    consumer.start(pki, server->port(), subscribed);
  }
  const auto topics = make_topics(1000);
  const std::string payload = "/_sub/bench:12:1048576:127.0.0.1";
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  std::uint64_t i = 0;
  while ((i & 1023) != 0 || Clock::now() < end) {
    server->publish(topics[i % topics.size()], payload);
    ++i;
  }
  const double rate = static_cast<double>(i) / std::chrono::duration<double>(Clock::now() - start).count();
  if (consumer.client) consumer.client->close();
  server->stop();
  return rate;
}

struct Latency {
  std::string name;
  std::size_t samples = 0;
  std::uint64_t superseded = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  // p99 with every superseded message counted as infinitely late (a
  // superseded message never arrives; its replacement is what is timed).
  double p99_all_ms = 0;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

Latency run_latency(const Pki& pki, const Config& cfg, const std::string& name, bool via_pub) {
  auto server = start_server(pki, cfg.threads);
  std::mutex mu;
  std::vector<double> lat_ms;
  ClientCallbacks cb;
  cb.on_notify = [&](std::string, std::string message) {
    const auto now = Clock::now().time_since_epoch().count();
    const auto sent = std::stoll(message);
    std::lock_guard lock(mu);
    lat_ms.push_back(static_cast<double>(now - sent) / 1e6);
  };
  auto consumer = Client::start(client_options(pki, server->port()), cb);
  if (!consumer) die(consumer.error().to_string());
  if (!(*consumer)->subscribe("lat")) die("subscribe");
  if (!wait_for([&] { return (*consumer)->stats().oks == 1; })) die("consumer did not subscribe");
  std::unique_ptr<Client> producer;
  if (via_pub) {
    auto c = Client::start(client_options(pki, server->port()), {});
    if (!c) die(c.error().to_string());
    producer = std::move(*c);
    if (!wait_for([&] { return producer->connected(); })) die("producer did not connect");
  }
  const auto total = static_cast<std::uint64_t>(cfg.latency_seconds * cfg.rate);
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(static_cast<double>(i) / cfg.rate)));
    const std::string msg = std::to_string(Clock::now().time_since_epoch().count());
    if (via_pub) {
      if (!producer->publish("lat", msg)) die("publish");
    } else {
      server->publish("lat", msg);
    }
  }
  wait_for(
      [&] {
        const auto st = server->stats();
        std::lock_guard lock(mu);
        return st.published == total - (producer ? producer->stats().superseded : 0) &&
               lat_ms.size() + st.superseded == st.published;
      },
      10s);
  Latency out;
  out.name = name;
  out.superseded = server->stats().superseded + (producer ? producer->stats().superseded : 0);
  std::lock_guard lock(mu);
  out.samples = lat_ms.size();
  out.p50_ms = percentile(lat_ms, 0.50);
  out.p99_ms = percentile(lat_ms, 0.99);
  out.max_ms = lat_ms.empty() ? 0 : lat_ms.back();
  std::vector<double> all = lat_ms;
  all.insert(all.end(), out.superseded, std::numeric_limits<double>::infinity());
  out.p99_all_ms = percentile(all, 0.99);
  if (producer) producer->close();
  (*consumer)->close();
  server->stop();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> double {
      if (i + 1 >= argc) die("missing value after " + a);
      return std::atof(argv[++i]);
    };
    if (a == "--seconds")
      cfg.seconds = next();
    else if (a == "--latency-seconds")
      cfg.latency_seconds = next();
    else if (a == "--rate")
      cfg.rate = static_cast<int>(next());
    else if (a == "--threads")
      cfg.threads = static_cast<int>(next());
    else
      die("usage: pubsub_bench [--seconds S] [--latency-seconds L] [--rate R] [--threads T]");
  }
  spdlog::set_level(spdlog::level::warn);
  Pki pki;
  auto ca = horizon::net::create_ca("pubsub bench CA");
  if (!ca) die(ca.error().to_string());
  pki.ca = std::move(*ca);
  auto cert = horizon::net::issue_server_cert(pki.ca, "pubsub bench", {"127.0.0.1"});
  if (!cert) die(cert.error().to_string());
  pki.server = std::move(*cert);

  std::printf("pubsub_bench: producer -> server -> consumer over TLS on 127.0.0.1\n");
  std::printf("  cores %u, server I/O threads %d, %.1f s per throughput row, latency %d/s for %.1f s\n",
              std::thread::hardware_concurrency(), cfg.threads, cfg.seconds, cfg.rate, cfg.latency_seconds);
  std::printf("  message: a 32-byte cursor; consumer: pubsub::Client (own I/O thread)\n\n");

  const double base = baseline_publish_no_subscriber(pki, cfg, 0);
  const double base_lookup = baseline_publish_no_subscriber(pki, cfg, 1000);
  std::printf(
      "baseline: Server::publish() to a topic without subscriber: %.1f M calls/s with no subscription at "
      "all, %.1f M calls/s while 1000 other topics are subscribed\n\n",
      base / 1e6, base_lookup / 1e6);

  std::vector<Row> rows;
  rows.push_back(run_throughput(pki, cfg, "publish(), 1 topic", 1, false, 0));
  rows.push_back(run_throughput(pki, cfg, "publish(), 1000 topics", 1000, false, 0));
  rows.push_back(run_throughput(pki, cfg, "publish(), 10000 topics", 10000, false, 0));
  rows.push_back(run_throughput(pki, cfg, "publish(), 10000 topics, paced 500k/s", 10000, false, 500'000));
  rows.push_back(run_throughput(pki, cfg, "publish(), 10000 topics, paced 1M/s", 10000, false, 1'000'000));
  rows.push_back(run_throughput(pki, cfg, "publish(), 10000 topics, paced 2M/s", 10000, false, 2'000'000));
  rows.push_back(run_throughput(pki, cfg, "PUB client, 1 topic", 1, true, 0));
  rows.push_back(run_throughput(pki, cfg, "PUB client, 1000 topics", 1000, true, 0));
  rows.push_back(run_throughput(pki, cfg, "PUB client, 10000 topics", 10000, true, 0));

  std::printf("%-38s %10s %10s %10s %10s %10s %10s %6s %12s\n", "throughput (one consumer)", "published", "PUB sent",
              "at server", "delivered", "superseded", "dropped", "secs", "delivered/s");
  for (const Row& r : rows) {
    const bool all = r.delivered == r.published;
    std::printf("%-38s %10llu %10s %10llu %10llu %10llu %10llu %6.2f %12.0f%s\n", r.name.c_str(),
                static_cast<unsigned long long>(r.published), r.sent ? std::to_string(r.sent).c_str() : "-",
                static_cast<unsigned long long>(r.at_server), static_cast<unsigned long long>(r.delivered),
                static_cast<unsigned long long>(r.superseded), static_cast<unsigned long long>(r.dropped), r.seconds,
                r.rate(), all ? "  every message delivered" : "");
  }
  std::printf("\n");

  std::vector<Latency> lats;
  lats.push_back(run_latency(pki, cfg, "publish() -> NOTIFY", false));
  lats.push_back(run_latency(pki, cfg, "PUB (TLS) -> NOTIFY", true));
  std::printf("%-38s %8s %10s %10s %10s %10s %16s\n", "latency (one topic)", "samples", "p50 ms", "p99 ms", "max ms",
              "superseded", "p99 incl. sup.");
  for (const Latency& l : lats) {
    std::printf("%-38s %8zu %10.3f %10.3f %10.3f %10llu %16.3f\n", l.name.c_str(), l.samples, l.p50_ms, l.p99_ms,
                l.max_ms, static_cast<unsigned long long>(l.superseded), l.p99_all_ms);
  }
  double best = 0;
  for (const Row& r : rows) best = std::max(best, r.rate());
  std::printf(
      "\ntargets: >= 1,000,000 NOTIFY/s to one consumer: best %.0f/s (%s); p99 (incl. superseded) <= 2 ms at %d/s: "
      "%.3f ms publish(), %.3f ms PUB (%s)\n",
      best, best >= 1e6 ? "met" : "NOT met", cfg.rate, lats[0].p99_all_ms, lats[1].p99_all_ms,
      std::max(lats[0].p99_all_ms, lats[1].p99_all_ms) <= 2.0 ? "met" : "NOT met");
  return 0;
}
