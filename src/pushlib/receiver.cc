// Receiver: the application side of SPEC §8 over an Adapter.

#include "core/cursor.h"
#include "core/stream_name.h"
#include "core/wire.h"
#include "pushlib/pushlib.h"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <map>
#include <mutex>
#include <utility>

namespace pushlib {

namespace wire = horizon::wire;
namespace json = boost::json;
using horizon::Cursor;
using horizon::StreamName;

namespace {

constexpr std::string_view kSubscriptionActivity = "SubscriptionActivity";

PushResult answer(const wire::PushResponse& r) { return PushResult{200, wire::to_json(r)}; }

PushResult bad_request(const Error& e) {
  // Every parse failure is the Pusher's (or a proxy's) fault: 400 whatever
  // the code, so that it is never mistaken for a retryable adapter failure.
  return PushResult{400, e.to_json_body()};
}

PushResult server_error(std::string message) {
  return PushResult{500, Error::make(errc::internal, std::move(message)).to_json_body()};
}

// The activity cursors of a SubscriptionActivity line. Only "activity" is
// read, so that a future field in the payload does not break applications.
Result<std::vector<Cursor>> activity_of(const wire::PushLine& line, std::size_t index) {
  auto bad = [index](std::string_view what) {
    return Error::make(errc::invalid_meta, fmt::format("line {}: SubscriptionActivity {}", index, what));
  };
  if (!line.meta_payload || !line.meta_payload->is_object()) return bad("needs a MetaPayload object");
  const json::value* a = line.meta_payload->get_object().if_contains("activity");
  if (a == nullptr || !a->is_array()) return bad("payload needs an \"activity\" array");
  std::vector<Cursor> out;
  for (const json::value& v : a->get_array()) {
    if (!v.is_string()) return bad("\"activity\" must hold only cursor strings");
    auto c = Cursor::parse(v.get_string());
    if (!c) return bad("\"activity\": " + c.error().message);
    out.push_back(std::move(*c));
  }
  return out;
}

// Checks what the wire parser does not: PtrAfter strictly increasing from
// FromOffset. (The parser already checks that every PtrAfter names
// FromOffset's stream.)
Result<void> check_order(const wire::PushRequest& req) {
  const Cursor* prev = &req.from_offset;
  for (std::size_t i = 0; i < req.lines.size(); ++i) {
    const Cursor& at = req.lines[i].ptr_after;
    auto order = at.compare(*prev);
    if (!order) return Error::make(errc::invalid_cursor, fmt::format("line {}: {}", i, order.error().message));
    if (*order != std::strong_ordering::greater) {
      return Error::make(errc::invalid_cursor,
                         fmt::format("line {}: PtrAfter {} is not after {}", i, at.to_string(),
                                     i == 0 ? "FromOffset " + prev->to_string() : prev->to_string()));
    }
    prev = &at;
  }
  return {};
}

Line to_line(const wire::PushLine& l) {
  Line out;
  out.ptr_after = l.ptr_after.to_string();
  out.content = l.content;
  out.meta_type = l.meta_type;
  if (l.meta_payload) out.meta_payload = json::serialize(*l.meta_payload);
  return out;
}

}  // namespace

struct Receiver::Impl {
  explicit Impl(Adapter& a) : adapter(a) {}

  // The stored position of `stream`, or its beginning "<stream>:0:0:?".
  Result<Cursor> stored_position(Transaction& tx, const StreamName& stream) {
    auto text = adapter.get_offset(tx, stream.str());
    if (!text) return text.error();
    if (!*text) return Cursor::beginning(stream);
    auto c = Cursor::parse(**text);
    if (!c) {
      return Error::make(errc::internal,
                         fmt::format("the stored offset of {} is not a cursor: {}", stream.str(), c.error().message));
    }
    if (c->stream() != stream) {
      return Error::make(errc::internal,
                         fmt::format("the stored offset of {} names stream {}", stream.str(), c->stream().str()));
    }
    return *c;
  }

  // The body of the push transaction; fills `out`.
  Result<void> apply(Transaction& tx, const wire::PushRequest& req, bool is_subscription_stream,
                     const std::vector<std::vector<Cursor>>& activity, wire::PushResponse& out) {
    const StreamName& stream = req.from_offset.stream();
    auto stored = stored_position(tx, stream);
    if (!stored) return stored.error();
    if (req.from_offset.is_offset_query() || !(req.from_offset == *stored)) {
      out.code = wire::PushCode::incorrect_base_offset;
      out.accepted_offset = *stored;
      return {};
    }

    Cursor accepted = *stored;
    bool applied_any = false;
    bool stopped = false;
    // Positions of the streams named by activity lines, looked up once: no
    // other stream's position changes during this push.
    std::map<StreamName, Cursor> positions;
    std::vector<StreamName> behind;  // in the order first seen
    for (std::size_t i = 0; i < req.lines.size(); ++i) {
      bool blocks = false;
      if (is_subscription_stream && !activity[i].empty()) {
        for (const Cursor& remote : activity[i]) {
          auto it = positions.find(remote.stream());
          if (it == positions.end()) {
            auto pos = stored_position(tx, remote.stream());
            if (!pos) return pos.error();
            it = positions.emplace(remote.stream(), std::move(*pos)).first;
          }
          // compare cannot fail: both name remote.stream().
          if (it->second.compare(remote).value() == std::strong_ordering::less) {
            blocks = true;
            if (std::find(behind.begin(), behind.end(), remote.stream()) == behind.end()) {
              behind.push_back(remote.stream());
            }
          }
        }
      }
      if (stopped) continue;  // keep collecting BehindCursors only
      if (blocks) {
        stopped = true;
        continue;
      }
      if (auto r = adapter.handle_line(tx, stream.str(), to_line(req.lines[i])); !r) return r.error();
      accepted = req.lines[i].ptr_after;
      applied_any = true;
    }
    if (applied_any) {
      if (auto r = adapter.set_offset(tx, stream.str(), accepted.to_string()); !r) return r.error();
    }
    out.code = wire::PushCode::success;
    out.accepted_offset = accepted;
    for (const StreamName& s : behind) out.behind_cursors.push_back(positions.at(s));
    return {};
  }

  PushResult handle(std::string_view body) {
    auto req = wire::parse_push_request(body);
    if (!req) return bad_request(req.error());
    if (auto ok = check_order(*req); !ok) return bad_request(ok.error());

    const std::string own = adapter.subscription_id();
    auto own_name = StreamName::parse(own);
    if (!own_name || !own_name->is_subscription()) {
      return server_error("the application's subscription_id() is not a stream under /_sub/");
    }
    if (req->subscription_id != own) {
      wire::PushResponse r;
      r.code = wire::PushCode::incorrect_subscription_id;
      r.correct_subscription_id = own;
      return answer(r);
    }

    const bool is_subscription_stream = req->from_offset.stream() == *own_name;
    std::vector<std::vector<Cursor>> activity(req->lines.size());
    if (is_subscription_stream) {
      for (std::size_t i = 0; i < req->lines.size(); ++i) {
        if (req->lines[i].meta_type != kSubscriptionActivity) continue;
        auto a = activity_of(req->lines[i], i);
        if (!a) return bad_request(a.error());
        activity[i] = std::move(*a);
      }
    }

    wire::PushResponse out;
    auto done = adapter.run_in_transaction(
        [&](Transaction& tx) { return apply(tx, *req, is_subscription_stream, activity, out); });
    if (!done) return server_error("the application failed to apply the push: " + done.error().to_string());
    return answer(out);
  }

  Adapter& adapter;
  std::mutex mu;  // serializes handle(): the adapter is never called concurrently
};

Receiver::Receiver(Adapter& adapter) : impl_(std::make_unique<Impl>(adapter)) {}

Receiver::~Receiver() = default;

PushResult Receiver::handle(std::string_view request_body) {
  std::lock_guard lock(impl_->mu);
  try {
    return impl_->handle(request_body);
  } catch (const std::exception& e) {
    return server_error(std::string("the application threw while applying the push: ") + e.what());
  } catch (...) {
    return server_error("the application threw while applying the push");
  }
}

}  // namespace pushlib
