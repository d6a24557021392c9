#pragma once
// Stream names (SPEC §2): "/" or one or more "/segment"; a segment is 1-128
// characters of [A-Za-z0-9_.@=+-], never "." or ".."; at most 1024 bytes.
//
// `StreamName` can only hold a valid name: construct it with `parse`.
// Thread-safety: values; all functions are pure.

#include "core/errc.h"

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>

namespace horizon {

inline constexpr std::size_t kMaxStreamNameBytes = 1024;
inline constexpr std::size_t kMaxSegmentBytes = 128;
inline constexpr std::string_view kRootStream = "/";
inline constexpr std::string_view kSubscriptionsParent = "/_sub";

class StreamName {
 public:
  // The root stream "/".
  StreamName() : name_(kRootStream) {}

  // Validates `text` exactly as SPEC §2; the error message names the rule
  // that failed and the offending position.
  [[nodiscard]] static Result<StreamName> parse(std::string_view text);

  static StreamName root() { return StreamName(); }

  const std::string& str() const { return name_; }
  bool is_root() const { return name_.size() == 1; }

  // The parent ("/a" for "/a/b", "/" for "/a"); the root has no parent and
  // returns itself.
  StreamName parent() const;
  // The last segment ("b" for "/a/b"; empty for the root).
  std::string_view last_segment() const;
  // `this` + "/" + `segment`; fails if the segment or the result is invalid.
  [[nodiscard]] Result<StreamName> child(std::string_view segment) const;
  // True if `this` is `other`'s parent.
  bool is_parent_of(const StreamName& other) const;

  // A subscription stream is any stream strictly under /_sub (SPEC §1).
  bool is_subscription() const;

  // A relative path for this stream's files or store keys: "s" for the root,
  // "s/<seg1>/<seg2>..." otherwise. Injective (distinct names give distinct
  // paths), never absolute, never contains "." or ".." components, and never
  // collides with the names a stream directory holds for itself: those start
  // with '~', a character no segment may contain.
  std::string relative_path() const;

  friend bool operator==(const StreamName&, const StreamName&) = default;
  friend auto operator<=>(const StreamName&, const StreamName&) = default;

 private:
  explicit StreamName(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// True for the characters SPEC §2 allows inside a segment.
constexpr bool is_segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '@' || c == '=' || c == '+';
}

}  // namespace horizon
