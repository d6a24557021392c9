#include "core/raw_line.h"

#include "core/json_internal.h"
#include "core/text.h"

#include <fmt/format.h>

namespace horizon {

Result<void> validate_line_content(std::string_view content, std::size_t index) {
  if (content.size() > kMaxLineBytes) {
    return Error::make(errc::line_too_long,
                       fmt::format("line {} has {} bytes, at most {} allowed", index, content.size(), kMaxLineBytes));
  }
  if (const std::size_t i = find_line_break_or_nul(content); i != std::string_view::npos) {
    const char c = content[i];
    const char* what = c == '\n' ? "a newline (\\n)" : c == '\r' ? "a carriage return (\\r)" : "a NUL byte";
    return Error::make(errc::invalid_line, fmt::format("line {} contains {} at byte {}", index, what, i));
  }
  if (auto bad = find_invalid_utf8(content)) {
    return Error::make(errc::invalid_line, fmt::format("line {} is not valid UTF-8 (at byte {})", index, *bad));
  }
  return {};
}

std::string encode_regular_line(std::string_view content) {
  std::string out;
  out.reserve(content.size() + 2);
  out += ' ';
  out += content;
  out += '\n';
  return out;
}

Result<RawLine> parse_raw_line(std::string_view line) {
  if (line.empty()) return Error::make(errc::invalid_raw_line, "empty raw line (expected ' ' or '/' first)");
  if (line.front() == ' ') {
    auto content = line.substr(1);
    if (auto ok = validate_line_content(content, 0); !ok) {
      return Error::make(errc::invalid_raw_line, "regular " + ok.error().message);
    }
    return RawLine{{}, std::string(content), std::nullopt};
  }
  if (line.front() != '/') {
    return Error::make(errc::invalid_raw_line,
                       fmt::format("raw line starts with \"{}\" (expected ' ' or '/')",
                                   printable_excerpt(line.substr(0, 1))));
  }
  const auto space = line.find(' ');
  if (space == std::string_view::npos) {
    return Error::make(errc::invalid_raw_line, "meta line has no space between its type and its JSON");
  }
  const auto type = line.substr(1, space - 1);
  if (!is_valid_meta_type(type)) {
    return Error::make(errc::invalid_raw_line, fmt::format("meta type \"{}\" is not 1-64 letters A-Z a-z",
                                                           printable_excerpt(type, 64)));
  }
  const auto json_text = line.substr(space + 1);
  auto obj = detail::parse_object(json_text, fmt::format("/{} meta line", type), errc::invalid_raw_line);
  if (!obj) return obj.error();
  return RawLine{std::string(type), std::string(json_text), std::move(*obj)};
}

Result<MetaEvent> RawLine::meta() const {
  if (!is_meta() || !payload) return Error::make(errc::invalid_meta, "not a meta line");
  return parse_meta(meta_type, content, *payload);
}

std::string RawLine::encode() const {
  if (!is_meta()) return encode_regular_line(content);
  return "/" + meta_type + " " + content + "\n";
}

std::optional<std::string_view> RawLineSplitter::next() {
  const auto nl = buf_.find('\n', pos_);
  if (nl == std::string_view::npos) return std::nullopt;
  auto line = buf_.substr(pos_, nl - pos_);
  pos_ = nl + 1;
  return line;
}

}  // namespace horizon
