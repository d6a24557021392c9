#include "metrics/metrics.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <type_traits>
#include <utility>

namespace horizon::metrics {
namespace {

// Programming errors (bad names, conflicting registrations): say what and
// stop, whatever the build type.
[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "horizon::metrics: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view s) {
  if (s.empty() || !(is_name_start(s[0]) || s[0] == ':')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_name_start(c) || is_digit(c) || c == ':'; });
}

// [a-zA-Z_][a-zA-Z0-9_]*
bool valid_label_name(std::string_view s) {
  if (s.empty() || !is_name_start(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_name_start(c) || is_digit(c); });
}

// Length of the well-formed UTF-8 sequence at the start of `s`, 0 if it is
// not one (bad lead or continuation byte, overlong, surrogate, > U+10FFFF,
// truncated).
std::size_t utf8_sequence_length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return n;
}

// Escapes for the text format: backslash and newline always, the double
// quote in label values only. Invalid UTF-8 becomes U+FFFD.
void append_escaped(std::string& out, std::string_view s, bool label_value) {
  while (!s.empty()) {
    const char c = s[0];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      const std::size_t n = utf8_sequence_length(s);
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        s.remove_prefix(1);
        continue;
      }
      out.append(s.data(), n);
      s.remove_prefix(n);
      continue;
    }
    s.remove_prefix(1);
  }
}

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

// Shortest digits that read back as the same double (Go's ParseFloat
// included), in plain notation from 1e-4 up to 1e21 and in exponent
// notation outside (so le="0.0001" but le="5e-05", as Go clients print);
// the format's spellings for the special values.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    const double magnitude = std::fabs(v);
    const bool plain = magnitude == 0 || (magnitude >= 1e-4 && magnitude < 1e21);
    char buf[64];
    const auto res =
        std::to_chars(buf, buf + sizeof buf, v, plain ? std::chars_format::fixed : std::chars_format::scientific);
    out.append(buf, res.ptr);
  }
}

// One sample line: name{labels[,extra]} value
void append_series(std::string& out, std::string_view name, std::string_view suffix, std::string_view labels,
                   std::string_view extra_label) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra_label.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra_label.empty()) out += ',';
    out += extra_label;
    out += '}';
  }
  out += ' ';
}

void append_samples(std::string& out, std::string_view name, std::string_view labels, const Counter& c) {
  append_series(out, name, "", labels, "");
  append_int(out, c.value());
  out += '\n';
}

void append_samples(std::string& out, std::string_view name, std::string_view labels, const Gauge& g) {
  append_series(out, name, "", labels, "");
  append_int(out, g.value());
  out += '\n';
}

void append_samples(std::string& out, std::string_view name, std::string_view labels, const Histogram& h) {
  const std::vector<std::uint64_t> counts = h.cumulative_counts();
  const std::vector<double>& bounds = h.upper_bounds();
  std::string le;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    le.assign("le=\"");
    if (i < bounds.size()) {
      append_double(le, bounds[i]);
    } else {
      le += "+Inf";
    }
    le += '"';
    append_series(out, name, "_bucket", labels, le);
    append_int(out, counts[i]);
    out += '\n';
  }
  append_series(out, name, "_sum", labels, "");
  append_double(out, h.sum());
  out += '\n';
  append_series(out, name, "_count", labels, "");
  append_int(out, counts.back());
  out += '\n';
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::vector<double> checked_upper_bounds(std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) fail("histogram bucket upper bounds must be finite (a trailing +Inf is allowed)");
    if (i > 0 && !(bounds[i - 1] < bounds[i])) fail("histogram bucket upper bounds must be strictly increasing");
  }
  return bounds;
}

}  // namespace

// ---------------------------------------------------------------- Histogram

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(checked_upper_bounds(std::move(upper_bounds))),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds_.size() + 1)),
      sum_bits_(std::bit_cast<std::uint64_t>(0.0)) {}

void Histogram::observe(double value) noexcept {
  // First bound >= value, i.e. value <= bound; NaN compares false with
  // everything and goes to +Inf explicitly.
  const std::size_t i =
      std::isnan(value) ? upper_bounds_.size()
                        : static_cast<std::size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
                                                   upper_bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t old_bits = sum_bits_.load(std::memory_order_relaxed);
  while (!sum_bits_.compare_exchange_weak(
      old_bits, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old_bits) + value), std::memory_order_relaxed)) {
  }
}

void Histogram::observe(std::chrono::nanoseconds duration) noexcept {
  observe(std::chrono::duration<double>(duration).count());
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(upper_bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

double Histogram::sum() const noexcept { return std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed)); }

// ------------------------------------------------------------------- Family

template <class Metric>
template <class A, class B>
bool Family<Metric>::ValuesLess::operator()(const A& a, const B& b) const noexcept {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](std::string_view x, std::string_view y) { return x < y; });
}

template <class Metric>
Family<Metric>::Family(std::vector<std::string> label_names, std::vector<double> upper_bounds)
    : label_names_(std::move(label_names)), upper_bounds_(std::move(upper_bounds)) {}

template <class Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> label_values) {
  return with_values(std::span<const std::string_view>(label_values.begin(), label_values.size()));
}

template <class Metric>
Metric& Family<Metric>::with(std::span<const std::string_view> label_values) {
  return with_values(label_values);
}

template <class Metric>
Metric& Family<Metric>::with(std::span<const std::string> label_values) {
  return with_values(label_values);
}

template <class Metric>
template <class Values>
Metric& Family<Metric>::with_values(const Values& label_values) {
  if (label_values.size() != label_names_.size()) {
    fail("metric family with " + std::to_string(label_names_.size()) + " label name(s) given " +
         std::to_string(label_values.size()) + " label value(s)");
  }
  std::lock_guard lock(mu_);
  if (auto it = children_.find(label_values); it != children_.end()) return *it->second.metric;

  Child child;
  for (std::size_t i = 0; i < label_names_.size(); ++i) {
    if (i > 0) child.rendered_labels += ',';
    child.rendered_labels += label_names_[i];
    child.rendered_labels += "=\"";
    append_escaped(child.rendered_labels, label_values[i], true);
    child.rendered_labels += '"';
  }
  if constexpr (std::is_same_v<Metric, Histogram>) {
    child.metric = std::make_unique<Histogram>(upper_bounds_);
  } else {
    child.metric = std::make_unique<Metric>();
  }
  std::vector<std::string> key(label_values.begin(), label_values.end());
  return *children_.emplace(std::move(key), std::move(child)).first->second.metric;
}

template <class Metric>
void Family<Metric>::render(std::string& out, std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& [values, child] : children_) append_samples(out, name, child.rendered_labels, *child.metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ----------------------------------------------------------------- Registry

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::check_collisions(Kind kind, std::string_view name) const {
  static constexpr std::string_view kSuffixes[] = {"_bucket", "_sum", "_count"};
  // A new histogram must not shadow existing names...
  if (kind == Kind::kHistogram) {
    for (std::string_view suffix : kSuffixes) {
      if (entries_.contains(std::string(name) + std::string(suffix))) {
        fail("histogram " + quoted(name) + " collides with the metric " +
             quoted(std::string(name) + std::string(suffix)));
      }
    }
  }
  // ...and no name may be one of an existing histogram's series.
  for (std::string_view suffix : kSuffixes) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      auto it = entries_.find(name.substr(0, name.size() - suffix.size()));
      if (it != entries_.end() && it->second.kind == Kind::kHistogram) {
        fail("metric " + quoted(name) + " collides with a series of the histogram " + quoted(it->first));
      }
    }
  }
}

template <class Metric>
Family<Metric>& Registry::family(Kind kind, std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names, std::vector<double> upper_bounds) {
  constexpr bool kIsCounter = std::is_same_v<Metric, Counter>;
  constexpr bool kIsGauge = std::is_same_v<Metric, Gauge>;
  const char* type = kIsCounter ? "counter" : kIsGauge ? "gauge" : "histogram";

  if (!valid_metric_name(name)) fail("invalid metric name " + quoted(name));
  if (kIsCounter && !name.ends_with("_total")) fail("counter name " + quoted(name) + " must end in \"_total\"");
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!valid_label_name(label)) fail("invalid label name " + quoted(label) + " for metric " + quoted(name));
    if (label.starts_with("__")) fail("label name " + quoted(label) + " is reserved (\"__\" prefix)");
    if (!kIsCounter && !kIsGauge && label == "le") fail("histogram " + quoted(name) + " cannot have a label \"le\"");
    if (!seen.insert(label).second) fail("duplicate label name " + quoted(label) + " for metric " + quoted(name));
  }
  if constexpr (!kIsCounter && !kIsGauge) upper_bounds = checked_upper_bounds(std::move(upper_bounds));

  std::lock_guard lock(mu_);
  if (auto it = entries_.find(name); it != entries_.end()) {
    auto* existing = std::get_if<std::unique_ptr<Family<Metric>>>(&it->second.metric);
    if (existing == nullptr) fail("metric " + quoted(name) + " registered again as a " + type + " with another type");
    Family<Metric>& f = **existing;
    if (f.label_names_ != label_names) fail("metric " + quoted(name) + " registered again with other label names");
    if (f.upper_bounds_ != upper_bounds) fail("histogram " + quoted(name) + " registered again with other buckets");
    return f;
  }
  check_collisions(kind, name);
  auto f = std::unique_ptr<Family<Metric>>(new Family<Metric>(std::move(label_names), std::move(upper_bounds)));
  Family<Metric>& ref = *f;
  entries_.emplace(std::string(name), Entry{kind, std::string(help), std::move(f)});
  return ref;
}

Counter& Registry::counter(std::string_view name, std::string_view help) {
  return counter_family(name, help, {}).with({});
}

Gauge& Registry::gauge(std::string_view name, std::string_view help) { return gauge_family(name, help, {}).with({}); }

Histogram& Registry::histogram(std::string_view name, std::string_view help, std::vector<double> upper_bounds) {
  return histogram_family(name, help, {}, std::move(upper_bounds)).with({});
}

CounterFamily& Registry::counter_family(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return family<Counter>(Kind::kCounter, name, help, std::move(label_names), {});
}

GaugeFamily& Registry::gauge_family(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names) {
  return family<Gauge>(Kind::kGauge, name, help, std::move(label_names), {});
}

HistogramFamily& Registry::histogram_family(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names, std::vector<double> upper_bounds) {
  return family<Histogram>(Kind::kHistogram, name, help, std::move(label_names), std::move(upper_bounds));
}

void Registry::gauge_callback(std::string_view name, std::string_view help, std::function<std::int64_t()> read) {
  if (!valid_metric_name(name)) fail("invalid metric name " + quoted(name));
  if (!read) fail("gauge callback " + quoted(name) + " has no function");
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(name); it != entries_.end()) {
    if (it->second.kind != Kind::kGaugeCallback) {
      fail("metric " + quoted(name) + " registered again as a gauge callback with another type");
    }
    it->second.metric = std::move(read);
    return;
  }
  check_collisions(Kind::kGaugeCallback, name);
  entries_.emplace(std::string(name), Entry{Kind::kGaugeCallback, std::string(help), std::move(read)});
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, entry] : entries_) {
    std::visit(
        [&](const auto& metric) {
          using T = std::decay_t<decltype(metric)>;
          if constexpr (std::is_same_v<T, std::function<std::int64_t()>>) {
            const std::int64_t value = metric();
            append_header(out, name, entry.help, "gauge");
            append_series(out, name, "", "", "");
            append_int(out, value);
            out += '\n';
          } else {
            // Render the children first so that a family with none leaves
            // no header behind.
            const std::size_t start = out.size();
            metric->render(out, name);
            if (out.size() == start) return;
            std::string header;
            append_header(header, name, entry.help,
                          entry.kind == Kind::kCounter ? "counter"
                          : entry.kind == Kind::kGauge ? "gauge"
                                                       : "histogram");
            out.insert(start, header);
          }
        },
        entry.metric);
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
}

}  // namespace horizon::metrics
