#pragma once
// Small text helpers shared by the parsers: UTF-8 validation and printable
// excerpts of untrusted input for error messages.
//
// Thread-safety: pure functions.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace horizon {

// The byte index of the first byte of the first invalid UTF-8 sequence in
// `s` (overlong forms, surrogates, code points above U+10FFFF and truncated
// sequences are invalid), or nullopt if `s` is valid UTF-8.
std::optional<std::size_t> find_invalid_utf8(std::string_view s);

inline bool is_valid_utf8(std::string_view s) { return !find_invalid_utf8(s).has_value(); }

// The end of the run of ASCII bytes (< 0x80) starting at `from`.
std::size_t ascii_prefix(std::string_view s, std::size_t from);

// The index of the first '\n', '\r' or NUL byte in `s`, or npos.
std::size_t find_line_break_or_nul(std::string_view s);

// At most `max_bytes` of `s` with every byte outside printable ASCII, '"'
// and '\\' shown as \xNN, and "..." when cut. Safe to embed in messages.
std::string printable_excerpt(std::string_view s, std::size_t max_bytes = 80);

// Splits "host:port" or "[v6]:port" (brackets removed); the host must not be
// empty, the port is 1-5 digits of 0..65535. false (outputs unspecified)
// otherwise.
bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port);

// `s` with A-Z lowered, every other byte as it is (HTTP field names,
// SigV4 header names): no locale.
std::string ascii_lower(std::string_view s);

// Appends the decimal digits of `v` to `out` (no locale, no temporary).
template <class Int>
void append_decimal(std::string& out, Int v) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
}

}  // namespace horizon
