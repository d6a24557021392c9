#include "core/cursor.h"

#include <gtest/gtest.h>

namespace horizon {
namespace {

TEST(Cursor, SpecExamplesRoundTrip) {
  for (const char* s : {"/:0:0", "/tenants/acme:3:10534:127.0.0.1", "/_sub/app:0:0:?",
                        "/a:9223372036854775807:9223372036854775807"}) {
    auto c = Cursor::parse(s);
    ASSERT_TRUE(c) << s << ": " << c.error().message;
    EXPECT_EQ(c->to_string(), s);
  }
  auto c = Cursor::parse("/tenants/acme:3:10534:127.0.0.1").value();
  EXPECT_EQ(c.stream().str(), "/tenants/acme");
  EXPECT_EQ(c.chunk(), 3);
  EXPECT_EQ(c.offset(), 10534);
  EXPECT_EQ(c.server(), "127.0.0.1");
}

TEST(Cursor, RejectsMalformed) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "expected <stream>"},
      {"/a", "expected <stream>"},
      {"/a:0", "expected <stream>"},
      {"/a:0:0:x:y", "too many"},
      {"a:0:0", "must start with '/'"},
      {"/a:-1:0", "non-digit"},
      {"/a:-1:-1", "non-digit"},  // only the offset query accepts it
      {"/a:+1:0", "non-digit"},
      {"/a: 1:0", "non-digit"},
      {"/a:1 :0", "non-digit"},
      {"/a:0x10:0", "non-digit"},
      {"/a:1e3:0", "non-digit"},
      {"/a::0", "chunk is empty"},
      {"/a:0:", "offset is empty"},
      {"/a:01:0", "leading zero"},
      {"/a:0:9223372036854775808", "larger than"},
      {"/a:18446744073709551616:0", "larger than"},
      {"/a:0:0:", "server hint is empty"},
      {"/a:0:0:my host", "server hint contains"},
      {"/a b:0:0", "invalid stream name"},
  };
  for (const auto& [text, part] : cases) {
    auto c = Cursor::parse(text);
    ASSERT_FALSE(c) << "accepted: " << text;
    EXPECT_EQ(c.error().code, errc::invalid_cursor);
    EXPECT_NE(c.error().message.find(part), std::string::npos) << c.error().message;
  }
}

TEST(Cursor, OffsetQueryOnlyWhereAllowed) {
  auto q = Cursor::parse_offset_query("/_sub/x:-1:-1");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->is_offset_query());
  EXPECT_EQ(q->to_string(), "/_sub/x:-1:-1");
  EXPECT_EQ(Cursor::offset_query(StreamName::parse("/a").value()).to_string(), "/a:-1:-1");
  EXPECT_FALSE(Cursor::parse_offset_query("/a:-1:0"));
  EXPECT_FALSE(Cursor::parse_offset_query("/a:0:-1"));
  EXPECT_TRUE(Cursor::parse_offset_query("/a:3:4"));
}

TEST(Cursor, BeginningNextChunkAndCompare) {
  auto a = StreamName::parse("/a").value();
  EXPECT_EQ(Cursor::beginning(a).to_string(), "/a:0:0:?");
  EXPECT_TRUE(Cursor::beginning(a).is_beginning());
  auto c = Cursor::parse("/a:3:100:h").value();
  EXPECT_EQ(c.next_chunk().to_string(), "/a:4:0:h");
  EXPECT_EQ(c.with_offset(7).to_string(), "/a:3:7:h");

  auto lt = [](const char* x, const char* y) {
    return Cursor::parse(x).value().compare(Cursor::parse(y).value()).value() < 0;
  };
  EXPECT_TRUE(lt("/a:0:5", "/a:0:6"));
  EXPECT_TRUE(lt("/a:0:999", "/a:1:0"));
  EXPECT_FALSE(lt("/a:1:0", "/a:0:999"));
  // The server hint is ignored by equality and ordering.
  EXPECT_EQ(Cursor::parse("/a:1:2:x").value(), Cursor::parse("/a:1:2").value());
  EXPECT_TRUE(Cursor::parse("/a:1:2:x").value().compare(Cursor::parse("/a:1:2:?").value()).value() == 0);
  auto diff = Cursor::parse("/a:0:0").value().compare(Cursor::parse("/b:0:0").value());
  ASSERT_FALSE(diff);
  EXPECT_EQ(diff.error().code, errc::invalid_cursor);
}

TEST(ParseNonNegative, Boundaries) {
  EXPECT_EQ(parse_non_negative("0", "n").value(), 0);
  EXPECT_EQ(parse_non_negative("9223372036854775807", "n").value(), INT64_MAX);
  EXPECT_FALSE(parse_non_negative("9223372036854775808", "n"));
  EXPECT_FALSE(parse_non_negative("99999999999999999999999", "n"));
  EXPECT_FALSE(parse_non_negative("00", "n"));
}

}  // namespace
}  // namespace horizon
