#include "core/stream_name.h"

#include "core/text.h"

#include <fmt/format.h>

namespace horizon {
namespace {

Error bad(std::string_view text, std::string what) {
  std::string shown = printable_excerpt(text, 80);
  return Error::make(errc::invalid_stream_name,
                     fmt::format("invalid stream name \"{}\": {}", shown, what));
}

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

}  // namespace

Result<StreamName> StreamName::parse(std::string_view text) {
  if (text.empty()) return bad(text, "empty (the root stream is \"/\")");
  if (text.size() > kMaxStreamNameBytes) {
    return bad(text, fmt::format("{} bytes, at most {} allowed", text.size(), kMaxStreamNameBytes));
  }
  if (text.front() != '/') return bad(text, "must start with '/'");
  if (text == "/") return StreamName();
  if (text.back() == '/') return bad(text, "must not end with '/'");

  std::size_t seg_start = 1;
  for (std::size_t i = 1; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '/') {
      if (!is_segment_char(text[i])) {
        return bad(text, fmt::format("{} at byte {} is not allowed (segments use A-Z a-z 0-9 _ - . @ = +)",
                                     describe_char(text[i]), i));
      }
      continue;
    }
    std::string_view seg = text.substr(seg_start, i - seg_start);
    if (seg.empty()) return bad(text, fmt::format("empty segment at byte {}", seg_start));
    if (seg.size() > kMaxSegmentBytes) {
      return bad(text, fmt::format("segment at byte {} has {} characters, at most {} allowed", seg_start,
                                   seg.size(), kMaxSegmentBytes));
    }
    if (seg == "." || seg == "..") return bad(text, fmt::format("segment \"{}\" is not allowed", seg));
    seg_start = i + 1;
  }
  return StreamName(std::string(text));
}

StreamName StreamName::parent() const {
  if (is_root()) return *this;
  auto pos = name_.rfind('/');
  if (pos == 0) return StreamName();
  return StreamName(name_.substr(0, pos));
}

std::string_view StreamName::last_segment() const {
  if (is_root()) return {};
  return std::string_view(name_).substr(name_.rfind('/') + 1);
}

Result<StreamName> StreamName::child(std::string_view segment) const {
  std::string joined = is_root() ? std::string("/") : name_ + "/";
  if (segment.find('/') != std::string_view::npos) {
    return bad(joined.append(segment), "a child segment must not contain '/'");
  }
  joined.append(segment);
  return parse(joined);
}

bool StreamName::is_parent_of(const StreamName& other) const {
  return !other.is_root() && other.parent() == *this;
}

bool StreamName::is_subscription() const {
  return name_.size() > kSubscriptionsParent.size() + 1 && name_.starts_with(kSubscriptionsParent) &&
         name_[kSubscriptionsParent.size()] == '/';
}

std::string StreamName::relative_path() const {
  if (is_root()) return "s";
  return "s" + name_;
}

}  // namespace horizon
