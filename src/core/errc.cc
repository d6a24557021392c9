#include "core/errc.h"

#include <array>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace horizon {
namespace {

// The one table: errc -> HTTP status, wire code, default description.
// Keep it in declaration order; errc_test checks completeness and order.
constexpr std::array kTable = {
    ErrcInfo{errc::bad_json, 400, "bad_request", "the request body is not valid"},
    ErrcInfo{errc::invalid_stream_name, 400, "invalid_stream_name", "invalid stream name"},
    ErrcInfo{errc::invalid_cursor, 400, "invalid_cursor", "invalid cursor"},
    ErrcInfo{errc::invalid_line, 400, "invalid_line", "invalid line"},
    ErrcInfo{errc::invalid_raw_line, 400, "invalid_raw_line", "invalid raw line"},
    ErrcInfo{errc::invalid_meta, 400, "invalid_meta", "invalid meta line"},
    ErrcInfo{errc::invalid_argument, 400, "invalid_argument", "invalid argument"},
    ErrcInfo{errc::not_a_subscription, 400, "not_a_subscription",
             "the subscription id is not a stream under /_sub/"},
    ErrcInfo{errc::subscription_loop, 400, "subscription_loop",
             "a subscription stream cannot be subscribed to anything"},
    ErrcInfo{errc::unauthorized, 401, "unauthorized", "missing or wrong bearer token"},
    ErrcInfo{errc::stream_not_found, 404, "stream_not_found", "no such stream"},
    ErrcInfo{errc::parent_not_found, 404, "parent_not_found", "the parent stream does not exist"},
    ErrcInfo{errc::subscription_not_found, 404, "subscription_not_found",
             "the subscription stream does not exist"},
    ErrcInfo{errc::chunk_not_found, 404, "chunk_not_found", "this Writer does not hold that chunk"},
    ErrcInfo{errc::endpoint_not_found, 404, "endpoint_not_found", "no such endpoint"},
    ErrcInfo{errc::method_not_allowed, 405, "method_not_allowed", "method not allowed"},
    ErrcInfo{errc::length_required, 411, "length_required", "the request body needs a Content-Length or chunked framing"},
    ErrcInfo{errc::stream_exists, 409, "stream_exists", "the stream already exists"},
    ErrcInfo{errc::conflict, 409, "conflict", "the stream's end is not at the expected cursor"},
    ErrcInfo{errc::body_too_large, 413, "body_too_large", "request body too large"},
    ErrcInfo{errc::too_many_lines, 413, "too_many_lines", "too many lines in one append"},
    ErrcInfo{errc::line_too_long, 413, "line_too_long", "line too long"},
    ErrcInfo{errc::headers_too_large, 431, "headers_too_large", "request headers too large"},
    ErrcInfo{errc::uri_too_long, 414, "uri_too_long", "request target too long"},
    ErrcInfo{errc::not_ready, 503, "not_ready", "the Writer is not ready"},
    ErrcInfo{errc::storage_failed, 503, "storage_failed",
             "the Writer's storage failed; writes are refused until restart"},
    ErrcInfo{errc::disk_full, 503, "disk_full", "no space left on the Writer's disk"},
    ErrcInfo{errc::too_many_connections, 503, "too_many_connections", "too many connections"},
    ErrcInfo{errc::not_implemented, 501, "not_implemented", "not implemented"},
    ErrcInfo{errc::http_version_not_supported, 505, "http_version_not_supported", "HTTP version not supported"},
    ErrcInfo{errc::corruption, 500, "corruption", "stored data failed an integrity check"},
    ErrcInfo{errc::internal, 500, "internal", "internal error"},
};

// Every enumerator, from the enum's own range (not from the table, so that a
// missing row is detectable).
constexpr auto make_all() {
  constexpr auto n = static_cast<std::size_t>(errc::internal);
  std::array<errc, n> out{};
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<errc>(i + 1);
  return out;
}
constexpr auto kAll = make_all();

}  // namespace

std::span<const errc> all_errcs() { return kAll; }

const ErrcInfo* find_info(errc code) {
  for (const auto& row : kTable) {
    if (row.code == code) return &row;
  }
  return nullptr;
}

const ErrcInfo& info(errc code) {
  static constexpr ErrcInfo kUnknown{errc::internal, 500, "internal", "internal error"};
  const ErrcInfo* row = find_info(code);
  return row != nullptr ? *row : kUnknown;  // every enumerator has a row (errc_test)
}

std::string Error::to_json_body() const {
  boost::json::object o;
  o["error"] = wire_code();
  o["message"] = message.empty() ? info(code).description : std::string_view(message);
  return boost::json::serialize(o);
}

std::string Error::to_string() const {
  std::string out(wire_code());
  out += ": ";
  out += message.empty() ? info(code).description : std::string_view(message);
  return out;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw ErrorException(e);
}

}  // namespace horizon
