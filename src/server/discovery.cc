#include "server/discovery.h"

#include "core/timestamp.h"
#include "core/text.h"
#include "net/ca.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace horizon::server {

namespace json = boost::json;

namespace {

Error damaged(std::string_view why) { return Error::make(errc::corruption, fmt::format("discovery record: {}", why)); }

// One JSON object of at most `max` bytes; errors are corruption, "<what>: <why>".
Result<json::object> parse_object(std::string_view text, std::size_t max, std::string_view what) {
  auto bad = [&](std::string_view why) { return Error::make(errc::corruption, fmt::format("{}: {}", what, why)); };
  if (text.size() > max) return bad(fmt::format("{} bytes (at most {})", text.size(), max));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return bad(fmt::format("not JSON ({})", ec.message()));
  if (!v.is_object()) return bad("not a JSON object");
  return std::move(v.as_object());
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A Writer id (identity.json): 16 lower-case hex characters.
bool is_writer_id(std::string_view s) { return s.size() == 16 && is_lower_hex(s); }

// "host:port" with a port a client can connect to (1-65535).
bool is_address(const std::string& s) {
  std::string host;
  std::uint16_t port = 0;
  return split_host_port(s, host, port) && port != 0;
}

}  // namespace

std::string serialize_discovery(const DiscoveryRecord& r) {
  json::object o;
  o["writer_id"] = r.writer_id;
  o["api"] = r.api;
  o["pubsub"] = r.pubsub;
  o["ca_pem"] = r.ca_pem;
  o["ca_sha256"] = r.ca_sha256;
  o["updated"] = r.updated;
  return json::serialize(o) + "\n";
}

Result<DiscoveryRecord> parse_discovery(std::string_view text) {
  auto parsed = parse_object(text, kMaxDiscoveryBytes, "discovery record");
  if (!parsed) return parsed.error();
  const json::object& o = *parsed;
  DiscoveryRecord r;
  for (auto [name, out] : {std::pair<const char*, std::string*>{"writer_id", &r.writer_id},
                           {"api", &r.api},
                           {"pubsub", &r.pubsub},
                           {"ca_pem", &r.ca_pem},
                           {"ca_sha256", &r.ca_sha256},
                           {"updated", &r.updated}}) {
    const json::value* f = o.if_contains(name);
    if (f == nullptr) return damaged(fmt::format("no \"{}\"", name));
    if (!f->is_string()) return damaged(fmt::format("\"{}\" is not a string", name));
    *out = std::string(f->get_string());
  }
  if (!is_writer_id(r.writer_id)) {
    return damaged("\"writer_id\" is not 16 lower-case hex characters");
  }
  if (!is_address(r.api)) return damaged("\"api\" is not host:port (port 1-65535)");
  if (!r.pubsub.empty() && !is_address(r.pubsub)) {
    return damaged("\"pubsub\" is neither empty nor host:port (port 1-65535)");
  }
  auto fps = net::bundle_fingerprints_sha256(r.ca_pem);
  if (!fps) return damaged("\"ca_pem\" is not a PEM certificate or bundle");
  if (r.ca_sha256.size() != 64 || !is_lower_hex(r.ca_sha256)) {
    return damaged("\"ca_sha256\" is not 64 lower-case hex characters");
  }
  if (std::find(fps->begin(), fps->end(), r.ca_sha256) == fps->end()) {
    return damaged("\"ca_sha256\" names no certificate of \"ca_pem\"");
  }
  if (!Timestamp::parse(r.updated)) return damaged("\"updated\" is not a timestamp (YYYY-MM-DDTHH:MM:SS.mmmZ)");
  return r;
}

std::string serialize_history_mark(const HistoryMark& m) {
  json::object o;
  o["writer_id"] = m.writer_id;
  o["commit"] = m.commit;
  o["updated"] = m.updated;
  return json::serialize(o) + "\n";
}

Result<HistoryMark> parse_history_mark(std::string_view text) {
  auto bad = [](std::string_view why) { return Error::make(errc::corruption, fmt::format("history mark: {}", why)); };
  auto parsed = parse_object(text, kMaxHistoryBytes, "history mark");
  if (!parsed) return parsed.error();
  const json::object& o = *parsed;
  HistoryMark m;
  const json::value* id = o.if_contains("writer_id");
  if (id == nullptr) return bad("no \"writer_id\"");
  if (!id->is_string() || !is_writer_id(id->get_string())) {
    return bad("\"writer_id\" is not 16 lower-case hex characters");
  }
  m.writer_id = std::string(id->get_string());
  const json::value* commit = o.if_contains("commit");
  if (commit == nullptr) return bad("no \"commit\"");
  if (commit->is_uint64()) {
    m.commit = commit->get_uint64();
  } else if (commit->is_int64() && commit->get_int64() >= 0) {
    m.commit = static_cast<std::uint64_t>(commit->get_int64());
  } else {
    return bad("\"commit\" is not a non-negative integer");
  }
  const json::value* updated = o.if_contains("updated");
  if (updated == nullptr) return bad("no \"updated\"");
  if (!updated->is_string() || !Timestamp::parse(updated->get_string())) {
    return bad("\"updated\" is not a timestamp (YYYY-MM-DDTHH:MM:SS.mmmZ)");
  }
  m.updated = std::string(updated->get_string());
  return m;
}

}  // namespace horizon::server
