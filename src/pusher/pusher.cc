#include "pusher/pusher.h"

#include "core/wire.h"
#include "store/http_internal.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace horizon::pusher {

namespace {

using Clock = std::chrono::steady_clock;

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One HTTP client per worker thread.
class AppClient {
 public:
  AppClient(std::string url, std::chrono::milliseconds timeout) : url_(std::move(url)), timeout_(timeout), curl_(curl_easy_init()) {}
  ~AppClient() { curl_easy_cleanup(curl_); }
  AppClient(const AppClient&) = delete;
  AppClient& operator=(const AppClient&) = delete;

  Result<wire::PushResponse> push(const wire::PushRequest& req) {
    if (curl_ == nullptr) return Error::make(errc::internal, "libcurl failed to initialize");
    const std::string body = wire::to_json(req);
    std::string out;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &out);
    char detail[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, detail);
    const CURLcode rc = curl_easy_perform(curl_);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      return Error::make(errc::not_ready,
                         fmt::format("push to the application failed: {}", store::detail::curl_failure_text(rc, detail)));
    }
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      return Error::make(errc::not_ready, fmt::format("the application answered HTTP {}: {}", status, out.substr(0, 200)));
    }
    auto resp = wire::parse_push_response(out);
    if (!resp) return Error::make(errc::not_ready, "unexpected answer from the application: " + resp.error().message);
    return resp;
  }

 private:
  std::string url_;
  std::chrono::milliseconds timeout_;
  CURL* curl_;
};

struct StreamState {
  std::optional<Cursor> position;  // confirmed by the application
  std::uint64_t wanted = 1;        // bumped by every wake; work is due while done < wanted
  std::uint64_t done = 0;
  bool busy = false;
  Clock::time_point not_before{};
  std::chrono::milliseconds backoff{0};
  std::uint64_t pushed_lines = 0;
  std::uint64_t failures = 0;
};

}  // namespace

struct Pusher::Impl {
  PusherOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::string subscription;  // learned from the application
  std::map<StreamName, StreamState> streams;
  std::mt19937_64 rng{std::random_device{}()};

  explicit Impl(PusherOptions o) : options(std::move(o)) {}

  void wake_locked(const StreamName& s) {
    auto& st = streams[s];
    ++st.wanted;
  }

  std::chrono::milliseconds jitter(std::chrono::milliseconds backoff) {
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, backoff.count())(rng));
  }

  // The failure path of one stream: retry later, without stalling others.
  void failed_locked(const StreamName& s, const Error& e) {
    auto& st = streams[s];
    ++st.failures;
    st.backoff = st.backoff.count() == 0 ? options.backoff_initial : std::min(st.backoff * 2, options.backoff_max);
    st.not_before = Clock::now() + jitter(st.backoff);
    if (st.failures == 1 || st.failures % 20 == 0) {
      spdlog::warn("stream {}: {} (failure {}; retrying in up to {} ms)", s.str(), e.message, st.failures,
                   st.backoff.count());
    }
  }

  // One step of work on one stream: learn its position, or push one batch.
  void step(const StreamName& s, AppClient& app, reader::Reader& reader) {
    std::optional<Cursor> position;
    std::string sub;
    std::uint64_t wanted = 0;
    {
      std::lock_guard lock(mu);
      position = streams[s].position;
      sub = subscription;
      wanted = streams[s].wanted;
    }
    if (!position) {  // SPEC §8 step 2: ask the application
      auto r = app.push(wire::PushRequest{sub, Cursor::offset_query(s), {}});
      std::lock_guard lock(mu);
      if (!r) return failed_locked(s, r.error());
      if (r->code == wire::PushCode::incorrect_subscription_id) return relearn_locked(r->correct_subscription_id);
      if (!r->accepted_offset || !(r->accepted_offset->stream() == s)) {
        return failed_locked(s, Error::make(errc::invalid_argument, "the application's offset answer names no "
                                                                     "position of this stream"));
      }
      auto& st = streams[s];
      st.position = *r->accepted_offset;
      st.backoff = std::chrono::milliseconds(0);
      return;  // stays due: the next step pushes
    }
    auto lines = reader.read(*position, options.batch_lines);
    if (!lines) {
      std::lock_guard lock(mu);
      return failed_locked(s, Error::make(lines.error().code, "read: " + lines.error().message));
    }
    if (lines->empty()) {  // caught up
      std::lock_guard lock(mu);
      auto& st = streams[s];
      st.done = wanted;
      st.backoff = std::chrono::milliseconds(0);
      return;
    }
    wire::PushRequest req{sub, *position, {}};
    req.lines.reserve(lines->size());
    for (const auto& l : *lines) req.lines.push_back(wire::PushLine::from_raw(l.line, l.ptr_after));
    const Cursor last = lines->back().ptr_after;
    auto r = app.push(req);
    std::lock_guard lock(mu);
    if (!r) return failed_locked(s, r.error());
    auto& st = streams[s];
    switch (r->code) {
      case wire::PushCode::incorrect_subscription_id:
        return relearn_locked(r->correct_subscription_id);
      case wire::PushCode::incorrect_base_offset:
        if (!r->accepted_offset || !(r->accepted_offset->stream() == s)) {
          return failed_locked(s, Error::make(errc::invalid_argument, "incorrect_base_offset without a position of "
                                                                       "this stream"));
        }
        st.position = *r->accepted_offset;  // the application is the source of truth
        return;
      case wire::PushCode::success:
        break;
    }
    if (!r->accepted_offset || !(r->accepted_offset->stream() == s)) {
      return failed_locked(s, Error::make(errc::invalid_argument, "success without an AcceptedOffset of this stream"));
    }
    const auto pushed = r->accepted_offset->compare(*position);
    st.position = *r->accepted_offset;
    st.backoff = std::chrono::milliseconds(0);
    for (const auto& behind : r->behind_cursors) {
      auto& b = streams[behind.stream()];
      if (!b.busy) b.position = behind;  // the application's own position of that stream
      ++b.wanted;
    }
    if (pushed && *pushed == std::strong_ordering::greater) {
      st.pushed_lines += req.lines.size();
    }
    if (!(*r->accepted_offset == last)) {
      // The application stopped early (a subscription stream waiting for
      // streams it is behind on): try again a little later.
      st.not_before = Clock::now() + std::chrono::milliseconds(200);
    }
  }

  void relearn_locked(const std::string& correct) {
    spdlog::warn("the application's subscription is {}, not {}: starting over", correct, subscription);
    subscription = correct;
    streams.clear();
    if (auto n = StreamName::parse(correct)) wake_locked(*n);
  }

  void worker() {
    AppClient app(options.endpoint, options.app_timeout);
    auto reader = options.make_reader();
    std::unique_lock lock(mu);
    while (!stopping) {
      const auto now = Clock::now();
      std::optional<StreamName> pick;
      auto next_due = Clock::time_point::max();
      for (auto& [name, st] : streams) {
        if (st.busy || st.done >= st.wanted) continue;
        if (st.not_before > now) {
          next_due = std::min(next_due, st.not_before);
          continue;
        }
        pick = name;
        break;
      }
      if (!pick) {
        if (next_due == Clock::time_point::max()) {
          cv.wait(lock);
        } else {
          cv.wait_until(lock, next_due);
        }
        continue;
      }
      streams[*pick].busy = true;
      lock.unlock();
      step(*pick, app, *reader);
      lock.lock();
      streams[*pick].busy = false;
      cv.notify_all();
    }
  }
};

Pusher::Pusher(PusherOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Pusher::~Pusher() { stop(); }

void Pusher::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
}

void Pusher::wake(const StreamName& stream) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->wake_locked(stream);
  }
  impl_->cv.notify_all();
}

std::map<std::string, StreamProgress> Pusher::progress() const {
  std::lock_guard lock(impl_->mu);
  std::map<std::string, StreamProgress> out;
  for (const auto& [name, st] : impl_->streams) {
    out[name.str()] = StreamProgress{st.position ? st.position->to_string() : "?", st.pushed_lines, st.failures};
  }
  return out;
}

Result<void> Pusher::run() {
  Impl& m = *impl_;
  if (!m.options.make_reader) return Error::make(errc::invalid_argument, "pusher: no reader");
  // SPEC §8 step 1: learn the subscription id.
  {
    AppClient app(m.options.endpoint, m.options.app_timeout);
    auto backoff = m.options.backoff_initial;
    for (;;) {
      {
        std::lock_guard lock(m.mu);
        if (m.stopping) return {};
      }
      auto r = app.push(wire::PushRequest{std::string(wire::kQuerySubscriptionId), Cursor::offset_query(StreamName::root()), {}});
      if (r && r->code == wire::PushCode::incorrect_subscription_id && StreamName::parse(r->correct_subscription_id)) {
        std::lock_guard lock(m.mu);
        m.subscription = r->correct_subscription_id;
        break;
      }
      spdlog::warn("learning the subscription id from {} failed: {}; retrying", m.options.endpoint,
                   r ? "unexpected answer" : r.error().message);
      std::unique_lock lock(m.mu);
      m.cv.wait_for(lock, m.jitter(backoff), [&m] { return m.stopping; });
      backoff = std::min(backoff * 2, m.options.backoff_max);
    }
  }
  const StreamName sub = StreamName::parse(m.subscription).value();
  spdlog::info("pushing subscription {} to {}", sub.str(), m.options.endpoint);
  if (m.options.on_subscription) m.options.on_subscription(m.subscription);
  wake(sub);
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, m.options.max_in_flight); ++i) {
    workers.emplace_back([&m] { m.worker(); });
  }
  // The periodic path: re-read the subscription stream (pub/sub is a hint).
  auto last_log = Clock::now();
  std::unique_lock lock(m.mu);
  while (!m.stopping) {
    m.cv.wait_for(lock, m.options.poll, [&m] { return m.stopping; });
    if (m.stopping) break;
    if (auto s = StreamName::parse(m.subscription)) m.wake_locked(*s);
    m.cv.notify_all();
    if (Clock::now() - last_log > std::chrono::seconds(30)) {
      last_log = Clock::now();
      for (const auto& [name, st] : m.streams) {
        spdlog::info("stream {}: at {}, {} lines pushed, {} failures", name.str(),
                     st.position ? st.position->to_string() : "?", st.pushed_lines, st.failures);
      }
    }
  }
  lock.unlock();
  m.cv.notify_all();
  for (auto& t : workers) t.join();
  return {};
}

}  // namespace horizon::pusher
