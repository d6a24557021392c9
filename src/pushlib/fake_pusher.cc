// FakePusher: in-memory streams plus the Pusher's side of SPEC §8, with
// injected faults, for applications' tests.

#include "core/cursor.h"
#include "core/meta.h"
#include "core/raw_line.h"
#include "core/stream_name.h"
#include "core/wire.h"
#include "pushlib/testing.h"

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

namespace pushlib {

namespace wire = horizon::wire;
namespace json = boost::json;
using horizon::Cursor;
using horizon::StreamName;

namespace {

struct FakeStream {
  StreamName name;
  std::vector<wire::PushLine> lines;
  std::int64_t chunk = 0;
  std::int64_t chunk_size = 0;  // bytes of the current chunk
  bool needs_created = true;    // the next append starts the chunk with a Created line
};

// How far a cursor is into a stream: the number of lines before it, or
// nullopt if it is not a line boundary.
std::optional<std::size_t> index_after(const FakeStream& s, const Cursor& at) {
  if (at.is_beginning()) return 0;
  auto less = [](const wire::PushLine& l, const Cursor& c) {
    return l.ptr_after.chunk() < c.chunk() || (l.ptr_after.chunk() == c.chunk() && l.ptr_after.offset() < c.offset());
  };
  auto it = std::lower_bound(s.lines.begin(), s.lines.end(), at, less);
  if (it == s.lines.end() || !(it->ptr_after == at)) return std::nullopt;
  return static_cast<std::size_t>(it - s.lines.begin()) + 1;
}

}  // namespace

struct FakePusher::Impl {
  Impl(Receiver& r, StreamName s, FakePusherOptions o)
      : receiver(r), sub(std::move(s)), options(std::move(o)), rng(options.seed) {}

  // ---- the Writer's side ----

  Cursor end_cursor(const FakeStream& s) const {
    return s.lines.empty() ? Cursor::beginning(s.name) : s.lines.back().ptr_after;
  }

  horizon::Timestamp tick() { return horizon::Timestamp{clock_ms++}; }

  void add_line(FakeStream& s, std::size_t raw_size, wire::PushLine line) {
    s.chunk_size += static_cast<std::int64_t>(raw_size);
    line.ptr_after = Cursor(s.name, s.chunk, s.chunk_size, options.server);
    s.lines.push_back(std::move(line));
  }

  void add_meta(FakeStream& s, const horizon::MetaEvent& e) {
    const std::string text = horizon::meta_payload_json(e);
    wire::PushLine line{Cursor::beginning(s.name), text, std::string(horizon::meta_type(e)), json::parse(text)};
    add_line(s, horizon::encode_meta_line(e).size(), std::move(line));
  }

  void begin_chunk_if_needed(FakeStream& s) {
    if (!s.needs_created) return;
    s.needs_created = false;
    horizon::CreatedMeta created;
    if (!(s.name == sub)) created.subscription_ids.push_back(sub);
    created.ts = tick();
    add_meta(s, created);
  }

  // After an append: a Rotated line and a new chunk once the chunk is full.
  void rotate_if_full(FakeStream& s) {
    if (options.chunk_bytes == 0 || s.chunk_size < static_cast<std::int64_t>(options.chunk_bytes)) return;
    const Cursor next(s.name, s.chunk + 1, 0, options.server);
    horizon::RotatedMeta rotated{next, tick()};
    add_meta(s, rotated);
    s.lines.back().ptr_after = next;  // the cursor after a Rotated line is the next chunk's start
    s.chunk += 1;
    s.chunk_size = 0;
    s.needs_created = true;
  }

  // ---- the Pusher's side ----

  // Delivers a push (twice when a duplicate is injected); nullopt when the
  // reply is lost.
  std::optional<PushResult> send(const wire::PushRequest& req) {
    const std::string body = wire::to_json(req);
    std::bernoulli_distribution dup(options.duplicate_probability);
    std::bernoulli_distribution lost(options.lost_reply_probability);
    if (dup(rng)) {
      (void)receiver.handle(body);
      ++stats.pushes;
      ++stats.duplicates;
    }
    PushResult r = receiver.handle(body);
    ++stats.pushes;
    if (lost(rng)) {
      ++stats.lost_replies;
      return std::nullopt;
    }
    return r;
  }

  // The parsed reply of a 200; nullopt (retry) for a 5xx; an error otherwise.
  Result<std::optional<wire::PushResponse>> interpret(const PushResult& r) {
    if (r.http_status >= 500) {
      ++stats.server_errors;
      if (++consecutive_server_errors > kMaxConsecutiveServerErrors) {
        return Error::make(errc::internal, fmt::format("the application answered HTTP {} {} times in a row: {}",
                                                       r.http_status, consecutive_server_errors, r.body));
      }
      return std::optional<wire::PushResponse>();
    }
    consecutive_server_errors = 0;
    if (r.http_status != 200) {
      return Error::make(errc::bad_json, fmt::format("the application answered HTTP {}: {}", r.http_status, r.body));
    }
    auto resp = wire::parse_push_response(r.body);
    if (!resp) return Error::make(errc::bad_json, "the application's reply is malformed: " + resp.error().message);
    if (resp->code == wire::PushCode::incorrect_base_offset) ++stats.incorrect_base_offset;
    return std::optional<wire::PushResponse>(std::move(*resp));
  }

  // Records what the application said its position in `s` is.
  Result<void> learn(const Cursor& position) {
    auto it = streams.find(position.stream());
    if (it == streams.end()) {
      return Error::make(errc::invalid_argument,
                         fmt::format("the application named a stream that does not exist: {}", position.to_string()));
    }
    auto idx = index_after(it->second, position);
    if (!idx) {
      return Error::make(errc::invalid_argument,
                         fmt::format("the application's position {} is not a line boundary", position.to_string()));
    }
    app[position.stream()] = position;
    auto& best = delivered[position.stream()];
    if (*idx > best) {
      best = *idx;
      pushes_without_progress = 0;
      blocked.clear();
    }
    return {};
  }

  Result<void> check_budget() {
    if (stats.pushes >= options.max_pushes) {
      return Error::make(errc::internal, fmt::format("not delivered after {} pushes", stats.pushes));
    }
    if (++pushes_without_progress > kMaxPushesWithoutProgress) {
      return Error::make(errc::internal,
                         fmt::format("no progress in {} pushes: the application accepts nothing more and names no "
                                     "stream it is behind on",
                                     kMaxPushesWithoutProgress));
    }
    return {};
  }

  Result<void> query_subscription() {
    auto r =
        send(wire::PushRequest{std::string(wire::kQuerySubscriptionId), Cursor::offset_query(StreamName::root()), {}});
    if (!r) return {};
    auto resp = interpret(*r);
    if (!resp) return resp.error();
    if (!*resp) return {};
    if ((*resp)->code != wire::PushCode::incorrect_subscription_id || (*resp)->correct_subscription_id != sub.str()) {
      return Error::make(errc::invalid_argument,
                         fmt::format("asked for its subscription, the application answered {} \"{}\", expected {}",
                                     wire::to_string((*resp)->code), (*resp)->correct_subscription_id, sub.str()));
    }
    knows_subscription = true;
    app.emplace(sub, std::nullopt);
    return {};
  }

  // Returns true once the application's position in `s` is known.
  Result<bool> query_offset(const StreamName& s) {
    auto r = send(wire::PushRequest{sub.str(), Cursor::offset_query(s), {}});
    if (!r) return false;
    auto resp = interpret(*r);
    if (!resp) return resp.error();
    if (!*resp) return false;
    if ((*resp)->code == wire::PushCode::incorrect_subscription_id) {
      knows_subscription = false;
      return false;
    }
    if ((*resp)->code != wire::PushCode::incorrect_base_offset || !(*resp)->accepted_offset ||
        !((*resp)->accepted_offset->stream() == s)) {
      return Error::make(errc::invalid_argument,
                         fmt::format("an offset query for {} was answered {}", s.str(), r->body));
    }
    if (auto ok = learn(*(*resp)->accepted_offset); !ok) return ok.error();
    return true;
  }

  Result<void> push(const StreamName& s) {
    const FakeStream& fs = streams.at(s);
    const Cursor known = *app.at(s);
    std::size_t from = *index_after(fs, known);
    std::bernoulli_distribution stale(options.stale_probability);
    if (from > 0 && stale(rng)) {
      from = std::uniform_int_distribution<std::size_t>(0, from - 1)(rng);
      ++stats.stale_pushes;
    }
    const Cursor from_offset =
        (from == 0 ? Cursor::beginning(s) : fs.lines[from - 1].ptr_after).with_server(options.server);
    const std::size_t n = std::min(std::max<std::size_t>(options.batch_lines, 1), fs.lines.size() - from);
    wire::PushRequest req{sub.str(), from_offset, {}};
    req.lines.assign(fs.lines.begin() + static_cast<std::ptrdiff_t>(from),
                     fs.lines.begin() + static_cast<std::ptrdiff_t>(from + n));
    auto r = send(req);
    if (!r) return {};  // lost reply: the same push goes again
    auto resp = interpret(*r);
    if (!resp) return resp.error();
    if (!*resp) return {};
    const wire::PushResponse& p = **resp;
    switch (p.code) {
      case wire::PushCode::incorrect_subscription_id: knows_subscription = false; return {};
      case wire::PushCode::incorrect_base_offset:
      case wire::PushCode::success: {
        if (!p.accepted_offset || !(p.accepted_offset->stream() == s)) {
          return Error::make(errc::invalid_argument, fmt::format("a push of {} was answered {}", s.str(), r->body));
        }
        const std::size_t before = delivered[s];
        if (auto ok = learn(*p.accepted_offset); !ok) return ok.error();
        for (const Cursor& b : p.behind_cursors) {
          if (auto ok = learn(b); !ok) return ok.error();
        }
        if (p.code == wire::PushCode::success && delivered[s] == before && n > 0) blocked.insert(s);
        return {};
      }
    }
    return {};
  }

  // At the end, every stream must be at its end for the application.
  Result<bool> verify_all_delivered() {
    for (const auto& [name, fs] : streams) {
      if (app.contains(name) && app.at(name)) continue;
      auto known = query_offset(name);
      if (!known) return known.error();
      if (!*known) return false;  // lost reply or 5xx: try again
      if (!(*app.at(name) == end_cursor(fs))) {
        return Error::make(errc::internal,
                           fmt::format("the application is at {} but {} ends at {}, and it never asked for it "
                                       "(BehindCursors)",
                                       app.at(name)->to_string(), name.str(), end_cursor(fs).to_string()));
      }
    }
    return true;
  }

  Result<void> run() {
    std::bernoulli_distribution restart(options.restart_probability);
    pushes_without_progress = 0;
    while (true) {
      if (auto ok = check_budget(); !ok) return ok;
      if (restart(rng)) {
        ++stats.restarts;
        knows_subscription = false;
        app.clear();
        blocked.clear();
      }
      if (!knows_subscription) {
        if (auto ok = query_subscription(); !ok) return ok;
        continue;
      }
      std::vector<StreamName> work;
      for (const auto& [name, pos] : app) {
        if (!pos || *index_after(streams.at(name), *pos) < streams.at(name).lines.size()) work.push_back(name);
      }
      if (work.empty()) {
        auto done = verify_all_delivered();
        if (!done) return done.error();
        if (*done) return {};
        continue;
      }
      // Round robin, preferring streams that are not blocked.
      std::vector<StreamName> ready;
      for (const auto& s : work) {
        if (!blocked.contains(s)) ready.push_back(s);
      }
      const auto& pick_from = ready.empty() ? work : ready;
      const StreamName s = pick_from[turn++ % pick_from.size()];
      if (!app.at(s)) {
        auto known = query_offset(s);
        if (!known) return known.error();
        continue;
      }
      if (auto ok = push(s); !ok) return ok;
    }
  }

  static constexpr std::size_t kMaxConsecutiveServerErrors = 100;
  static constexpr std::size_t kMaxPushesWithoutProgress = 1000;

  Receiver& receiver;
  StreamName sub;
  FakePusherOptions options;
  std::mt19937_64 rng;
  FakePusherStats stats;
  std::int64_t clock_ms = 1'490'000'000'000;  // 2017-03-20: deterministic timestamps

  // The Writer's streams and the ones changed since the last activity line.
  std::map<StreamName, FakeStream> streams;
  std::vector<StreamName> dirty;

  // What the Pusher has learned (forgotten on a restart).
  bool knows_subscription = false;
  std::map<StreamName, std::optional<Cursor>> app;  // streams being pushed, with the app's position if known
  std::set<StreamName> blocked;  // pushed with success but no progress (a subscription waiting for others)
  std::size_t turn = 0;
  std::size_t consecutive_server_errors = 0;
  std::size_t pushes_without_progress = 0;
  // Lines the application has confirmed per stream (never forgotten): for
  // progress detection only.
  std::map<StreamName, std::size_t> delivered;
};

FakePusher::FakePusher(Receiver& receiver, std::string subscription_id, FakePusherOptions options) {
  auto sub = StreamName::parse(subscription_id);
  if (!sub || !sub->is_subscription()) {
    throw std::invalid_argument("FakePusher: \"" + subscription_id + "\" is not a stream under /_sub/");
  }
  impl_ = std::make_unique<Impl>(receiver, *sub, std::move(options));
  FakeStream& s = impl_->streams.emplace(*sub, FakeStream{*sub, {}, 0, 0, true}).first->second;
  impl_->begin_chunk_if_needed(s);
}

FakePusher::~FakePusher() = default;

Result<std::string> FakePusher::append(std::string_view stream, const std::vector<std::string>& lines) {
  auto name = StreamName::parse(stream);
  if (!name) return name.error();
  if (name->is_subscription() || name->str() == horizon::kSubscriptionsParent) {
    return Error::make(errc::invalid_argument, "FakePusher::append: " + name->str() + " is a subscription stream");
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (auto ok = horizon::validate_line_content(lines[i], i); !ok) return ok.error();
  }
  auto it = impl_->streams.find(*name);
  if (it == impl_->streams.end()) it = impl_->streams.emplace(*name, FakeStream{*name, {}, 0, 0, true}).first;
  FakeStream& s = it->second;
  if (lines.empty()) return impl_->end_cursor(s).to_string();
  impl_->begin_chunk_if_needed(s);
  for (const auto& l : lines) {
    impl_->add_line(s, horizon::encode_regular_line(l).size(),
                    wire::PushLine{Cursor::beginning(s.name), l, std::string(), std::nullopt});
  }
  impl_->rotate_if_full(s);
  if (std::find(impl_->dirty.begin(), impl_->dirty.end(), *name) == impl_->dirty.end()) {
    impl_->dirty.push_back(*name);
  }
  return impl_->end_cursor(s).to_string();
}

void FakePusher::write_activity() {
  if (impl_->dirty.empty()) return;
  horizon::SubscriptionActivityMeta m;
  for (const auto& name : impl_->dirty) m.activity.push_back(impl_->end_cursor(impl_->streams.at(name)));
  impl_->dirty.clear();
  m.ts = impl_->tick();
  FakeStream& s = impl_->streams.at(impl_->sub);
  impl_->begin_chunk_if_needed(s);
  impl_->add_meta(s, m);
  impl_->rotate_if_full(s);
}

Result<void> FakePusher::run() {
  write_activity();
  return impl_->run();
}

std::string FakePusher::end_of(std::string_view stream) const {
  auto name = StreamName::parse(stream);
  if (!name) return {};
  auto it = impl_->streams.find(*name);
  if (it == impl_->streams.end()) return {};
  return impl_->end_cursor(it->second).to_string();
}

const FakePusherStats& FakePusher::stats() const { return impl_->stats; }

}  // namespace pushlib
