#include "core/raw_line.h"

#include <gtest/gtest.h>

namespace horizon {
namespace {

TEST(RawLine, RegularLineRoundTrip) {
  EXPECT_EQ(encode_regular_line(R"({"type":"UserCreated"})"), " {\"type\":\"UserCreated\"}\n");
  auto r = parse_raw_line(R"( {"type":"UserCreated"})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->is_meta());
  EXPECT_EQ(r->content, R"({"type":"UserCreated"})");
  EXPECT_FALSE(r->payload.has_value());
  EXPECT_EQ(r->encode(), " {\"type\":\"UserCreated\"}\n");
  // An empty regular line is a line.
  EXPECT_TRUE(parse_raw_line(" "));
  // A regular line may contain anything printable, including '/' and spaces.
  EXPECT_EQ(parse_raw_line("  /Created {}").value().content, " /Created {}");
}

TEST(RawLine, MetaLineParses) {
  auto r = parse_raw_line(R"(/Created {"subscription_ids":[],"ts":"2017-03-31T11:09:00.643Z"})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_meta());
  EXPECT_EQ(r->meta_type, "Created");
  EXPECT_EQ(r->content, R"({"subscription_ids":[],"ts":"2017-03-31T11:09:00.643Z"})");
  ASSERT_TRUE(r->payload);
  EXPECT_EQ(r->payload->at("ts").as_string(), "2017-03-31T11:09:00.643Z");
}

TEST(RawLine, RejectsMalformed) {
  const std::pair<std::string, const char*> cases[] = {
      {"", "empty raw line"},
      {"x", "starts with \"x\""},
      {"\t", "starts with \"\\x09\""},
      {"/Created", "no space"},
      {"/ {}", "meta type \"\""},
      {"/Creat3d {}", "meta type \"Creat3d\""},
      {"/Created [1]", "expected a JSON object"},
      {"/Created {", "not valid JSON"},
      {"/Created {} x", "not valid JSON"},
      {" a\rb", "carriage return"},
      {std::string(" a\0b", 4), "NUL"},
      {" \xFF", "not valid UTF-8"},
  };
  for (const auto& [line, part] : cases) {
    auto r = parse_raw_line(line);
    ASSERT_FALSE(r) << "accepted: " << line;
    EXPECT_EQ(r.error().code, errc::invalid_raw_line);
    EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
  }
}

TEST(RawLine, JsonWhitespaceIsAccepted) {
  // JSON allows whitespace around the object; v1 data has such lines.
  EXPECT_TRUE(parse_raw_line("/Created  {} "));
}

TEST(RawLine, ValidateLineContentNamesTheIndex) {
  EXPECT_TRUE(validate_line_content("hello", 0));
  auto nl = validate_line_content("a\nb", 7);
  ASSERT_FALSE(nl);
  EXPECT_EQ(nl.error().code, errc::invalid_line);
  EXPECT_NE(nl.error().message.find("line 7 contains a newline"), std::string::npos);
  auto utf = validate_line_content("ok\xC0\xAF", 3);
  ASSERT_FALSE(utf);
  EXPECT_NE(utf.error().message.find("line 3 is not valid UTF-8 (at byte 2)"), std::string::npos);
  // Size limit at N-1, N, N+1.
  EXPECT_TRUE(validate_line_content(std::string(kMaxLineBytes - 1, 'x'), 0));
  EXPECT_TRUE(validate_line_content(std::string(kMaxLineBytes, 'x'), 0));
  auto big = validate_line_content(std::string(kMaxLineBytes + 1, 'x'), 0);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, errc::line_too_long);
}

TEST(RawLine, SplitterReportsOffsetsAndRest) {
  RawLineSplitter s(" a\n/X {}\n b");
  EXPECT_EQ(s.next().value(), " a");
  EXPECT_EQ(s.consumed(), 3u);
  EXPECT_EQ(s.next().value(), "/X {}");
  EXPECT_EQ(s.consumed(), 9u);
  EXPECT_FALSE(s.next());
  EXPECT_EQ(s.rest(), " b");
}

}  // namespace
}  // namespace horizon
