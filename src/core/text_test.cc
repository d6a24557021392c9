#include "core/log_throttle.h"
#include "core/text.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include <random>
#include <string>

namespace horizon {
namespace {

// A second, independent decoder: decodes by the Unicode definition (code
// point value and minimal length), used as the differential oracle.
bool reference_valid(const unsigned char* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

TEST(Utf8, ExhaustiveOneToThreeBytesMatchReferenceDecoder) {
  // RELIABILITY E4: every 1-, 2- and 3-byte sequence (16.8M) agrees with an
  // independent decoder.
  std::size_t mismatches = 0, valid = 0;
  unsigned char buf[3];
  for (std::uint32_t v = 0; v < (1u << 24); ++v) {
    buf[0] = static_cast<unsigned char>(v >> 16);
    buf[1] = static_cast<unsigned char>(v >> 8);
    buf[2] = static_cast<unsigned char>(v);
    for (std::size_t len : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      if (len == 1 && (v & 0xFFFF) != 0) continue;
      if (len == 2 && (v & 0xFF) != 0) continue;
      std::string_view s(reinterpret_cast<const char*>(buf), len);
      const bool ours = is_valid_utf8(s);
      if (ours != reference_valid(buf, len)) ++mismatches;
      if (ours && len == 3) ++valid;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(valid, 0u);
}

TEST(Utf8, RandomFourByteSequencesMatchReferenceDecoder) {
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  std::size_t mismatches = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    unsigned char b[4];
    for (int k = 0; k < 4; ++k) b[k] = static_cast<unsigned char>(x >> (8 * k));
    if (i % 2 == 0) b[0] = static_cast<unsigned char>(0xF0 | (b[0] & 0x07));  // bias to 4-byte leads
    std::string_view s(reinterpret_cast<const char*>(b), 4);
    if (is_valid_utf8(s) != reference_valid(b, 4)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Utf8, NamedCases) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("héllo €𝄞"));
  EXPECT_EQ(find_invalid_utf8("ab\xC0\xAF"), 2u);      // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);    // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // U+110000
  EXPECT_EQ(find_invalid_utf8("x\xE2\x82"), 1u);       // truncated
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);            // lone continuation
}

// The word-at-a-time fast paths agree with byte-by-byte scans on strings
// that are mostly ASCII with a few special bytes at every alignment.
TEST(Utf8, FastPathsMatchByteByByteScans) {
  std::mt19937_64 rng(99);
  const unsigned char specials[] = {0x00, 0x0a, 0x0d, 0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9d, 0xff, 0x7f, 0x09};
  std::size_t mismatches = 0, cases = 0;
  for (int round = 0; round < 200000; ++round) {
    std::string s(rng() % 40, 'a');
    for (auto& c : s) c = static_cast<char>(0x20 + rng() % 0x5f);
    const int k = static_cast<int>(rng() % 3);
    for (int j = 0; j < k && !s.empty(); ++j) s[rng() % s.size()] = static_cast<char>(specials[rng() % sizeof specials]);
    ++cases;
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    if (is_valid_utf8(s) != reference_valid(b, s.size())) ++mismatches;
    std::size_t brk = std::string_view::npos;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r' || s[i] == '\0') {
        brk = i;
        break;
      }
    }
    if (find_line_break_or_nul(s) != brk) ++mismatches;
    std::size_t ascii = 0;
    while (ascii < s.size() && b[ascii] < 0x80) ++ascii;
    if (ascii_prefix(s, 0) != ascii) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u) << "of " << cases;
}

TEST(AsciiLower, LowersOnlyAToZ) {
  EXPECT_EQ(ascii_lower("Content-Type: X-AMZ-Date"), "content-type: x-amz-date");
  EXPECT_EQ(ascii_lower("\xc3\x89t\xc3\xa9 @[`{"), "\xc3\x89t\xc3\xa9 @[`{");  // UTF-8 and the bytes around A-Z untouched
}

TEST(AppendDecimal, AppendsDigitsOfAnyIntegerType) {
  std::string out = "n=";
  append_decimal(out, 0);
  out += ',';
  append_decimal(out, std::int64_t{-9223372036854775807} - 1);
  out += ',';
  append_decimal(out, std::uint64_t{18446744073709551615u});
  out += ',';
  append_decimal(out, 201u);
  EXPECT_EQ(out, "n=0,-9223372036854775808,18446744073709551615,201");
}

TEST(PrintableExcerpt, EscapesAndCuts) {
  EXPECT_EQ(printable_excerpt("a\"b\\c\n"), "a\\x22b\\x5cc\\x0a");
  EXPECT_EQ(printable_excerpt("abcdef", 3), "abc...");
}

TEST(LogThrottle, OncePerIntervalWithTheCountHeldBack) {
  using namespace std::chrono_literals;
  LogThrottle t(10s);
  const auto t0 = LogThrottle::Clock::time_point{} + 1h;
  EXPECT_EQ(t.admit(t0), 1u);  // the first one at once
  for (int i = 1; i <= 99; ++i) EXPECT_EQ(t.admit(t0 + i * 100ms), 0u);  // 99 in the next 9.9 s
  EXPECT_EQ(t.admit(t0 + 10s), 100u);  // those 99 and this one
  EXPECT_EQ(t.admit(t0 + 10s + 1ms), 0u);
  EXPECT_EQ(t.admit(t0 + 60s), 2u);  // after a quiet spell: at once
}

TEST(SplitHostPort, AcceptsNamesAddressesAndBracketedV6) {
  std::string host;
  std::uint16_t port = 1;
  ASSERT_TRUE(split_host_port("localhost:9092", host, port));
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 9092);
  ASSERT_TRUE(split_host_port("[::1]:0", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(split_host_port("10.0.0.1:65535", host, port));
  EXPECT_EQ(port, 65535);
}

TEST(SplitHostPort, RejectsWhatIsNotHostColonPort) {
  std::string host;
  std::uint16_t port = 0;
  for (const char* bad : {"", "9092", ":9092", "host:", "host:65536", "host:123456", "host:+1", "host:-1", "host:9x",
                          "host: 1", "[::1]", "[::1]9092", "[::1:9092", "[]:1"}) {
    EXPECT_FALSE(split_host_port(bad, host, port)) << bad;
  }
}

}  // namespace
}  // namespace horizon
