#include "core/meta.h"

#include "core/json_internal.h"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace horizon {

namespace json = boost::json;

namespace {

json::array names_to_json(const std::vector<StreamName>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s.str());
  return a;
}

json::array cursors_to_json(const std::vector<Cursor>& v) {
  json::array a;
  for (const auto& c : v) a.emplace_back(c.to_string());
  return a;
}

struct TypeName {
  std::string_view operator()(const CreatedMeta&) const { return "Created"; }
  std::string_view operator()(const ChildStreamCreatedMeta&) const { return "ChildStreamCreated"; }
  std::string_view operator()(const RotatedMeta&) const { return "Rotated"; }
  std::string_view operator()(const SubscribedMeta&) const { return "Subscribed"; }
  std::string_view operator()(const UnsubscribedMeta&) const { return "Unsubscribed"; }
  std::string_view operator()(const SubscriptionActivityMeta&) const { return "SubscriptionActivity"; }
  std::string_view operator()(const UnknownMeta& u) const { return u.type; }
};

// boost::json::object keeps insertion order, which gives the SPEC's order.
struct Payload {
  std::string operator()(const CreatedMeta& m) const {
    json::object o;
    o["subscription_ids"] = names_to_json(m.subscription_ids);
    o["ts"] = m.ts.to_string();
    return json::serialize(o);
  }
  std::string operator()(const ChildStreamCreatedMeta& m) const {
    json::object o;
    o["name"] = m.name.str();
    o["cursor"] = m.cursor.to_string();
    o["ts"] = m.ts.to_string();
    return json::serialize(o);
  }
  std::string operator()(const RotatedMeta& m) const {
    json::object o;
    o["next"] = m.next.to_string();
    o["ts"] = m.ts.to_string();
    return json::serialize(o);
  }
  std::string operator()(const SubscribedMeta& m) const { return subscription("subscription_id", m.subscription_id, m.ts); }
  std::string operator()(const UnsubscribedMeta& m) const {
    return subscription("subscription_id", m.subscription_id, m.ts);
  }
  std::string operator()(const SubscriptionActivityMeta& m) const {
    json::object o;
    o["activity"] = cursors_to_json(m.activity);
    o["ts"] = m.ts.to_string();
    return json::serialize(o);
  }
  std::string operator()(const UnknownMeta& m) const { return m.json; }

  static std::string subscription(std::string_view key, const StreamName& id, Timestamp ts) {
    json::object o;
    o[key] = id.str();
    o["ts"] = ts.to_string();
    return json::serialize(o);
  }
};

Result<StreamName> read_name(detail::ObjectReader& r, std::string_view key) {
  auto s = r.string(key);
  if (!s) return s.error();
  auto n = StreamName::parse(*s);
  if (!n) return r.error(key, n.error().message);
  return *n;
}

Result<Cursor> read_cursor(detail::ObjectReader& r, std::string_view key) {
  auto s = r.string(key);
  if (!s) return s.error();
  auto c = Cursor::parse(*s);
  if (!c) return r.error(key, c.error().message);
  return *c;
}

Result<Timestamp> read_ts(detail::ObjectReader& r) {
  auto s = r.string("ts");
  if (!s) return s.error();
  auto t = Timestamp::parse(*s);
  if (!t) return r.error("ts", t.error().message);
  return *t;
}

}  // namespace

bool is_valid_meta_type(std::string_view type) {
  if (type.empty() || type.size() > 64) return false;
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

std::string_view meta_type(const MetaEvent& e) { return std::visit(TypeName{}, e); }

std::string meta_payload_json(const MetaEvent& e) { return std::visit(Payload{}, e); }

std::string encode_meta_line(const MetaEvent& e) {
  std::string out = "/";
  out += meta_type(e);
  out += ' ';
  out += meta_payload_json(e);
  out += '\n';
  return out;
}

Result<MetaEvent> parse_meta(std::string_view type, std::string_view json_text, const json::object& payload) {
  const std::string context = fmt::format("/{} meta line", type);
  detail::ObjectReader r(payload, context, errc::invalid_meta);

  auto finish = [&](MetaEvent e) -> Result<MetaEvent> {
    if (auto f = r.finish_strict(); !f) return f.error();
    return e;
  };

  if (type == "Created") {
    auto a = r.array("subscription_ids");
    if (!a) return a.error();
    auto strs = detail::strings_of(r, "subscription_ids", **a);
    if (!strs) return strs.error();
    CreatedMeta m;
    for (auto s : *strs) {
      auto n = StreamName::parse(s);
      if (!n) return r.error("subscription_ids", n.error().message);
      m.subscription_ids.push_back(*n);
    }
    auto ts = read_ts(r);
    if (!ts) return ts.error();
    m.ts = *ts;
    return finish(std::move(m));
  }
  if (type == "ChildStreamCreated") {
    auto name = read_name(r, "name");
    if (!name) return name.error();
    auto cursor = read_cursor(r, "cursor");
    if (!cursor) return cursor.error();
    auto ts = read_ts(r);
    if (!ts) return ts.error();
    return finish(ChildStreamCreatedMeta{*name, *cursor, *ts});
  }
  if (type == "Rotated") {
    auto next = read_cursor(r, "next");
    if (!next) return next.error();
    auto ts = read_ts(r);
    if (!ts) return ts.error();
    return finish(RotatedMeta{*next, *ts});
  }
  if (type == "Subscribed" || type == "Unsubscribed") {
    auto id = read_name(r, "subscription_id");
    if (!id) return id.error();
    auto ts = read_ts(r);
    if (!ts) return ts.error();
    if (type == "Subscribed") return finish(SubscribedMeta{*id, *ts});
    return finish(UnsubscribedMeta{*id, *ts});
  }
  if (type == "SubscriptionActivity") {
    auto a = r.array("activity");
    if (!a) return a.error();
    auto strs = detail::strings_of(r, "activity", **a);
    if (!strs) return strs.error();
    SubscriptionActivityMeta m;
    for (auto s : *strs) {
      auto c = Cursor::parse(s);
      if (!c) return r.error("activity", c.error().message);
      m.activity.push_back(*c);
    }
    auto ts = read_ts(r);
    if (!ts) return ts.error();
    m.ts = *ts;
    return finish(std::move(m));
  }
  if (!is_valid_meta_type(type)) {
    return Error::make(errc::invalid_meta, "meta type must be 1-64 letters A-Z a-z");
  }
  return MetaEvent(UnknownMeta{std::string(type), std::string(json_text)});
}

}  // namespace horizon
