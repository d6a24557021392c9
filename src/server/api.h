#pragma once
// The Writer API (SPEC §5) as a pure request -> response handler over the
// storage engine: routing, bearer-token check (constant time), strict JSON
// bodies, the error table of core/errc.h, and per-endpoint metrics.
//
// Thread-safety: the handler may be called concurrently; it answers from the
// engine's commit thread or the calling thread.

#include "metrics/metrics.h"
#include "net/http_types.h"
#include "writer/engine.h"

#include <string>

namespace horizon::server {

struct ApiMetrics {
  explicit ApiMetrics(metrics::Registry& registry);
  metrics::CounterFamily& requests;   // by endpoint and status code
  metrics::Counter& create_stream_ops;
  metrics::Counter& append_ops;
  metrics::Counter& subscribe_ops;
  metrics::Counter& unsubscribe_ops;
  metrics::Counter& liveread_ops;
  metrics::Counter& appended_lines;   // application lines, meta lines excluded
  metrics::Counter& unauthorized;
  metrics::Histogram& append_latency;
};

// `token` is compared in constant time; it is never logged.
// With `lead_commits`, an append is committed on the API thread that
// received it when the WAL is free (Engine::submit_and_lead).
net::Handler make_api_handler(writer::Engine& engine, std::string token, ApiMetrics& metrics,
                              bool lead_commits = true);

// Registers the engine's own gauges/counters (WAL syncs, bytes, open
// streams, ship backlog, failed state) as scrape-time callbacks.
void register_engine_metrics(metrics::Registry& registry, const writer::Engine& engine);

}  // namespace horizon::server
