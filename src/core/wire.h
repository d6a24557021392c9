#pragma once
// The JSON bodies of the v1 wire protocols: the Writer API (SPEC §5) and the
// push protocol (SPEC §8). Field names are v1's (capitalised).
//
// Parsing is strict for Writer API requests: wrong types, missing fields,
// unknown fields and trailing data are errors naming the field. Push
// protocol bodies ignore unknown fields (forward compatibility between
// Pushers and apps written in other languages). Serialization is compact,
// fields in the order shown in the SPEC.
//
// Thread-safety: values; pure functions.

#include "core/cursor.h"
#include "core/errc.h"
#include "core/raw_line.h"
#include "core/stream_name.h"

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::wire {

inline constexpr std::int64_t kMaxLinesToRead = 10'000;

// POST /writer/create_stream: {"Name":"/a/b"}; the 201 answer has the same shape.
struct CreateStreamRequest {
  StreamName name;
};
[[nodiscard]] Result<CreateStreamRequest> parse_create_stream_request(std::string_view body);
std::string to_json(const CreateStreamRequest& r);

// POST /writer/append: {"Stream":"/a","Lines":["l1"],"After":"<cursor>"}.
// Every line is checked with validate_line_content; at most
// kMaxLinesPerAppend lines.
struct AppendRequest {
  StreamName stream;
  std::vector<std::string> lines;
  std::optional<Cursor> after;
};
[[nodiscard]] Result<AppendRequest> parse_append_request(std::string_view body);
std::string to_json(const AppendRequest& r);

// 201 {"Offset":"<cursor>"}; also the body of a 409 conflict (with error and message).
struct AppendResponse {
  Cursor offset;
};
[[nodiscard]] Result<AppendResponse> parse_append_response(std::string_view body);
std::string to_json(const AppendResponse& r);
// The 409 body of a failed After precondition:
// {"error":"conflict","message":"...","Offset":"<current end>"}.
std::string conflict_body(const Cursor& current_end);

// POST /writer/subscribe and /writer/unsubscribe: {"Stream":"/a","SubscriptionId":"/_sub/x"}.
// The SubscriptionId must be a subscription stream and Stream must not be one.
struct SubscriptionRequest {
  StreamName stream;
  StreamName subscription_id;
};
[[nodiscard]] Result<SubscriptionRequest> parse_subscription_request(std::string_view body);
std::string to_json(const SubscriptionRequest& r);

// POST /writer/liveread: {"Cursor":"<cursor>","MaxLinesToRead":1000}; 1..kMaxLinesToRead.
struct LiveReadRequest {
  Cursor cursor;
  std::int64_t max_lines_to_read = 1000;
};
[[nodiscard]] Result<LiveReadRequest> parse_live_read_request(std::string_view body);
std::string to_json(const LiveReadRequest& r);

// ---- push protocol (SPEC §8) ----

inline constexpr std::string_view kQuerySubscriptionId = "_query_";

struct PushLine {
  Cursor ptr_after;
  std::string content;
  std::string meta_type;                         // empty for a regular line
  std::optional<boost::json::value> meta_payload;  // null for a regular line

  // Builds the push line of a raw line read from a chunk.
  static PushLine from_raw(const RawLine& line, Cursor ptr_after);
};

struct PushRequest {
  std::string subscription_id;  // a subscription stream name, or "_query_"
  Cursor from_offset;           // may be an offset query ("<stream>:-1:-1")
  std::vector<PushLine> lines;
};
[[nodiscard]] Result<PushRequest> parse_push_request(std::string_view body);
std::string to_json(const PushRequest& r);

enum class PushCode { success, incorrect_base_offset, incorrect_subscription_id };
std::string_view to_string(PushCode c);

struct PushResponse {
  PushCode code = PushCode::success;
  std::optional<Cursor> accepted_offset;
  std::string correct_subscription_id;
  std::vector<Cursor> behind_cursors;
};
[[nodiscard]] Result<PushResponse> parse_push_response(std::string_view body);
std::string to_json(const PushResponse& r);

}  // namespace horizon::wire
