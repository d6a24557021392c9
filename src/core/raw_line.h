#pragma once
// The raw line format of chunk files (SPEC §4, v1-compatible; documented with
// a golden example in docs/format/raw-lines.md):
//   regular line: ' ' + content + '\n'
//   meta line:    '/' + Type + ' ' + compact JSON object + '\n'
// Any other first byte is an error.
//
// Thread-safety: values; pure functions.

#include "core/errc.h"
#include "core/meta.h"

#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace horizon {

// Limits on what an application may append (SPEC §5 / RELIABILITY E2).
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;  // content bytes, without framing
inline constexpr std::size_t kMaxLinesPerAppend = 10'000;

// Checks an application line: at most kMaxLineBytes, valid UTF-8, and no
// '\n', '\r' or NUL. `index` is the line's position in its request and
// appears in the error message.
[[nodiscard]] Result<void> validate_line_content(std::string_view content, std::size_t index);

// " <content>\n". The content must already be valid (validate_line_content).
std::string encode_regular_line(std::string_view content);

// One parsed raw line.
struct RawLine {
  std::string meta_type;  // empty for a regular line
  std::string content;    // the regular content, or the meta line's JSON text
  std::optional<boost::json::object> payload;  // the parsed JSON of a meta line

  bool is_meta() const { return !meta_type.empty(); }
  // The typed event of a meta line (UnknownMeta for unknown types).
  [[nodiscard]] Result<MetaEvent> meta() const;
  // The line re-encoded, with its '\n'.
  std::string encode() const;
};

// Parses one raw line given without its trailing '\n'. A meta line must have
// a [A-Za-z]+ type, one space, and a JSON object; a regular line's content
// must be valid (no '\r', NUL, invalid UTF-8).
[[nodiscard]] Result<RawLine> parse_raw_line(std::string_view line);

// Iterates the '\n'-terminated lines of a buffer. A final fragment without
// '\n' is not a line (it is reported by `rest`).
class RawLineSplitter {
 public:
  explicit RawLineSplitter(std::string_view buffer) : buf_(buffer) {}
  // The next line without its '\n', or nullopt at the end.
  std::optional<std::string_view> next();
  // Bytes consumed so far (the offset just after the last returned '\n').
  std::size_t consumed() const { return pos_; }
  // The unterminated remainder.
  std::string_view rest() const { return buf_.substr(pos_); }

 private:
  std::string_view buf_;
  std::size_t pos_ = 0;
};

}  // namespace horizon
