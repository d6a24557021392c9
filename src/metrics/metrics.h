#pragma once
// Process metrics (counters, gauges, histograms, with or without labels) and
// their rendering in the Prometheus text exposition format 0.0.4, served by
// the Writer's `GET /metrics`.
//
// Thread-safety: every method of every class here may be called
// concurrently; updates (`inc`, `set`, `add`, `observe`) are lock-free,
// `Family::with` and registration take a mutex (keep the returned reference
// instead of looking it up on a hot path).
//
// Usage: one `Registry` per process, owned by whoever serves `/metrics`;
// components register their metrics once at start-up and keep references,
// which stay valid for the life of the registry. Metric and label names are
// constants of our code, so a bad name or a conflicting re-registration is a
// programming error: the process aborts with a message on stderr. Label
// values are runtime data and are never rejected (invalid UTF-8 is rendered
// as U+FFFD).
//
// Lock order: Registry mutex, then a Family mutex. `Family::with` takes only
// its family's mutex; counters, gauges and histograms take none.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace horizon::metrics {

// Monotonic count of events. Rendered as an integer.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down. Rendered as an integer.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t delta) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Distribution of observed values (seconds, for latencies) over fixed
// buckets. A value v is counted in the first bucket with v <= upper bound,
// or in the implicit +Inf bucket; rendering makes the buckets cumulative.
//
// The sum is a double kept as its bit pattern in an atomic<uint64_t> and
// updated with a compare-exchange loop: exact double arithmetic for any
// value (negative, tiny, huge), at the price of a retry when two threads
// observe at the same instant. NaN is counted in the +Inf bucket and makes
// the sum NaN (as the Go client does).
//
// A scrape reads the buckets and the sum one by one without stopping
// observers, so it may see an observation in the buckets but not yet in the
// sum; `_count` always equals the +Inf bucket.
class Histogram {
 public:
  // `upper_bounds`: finite, strictly increasing; a trailing +Inf is dropped.
  // Anything else aborts.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe(double value) noexcept;
  // Observes the duration in seconds.
  void observe(std::chrono::nanoseconds duration) noexcept;

  [[nodiscard]] const std::vector<double>& upper_bounds() const noexcept { return upper_bounds_; }
  // One entry per upper bound plus the last for +Inf; entry i counts the
  // observations <= upper_bounds()[i] (cumulative, as rendered).
  [[nodiscard]] std::vector<std::uint64_t> cumulative_counts() const;
  [[nodiscard]] std::uint64_t count() const noexcept;
  [[nodiscard]] double sum() const noexcept;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // upper_bounds_.size() + 1, not cumulative
  std::atomic<std::uint64_t> sum_bits_;                   // std::bit_cast<std::uint64_t>(double sum)
};

class Registry;

// Metrics of one name that differ by label values ("stream", "code", ...).
// Children are created on the first `with` for their values and live as
// long as the registry.
template <class Metric>
class Family {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The child for these label values, in the order of `label_names()`.
  // Values may be any string (escaped when rendered). The number of values
  // must equal the number of label names (aborts otherwise). Takes the
  // family's mutex: callers keep the reference, which stays valid.
  Metric& with(std::initializer_list<std::string_view> label_values);
  Metric& with(std::span<const std::string_view> label_values);
  Metric& with(std::span<const std::string> label_values);

  [[nodiscard]] const std::vector<std::string>& label_names() const noexcept { return label_names_; }

 private:
  friend class Registry;

  // Orders label value lists lexicographically; compares std::string and
  // std::string_view lists without copying.
  struct ValuesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept;
  };
  struct Child {
    std::string rendered_labels;  // `a="x",b="y"`, escaped; empty without labels
    std::unique_ptr<Metric> metric;
  };

  Family(std::vector<std::string> label_names, std::vector<double> upper_bounds);
  template <class Values>
  Metric& with_values(const Values& label_values);
  void render(std::string& out, std::string_view name) const;

  const std::vector<std::string> label_names_;
  const std::vector<double> upper_bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, Child, ValuesLess> children_;  // guarded by mu_
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// The set of metrics of a process, rendered for a scrape.
//
// Names: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, counter names end in
// "_total"; label names match [a-zA-Z_][a-zA-Z0-9_]*, do not start with
// "__", are distinct, and a histogram has no label "le". A name may be
// registered again with the same type, label names (and buckets, for a
// histogram): that returns the existing object, and the first help text
// stays. A different type, labels or buckets aborts, as does a name that
// collides with the `_bucket`/`_sum`/`_count` series of a histogram.
class Registry {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(std::string_view name, std::string_view help);
  Gauge& gauge(std::string_view name, std::string_view help);
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> upper_bounds);

  CounterFamily& counter_family(std::string_view name, std::string_view help, std::vector<std::string> label_names);
  GaugeFamily& gauge_family(std::string_view name, std::string_view help, std::vector<std::string> label_names);
  HistogramFamily& histogram_family(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                                    std::vector<double> upper_bounds);

  // A gauge whose value is read at scrape time (open streams, ship backlog).
  // `read` runs inside `render` with the registry mutex held: it must be
  // quick and must not call this registry. Registering the same name again
  // replaces the function; once that returns, the old one is no longer
  // called. A name already used by another kind of metric aborts.
  void gauge_callback(std::string_view name, std::string_view help, std::function<std::int64_t()> read);

  // The text exposition format 0.0.4: for each metric name in byte order,
  // "# HELP" and "# TYPE" lines then the samples, children ordered by label
  // values. Families with no child yet are left out.
  [[nodiscard]] std::string render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram, kGaugeCallback };
  struct Entry {
    Kind kind;
    std::string help;
    std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>, std::unique_ptr<HistogramFamily>,
                 std::function<std::int64_t()>>
        metric;
  };

  template <class Metric>
  Family<Metric>& family(Kind kind, std::string_view name, std::string_view help, std::vector<std::string> label_names,
                         std::vector<double> upper_bounds);
  void check_collisions(Kind kind, std::string_view name) const;  // mu_ held

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // guarded by mu_
};

// Upper bounds (seconds) for append latencies: 1-2.5-5 steps from 50 us to
// 10 s (17 buckets).
std::vector<double> latency_buckets();

}  // namespace horizon::metrics
