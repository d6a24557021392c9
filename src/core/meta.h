#pragma once
// Meta events (SPEC §4): the lines the system writes itself. Each type's
// JSON is compact with its fields in the SPEC's order, e.g.
//   /Created {"subscription_ids":[],"ts":"2017-03-31T11:09:00.643Z"}
// Unknown meta types are kept as `UnknownMeta` and pass through unchanged.
//
// Thread-safety: values; pure functions.

#include "core/cursor.h"
#include "core/errc.h"
#include "core/stream_name.h"
#include "core/timestamp.h"

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace horizon {

struct CreatedMeta {
  std::vector<StreamName> subscription_ids;
  Timestamp ts;
  friend bool operator==(const CreatedMeta&, const CreatedMeta&) = default;
};

struct ChildStreamCreatedMeta {
  StreamName name;
  Cursor cursor;  // where the child starts
  Timestamp ts;
  friend bool operator==(const ChildStreamCreatedMeta& a, const ChildStreamCreatedMeta& b) {
    return a.name == b.name && a.cursor == b.cursor && a.cursor.server() == b.cursor.server() && a.ts == b.ts;
  }
};

struct RotatedMeta {
  Cursor next;  // first position of the next chunk
  Timestamp ts;
  friend bool operator==(const RotatedMeta& a, const RotatedMeta& b) {
    return a.next == b.next && a.next.server() == b.next.server() && a.ts == b.ts;
  }
};

struct SubscribedMeta {
  StreamName subscription_id;
  Timestamp ts;
  friend bool operator==(const SubscribedMeta&, const SubscribedMeta&) = default;
};

struct UnsubscribedMeta {
  StreamName subscription_id;
  Timestamp ts;
  friend bool operator==(const UnsubscribedMeta&, const UnsubscribedMeta&) = default;
};

struct SubscriptionActivityMeta {
  std::vector<Cursor> activity;  // one cursor per stream at most
  Timestamp ts;
  friend bool operator==(const SubscriptionActivityMeta& a, const SubscriptionActivityMeta& b) {
    if (a.ts != b.ts || a.activity.size() != b.activity.size()) return false;
    for (std::size_t i = 0; i < a.activity.size(); ++i) {
      if (!(a.activity[i] == b.activity[i]) || a.activity[i].server() != b.activity[i].server()) return false;
    }
    return true;
  }
};

// A meta type this version does not know; its JSON is kept verbatim.
struct UnknownMeta {
  std::string type;
  std::string json;  // the payload text exactly as read
  friend bool operator==(const UnknownMeta&, const UnknownMeta&) = default;
};

using MetaEvent = std::variant<CreatedMeta, ChildStreamCreatedMeta, RotatedMeta, SubscribedMeta, UnsubscribedMeta,
                               SubscriptionActivityMeta, UnknownMeta>;

// "Created", "Rotated", ... (the type of an UnknownMeta for those).
std::string_view meta_type(const MetaEvent& e);
// The compact JSON payload (fields in SPEC order).
std::string meta_payload_json(const MetaEvent& e);
// The whole raw line: "/<Type> <json>\n".
std::string encode_meta_line(const MetaEvent& e);

// Interprets a parsed meta line. Known types are checked strictly (every
// field present with the right type, no unknown field); an unknown type
// becomes UnknownMeta with `json_text` kept as is.
[[nodiscard]] Result<MetaEvent> parse_meta(std::string_view type, std::string_view json_text,
                                           const boost::json::object& payload);

// True if `type` is a valid meta type name: [A-Za-z]+, at most 64 bytes.
bool is_valid_meta_type(std::string_view type);

}  // namespace horizon
