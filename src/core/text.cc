#include "core/text.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>

namespace horizon {

std::size_t ascii_prefix(std::string_view s, std::size_t from) {
  std::size_t i = from;
  while (i + 8 <= s.size()) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if ((w & 0x8080808080808080ull) != 0) break;
    i += 8;
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

namespace {
// Non-zero iff some byte of `w` is zero (exact: no false positives).
constexpr std::uint64_t has_zero_byte(std::uint64_t w) {
  return (w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull;
}
}  // namespace

std::size_t find_line_break_or_nul(std::string_view s) {
  constexpr std::uint64_t kLf = 0x0a0a0a0a0a0a0a0aull, kCr = 0x0d0d0d0d0d0d0d0dull;
  std::size_t i = 0;
  while (i + 8 <= s.size()) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if ((has_zero_byte(w) | has_zero_byte(w ^ kLf) | has_zero_byte(w ^ kCr)) != 0) break;
    i += 8;
  }
  for (; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r' || s[i] == '\0') return i;
  }
  return std::string_view::npos;
}

std::optional<std::size_t> find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      i = ascii_prefix(s, i);  // most event text is ASCII: 8 bytes a step
      continue;
    }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3, lo = 0xA0;  // no overlong 3-byte forms
    } else if (c == 0xED) {
      len = 3, hi = 0x9F;  // no surrogates U+D800..U+DFFF
    } else if (c >= 0xE1 && c <= 0xEF) {
      len = 3;
    } else if (c == 0xF0) {
      len = 4, lo = 0x90;  // no overlong 4-byte forms
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4, hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::nullopt;
}

std::string printable_excerpt(std::string_view s, std::size_t max_bytes) {
  std::string out;
  for (char c : s.substr(0, max_bytes)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = std::string(text.substr(1, close - 1));
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(text.substr(0, colon));
    p = text.substr(colon + 1);
  }
  if (host.empty() || p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || end != p.data() + p.size() || v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace horizon
