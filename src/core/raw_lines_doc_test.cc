// Golden test: the worked example of docs/format/raw-lines.md, produced by
// the encoder, must equal the document byte for byte, and parsing it back
// must give the cursors of the document's table.

#include "core/golden_doc.h"
#include "core/meta.h"
#include "core/raw_line.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace horizon {
namespace {

std::string read_doc() { return golden::read_source_file("docs/format/raw-lines.md"); }

std::string section(const std::string& doc, const std::string& name) { return golden::section(doc, name); }

Timestamp ts(const char* s) { return Timestamp::parse(s).value(); }
StreamName name(const char* s) { return StreamName::parse(s).value(); }
Cursor cur(const char* s) { return Cursor::parse(s).value(); }

TEST(RawLinesDoc, WorkedChunkIsByteExact) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/format/raw-lines.md not found";
  std::string chunk;
  chunk += encode_meta_line(CreatedMeta{{name("/_sub/billing")}, ts("2017-03-31T11:09:00.643Z")});
  chunk += encode_regular_line(R"({"type":"UserCreated","id":"u1","name":"Ada"})");
  chunk += encode_regular_line(R"({"type":"UserRenamed","id":"u1","name":"Ada L."})");
  chunk += encode_meta_line(SubscribedMeta{name("/_sub/audit"), ts("2017-03-31T11:09:05.000Z")});
  chunk += encode_meta_line(RotatedMeta{cur("/tenants/acme:1:0:127.0.0.1"), ts("2017-03-31T11:10:00.000Z")});
  EXPECT_EQ(section(doc, "chunk"), chunk);

  EXPECT_EQ(section(doc, "next-chunk"),
            encode_meta_line(CreatedMeta{{name("/_sub/billing"), name("/_sub/audit")}, ts("2017-03-31T11:10:00.000Z")}));

  std::string other;
  other += encode_meta_line(ChildStreamCreatedMeta{name("/tenants/acme"), cur("/tenants/acme:0:0:127.0.0.1"),
                                                   ts("2017-03-31T11:08:59.001Z")});
  other += encode_meta_line(UnsubscribedMeta{name("/_sub/audit"), ts("2017-03-31T11:12:00.000Z")});
  other += encode_meta_line(SubscriptionActivityMeta{
      {cur("/tenants/acme:0:177:127.0.0.1"), cur("/tenants/beta:2:40:127.0.0.1")}, ts("2017-03-31T11:09:05.000Z")});
  EXPECT_EQ(section(doc, "other-meta"), other);
}

TEST(RawLinesDoc, CursorTableMatchesParsedChunk) {
  const std::string doc = read_doc();
  const std::string chunk = section(doc, "chunk");
  // Walk the chunk as a reader does: offsets after each line, and the
  // Rotated line moves to the next chunk.
  std::vector<std::string> computed;
  RawLineSplitter split(chunk);
  Cursor at = Cursor::parse("/tenants/acme:0:0").value();
  while (auto line = split.next()) {
    auto raw = parse_raw_line(*line);
    ASSERT_TRUE(raw) << raw.error().message;
    at = at.with_offset(static_cast<std::int64_t>(split.consumed()));
    if (raw->meta_type == "Rotated") {
      auto m = raw->meta();
      ASSERT_TRUE(m);
      at = Cursor(std::get<RotatedMeta>(*m).next.stream(), std::get<RotatedMeta>(*m).next.chunk(), 0);
    }
    computed.push_back(at.to_string());
  }
  EXPECT_TRUE(split.rest().empty());

  std::vector<std::string> documented;
  std::istringstream table(section(doc, "cursors"));
  std::string row;
  while (std::getline(table, row)) {
    const auto tick = row.find('`', row.rfind('|', row.size() - 2));
    if (tick == std::string::npos || row.find("cursor after") != std::string::npos) continue;
    documented.push_back(row.substr(tick + 1, row.find('`', tick + 1) - tick - 1));
  }
  EXPECT_EQ(computed, documented);
}

}  // namespace
}  // namespace horizon
