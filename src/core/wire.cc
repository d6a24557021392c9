#include "core/wire.h"

#include "core/json_internal.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <fmt/format.h>

namespace horizon::wire {

namespace json = boost::json;
using detail::ObjectReader;

namespace {

Result<StreamName> read_name(ObjectReader& r, std::string_view key, errc code = errc::invalid_stream_name) {
  auto s = r.string(key);
  if (!s) return s.error();
  auto n = StreamName::parse(*s);
  if (!n) return Error::make(code, fmt::format("field \"{}\": {}", key, n.error().message));
  return *n;
}

Result<Cursor> read_cursor(ObjectReader& r, std::string_view key, bool allow_query = false) {
  auto s = r.string(key);
  if (!s) return s.error();
  auto c = allow_query ? Cursor::parse_offset_query(*s) : Cursor::parse(*s);
  if (!c) return Error::make(errc::invalid_cursor, fmt::format("field \"{}\": {}", key, c.error().message));
  return *c;
}

std::string compact(const json::object& o) { return json::serialize(o); }

}  // namespace

Result<CreateStreamRequest> parse_create_stream_request(std::string_view body) {
  auto obj = detail::parse_object(body, "create_stream request", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "create_stream request", errc::bad_json);
  auto name = read_name(r, "Name");
  if (!name) return name.error();
  if (auto f = r.finish_strict(); !f) return f.error();
  return CreateStreamRequest{*name};
}

std::string to_json(const CreateStreamRequest& r) { return compact({{"Name", r.name.str()}}); }

Result<AppendRequest> parse_append_request(std::string_view body) {
  // The parsed document lives only in this function: one bump allocator
  // (first 8 KiB on the stack) instead of a heap allocation per line.
  unsigned char first[8192];
  json::monotonic_resource arena(first, sizeof first);
  auto obj = detail::parse_object(body, "append request", errc::bad_json, &arena);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "append request", errc::bad_json);
  auto stream = read_name(r, "Stream");
  if (!stream) return stream.error();
  auto lines = r.array("Lines");
  if (!lines) return lines.error();
  if ((*lines)->size() > kMaxLinesPerAppend) {
    return Error::make(errc::too_many_lines, fmt::format("append request has {} lines, at most {} allowed",
                                                         (*lines)->size(), kMaxLinesPerAppend));
  }
  AppendRequest out{*stream, {}, std::nullopt};
  out.lines.reserve((*lines)->size());
  for (std::size_t i = 0; i < (*lines)->size(); ++i) {
    const json::value& v = (**lines)[i];
    if (!v.is_string()) return r.error("Lines", fmt::format("must hold only strings (line {} is not)", i));
    std::string_view s = v.get_string();
    if (auto ok = validate_line_content(s, i); !ok) return ok.error();
    out.lines.emplace_back(s);
  }
  auto after = r.optional_string("After");
  if (!after) return after.error();
  if (*after) {
    auto c = Cursor::parse(**after);
    if (!c) return Error::make(errc::invalid_cursor, "field \"After\": " + c.error().message);
    if (c->stream() != out.stream) {
      return Error::make(errc::invalid_cursor, fmt::format("field \"After\" names stream {} but Stream is {}",
                                                           c->stream().str(), out.stream.str()));
    }
    out.after = *c;
  }
  if (auto f = r.finish_strict(); !f) return f.error();
  return out;
}

std::string to_json(const AppendRequest& r) {
  json::array lines;
  for (const auto& l : r.lines) lines.emplace_back(l);
  json::object o{{"Stream", r.stream.str()}, {"Lines", std::move(lines)}};
  if (r.after) o["After"] = r.after->to_string();
  return compact(o);
}

Result<AppendResponse> parse_append_response(std::string_view body) {
  auto obj = detail::parse_object(body, "append response", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "append response", errc::bad_json);
  auto c = read_cursor(r, "Offset");
  if (!c) return c.error();
  return AppendResponse{*c};  // a 409 body also carries error/message: not strict
}

std::string to_json(const AppendResponse& r) {
  // Every append answers with this: built directly when the cursor needs no
  // JSON escaping (stream names never do), byte for byte what serialize gives.
  static constexpr std::string_view kHead = R"({"Offset":")", kTail = R"("})";
  std::string out(kHead);
  r.offset.append_to(out);
  const bool plain = std::all_of(out.begin() + kHead.size(), out.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  });
  if (!plain) return compact({{"Offset", r.offset.to_string()}});
  out.append(kTail);
  return out;
}

std::string conflict_body(const Cursor& current_end) {
  json::object o;
  o["error"] = info(errc::conflict).wire_code;
  o["message"] = fmt::format("the stream's end is {}, not the After cursor", current_end.to_string());
  o["Offset"] = current_end.to_string();
  return compact(o);
}

Result<SubscriptionRequest> parse_subscription_request(std::string_view body) {
  auto obj = detail::parse_object(body, "subscription request", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "subscription request", errc::bad_json);
  auto stream = read_name(r, "Stream");
  if (!stream) return stream.error();
  auto sub = read_name(r, "SubscriptionId");
  if (!sub) return sub.error();
  if (auto f = r.finish_strict(); !f) return f.error();
  if (!sub->is_subscription()) {
    return Error::make(errc::not_a_subscription,
                       fmt::format("SubscriptionId {} is not a stream under /_sub/", sub->str()));
  }
  if (stream->is_subscription() || *stream == StreamName::parse(kSubscriptionsParent).value()) {
    return Error::make(errc::subscription_loop,
                       fmt::format("{} is a subscription stream and cannot be subscribed to anything", stream->str()));
  }
  return SubscriptionRequest{*stream, *sub};
}

std::string to_json(const SubscriptionRequest& r) {
  return compact({{"Stream", r.stream.str()}, {"SubscriptionId", r.subscription_id.str()}});
}

Result<LiveReadRequest> parse_live_read_request(std::string_view body) {
  auto obj = detail::parse_object(body, "liveread request", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "liveread request", errc::bad_json);
  auto c = read_cursor(r, "Cursor");
  if (!c) return c.error();
  auto n = r.integer("MaxLinesToRead");
  if (!n) return n.error();
  if (*n < 1 || *n > kMaxLinesToRead) {
    return Error::make(errc::invalid_argument,
                       fmt::format("field \"MaxLinesToRead\" must be 1..{}, got {}", kMaxLinesToRead, *n));
  }
  if (auto f = r.finish_strict(); !f) return f.error();
  return LiveReadRequest{*c, *n};
}

std::string to_json(const LiveReadRequest& r) {
  return compact({{"Cursor", r.cursor.to_string()}, {"MaxLinesToRead", r.max_lines_to_read}});
}

// ---- push protocol ----

PushLine PushLine::from_raw(const RawLine& line, Cursor ptr_after) {
  PushLine out{std::move(ptr_after), line.content, line.meta_type, std::nullopt};
  if (line.payload) out.meta_payload = json::value(*line.payload);
  return out;
}

Result<PushRequest> parse_push_request(std::string_view body) {
  auto obj = detail::parse_object(body, "push request", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "push request", errc::bad_json);
  auto sub = r.string("SubscriptionId");
  if (!sub) return sub.error();
  if (*sub != kQuerySubscriptionId) {
    auto n = StreamName::parse(*sub);
    if (!n || !n->is_subscription()) {
      return r.error("SubscriptionId", "must be \"_query_\" or a stream under /_sub/");
    }
  }
  auto push = r.object("Push");
  if (!push) return push.error();
  ObjectReader pr(**push, "push request Push", errc::bad_json);
  auto from = read_cursor(pr, "FromOffset", true);
  if (!from) return from.error();
  auto lines = pr.optional_array("Lines");
  if (!lines) return lines.error();
  PushRequest out{std::string(*sub), *from, {}};
  if (*lines != nullptr) {
    for (std::size_t i = 0; i < (*lines)->size(); ++i) {
      const json::value& v = (**lines)[i];
      const std::string ctx = fmt::format("push request line {}", i);
      if (!v.is_object()) return Error::make(errc::bad_json, ctx + ": must be an object");
      ObjectReader lr(v.get_object(), ctx, errc::bad_json);
      auto ptr = read_cursor(lr, "PtrAfter");
      if (!ptr) return ptr.error();
      if (ptr->stream() != from->stream()) {
        return lr.error("PtrAfter", "names another stream than FromOffset");
      }
      auto content = lr.string("Content");
      if (!content) return content.error();
      auto type = lr.optional_string("MetaType");
      if (!type) return type.error();
      PushLine line{*ptr, std::string(*content), std::string(type->value_or("")), std::nullopt};
      if (!line.meta_type.empty() && !is_valid_meta_type(line.meta_type)) {
        return lr.error("MetaType", "must be 1-64 letters A-Z a-z or empty");
      }
      if (const json::value* p = lr.any("MetaPayload"); p != nullptr && !p->is_null()) {
        line.meta_payload = *p;
      }
      out.lines.push_back(std::move(line));
    }
  }
  return out;
}

std::string to_json(const PushRequest& r) {
  json::array lines;
  for (const auto& l : r.lines) {
    json::object o;
    o["PtrAfter"] = l.ptr_after.to_string();
    o["Content"] = l.content;
    o["MetaType"] = l.meta_type;
    o["MetaPayload"] = l.meta_payload ? *l.meta_payload : json::value(nullptr);
    lines.emplace_back(std::move(o));
  }
  json::object push{{"FromOffset", r.from_offset.to_string()}, {"Lines", std::move(lines)}};
  return compact({{"SubscriptionId", r.subscription_id}, {"Push", std::move(push)}});
}

std::string_view to_string(PushCode c) {
  switch (c) {
    case PushCode::success: return "success";
    case PushCode::incorrect_base_offset: return "incorrect_base_offset";
    case PushCode::incorrect_subscription_id: return "incorrect_subscription_id";
  }
  return "success";
}

Result<PushResponse> parse_push_response(std::string_view body) {
  auto obj = detail::parse_object(body, "push response", errc::bad_json);
  if (!obj) return obj.error();
  ObjectReader r(*obj, "push response", errc::bad_json);
  auto code = r.string("Code");
  if (!code) return code.error();
  PushResponse out;
  if (*code == "success") {
    out.code = PushCode::success;
  } else if (*code == "incorrect_base_offset") {
    out.code = PushCode::incorrect_base_offset;
  } else if (*code == "incorrect_subscription_id") {
    out.code = PushCode::incorrect_subscription_id;
  } else {
    return r.error("Code", "must be success, incorrect_base_offset or incorrect_subscription_id");
  }
  auto accepted = r.optional_string("AcceptedOffset");
  if (!accepted) return accepted.error();
  if (*accepted && !(*accepted)->empty()) {
    auto c = Cursor::parse(**accepted);
    if (!c) return Error::make(errc::invalid_cursor, "field \"AcceptedOffset\": " + c.error().message);
    out.accepted_offset = *c;
  }
  auto correct = r.optional_string("CorrectSubscriptionId");
  if (!correct) return correct.error();
  out.correct_subscription_id = std::string(correct->value_or(""));
  auto behind = r.optional_array("BehindCursors");
  if (!behind) return behind.error();
  if (*behind != nullptr) {
    auto strs = detail::strings_of(r, "BehindCursors", **behind);
    if (!strs) return strs.error();
    for (auto s : *strs) {
      auto c = Cursor::parse(s);
      if (!c) return Error::make(errc::invalid_cursor, "field \"BehindCursors\": " + c.error().message);
      out.behind_cursors.push_back(*c);
    }
  }
  if (out.code != PushCode::incorrect_subscription_id && !out.accepted_offset) {
    return r.error("AcceptedOffset", fmt::format("is required with Code {}", *code));
  }
  if (out.code == PushCode::incorrect_subscription_id && out.correct_subscription_id.empty()) {
    return r.error("CorrectSubscriptionId", "is required with Code incorrect_subscription_id");
  }
  return out;
}

std::string to_json(const PushResponse& r) {
  json::array behind;
  for (const auto& c : r.behind_cursors) behind.emplace_back(c.to_string());
  return compact({{"Code", to_string(r.code)},
                    {"AcceptedOffset", r.accepted_offset ? r.accepted_offset->to_string() : std::string()},
                    {"CorrectSubscriptionId", r.correct_subscription_id},
                    {"BehindCursors", std::move(behind)}});
}

}  // namespace horizon::wire
