#pragma once
// Meta-line timestamps (SPEC §4): UTC with milliseconds,
// "2017-03-27T16:53:51.655Z". Years 0000-9999 only.
//
// Thread-safety: values; pure functions (`now` reads the system clock).

#include "core/errc.h"

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon {

struct Timestamp {
  std::int64_t unix_ms = 0;  // milliseconds since 1970-01-01T00:00:00Z

  static Timestamp now();
  // Strict: exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" with a real calendar date.
  [[nodiscard]] static Result<Timestamp> parse(std::string_view text);
  std::string to_string() const;

  friend auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

}  // namespace horizon
