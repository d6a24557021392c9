#include "core/cursor.h"

#include "core/text.h"

#include <fmt/format.h>

#include <limits>

namespace horizon {
namespace {

Error bad(std::string_view text, std::string_view what) {
  std::string shown = printable_excerpt(text, 120);
  return Error::make(errc::invalid_cursor, fmt::format("invalid cursor \"{}\": {}", shown, what));
}

}  // namespace

Result<std::int64_t> parse_non_negative(std::string_view text, std::string_view what) {
  if (text.empty()) return Error::make(errc::invalid_argument, fmt::format("{} is empty", what));
  for (char c : text) {
    if (c < '0' || c > '9') {
      return Error::make(errc::invalid_argument,
                         fmt::format("{} must be a decimal integer >= 0 (found a non-digit)", what));
    }
  }
  if (text.size() > 1 && text[0] == '0') {
    return Error::make(errc::invalid_argument, fmt::format("{} has a leading zero", what));
  }
  std::uint64_t v = 0;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (char c : text) {
    auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (kMax - d) / 10) {
      return Error::make(errc::invalid_argument, fmt::format("{} is larger than {}", what, kMax));
    }
    v = v * 10 + d;
  }
  return static_cast<std::int64_t>(v);
}

Cursor::Cursor(StreamName stream, std::int64_t chunk, std::int64_t offset, std::string server)
    : stream_(std::move(stream)), chunk_(chunk), offset_(offset), server_(std::move(server)) {}

Result<Cursor> Cursor::parse(std::string_view text) { return parse_impl(text, false); }

Result<Cursor> Cursor::parse_offset_query(std::string_view text) { return parse_impl(text, true); }

Result<Cursor> Cursor::parse_impl(std::string_view text, bool allow_query) {
  // Split on ':'; a stream name never contains ':'.
  std::string_view fields[5];
  std::size_t n = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ':') {
      if (n == 5) return bad(text, "too many ':'-separated fields (at most 4)");
      fields[n++] = text.substr(start, i - start);
      start = i + 1;
    }
  }
  if (n < 3) return bad(text, "expected <stream>:<chunk>:<offset>[:<server>]");
  if (n > 4) return bad(text, "too many ':'-separated fields (at most 4)");

  auto stream = StreamName::parse(fields[0]);
  if (!stream) return bad(text, stream.error().message);

  std::int64_t num[2];
  const bool is_query = allow_query && fields[1] == "-1" && fields[2] == "-1";
  if (is_query) {
    num[0] = num[1] = -1;
  } else {
    for (int k = 0; k < 2; ++k) {
      auto v = parse_non_negative(fields[1 + k], k == 0 ? "chunk" : "offset");
      if (!v) return bad(text, v.error().message);
      num[k] = *v;
    }
  }

  std::string server;
  if (n == 4) {
    std::string_view s = fields[3];
    if (s.empty()) return bad(text, "server hint is empty (omit it, or use \"?\")");
    if (s.size() > 255) return bad(text, "server hint longer than 255 bytes");
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) return bad(text, "server hint contains a space, control or non-ASCII byte");
    }
    server = std::string(s);
  }
  return Cursor(std::move(*stream), num[0], num[1], std::move(server));
}

Cursor Cursor::beginning(const StreamName& stream) { return Cursor(stream, 0, 0, std::string(kUnknownServer)); }

Cursor Cursor::offset_query(const StreamName& stream) { return Cursor(stream, -1, -1); }

Cursor Cursor::next_chunk() const { return Cursor(stream_, chunk_ + 1, 0, server_); }

Cursor Cursor::with_server(std::string server) const { return Cursor(stream_, chunk_, offset_, std::move(server)); }

Cursor Cursor::with_offset(std::int64_t offset) const { return Cursor(stream_, chunk_, offset, server_); }

std::string Cursor::to_string() const {
  std::string out;
  append_to(out);
  return out;
}

void Cursor::append_to(std::string& out) const {
  const std::string& stream = stream_.str();
  out.reserve(out.size() + stream.size() + server_.size() + 2 * 20 + 3);  // two int64s at most
  out.append(stream).append(1, ':');
  append_decimal(out, chunk_);
  out.append(1, ':');
  append_decimal(out, offset_);
  if (!server_.empty()) out.append(1, ':').append(server_);
}

Result<std::strong_ordering> Cursor::compare(const Cursor& other) const {
  if (stream_ != other.stream_) {
    return Error::make(errc::invalid_cursor, fmt::format("cannot compare cursors of different streams ({} and {})",
                                                         stream_.str(), other.stream_.str()));
  }
  if (auto c = chunk_ <=> other.chunk_; c != 0) return c;
  return offset_ <=> other.offset_;
}

}  // namespace horizon
