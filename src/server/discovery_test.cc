// Golden tests: docs/format/discovery.md and docs/format/history-mark.md.
// The discovery document's example record
// parses, and serializing it gives the same bytes (so the document shows
// exactly what the Writer writes); each row of its refusal table, applied to
// the example, is refused with the reason the table gives. Plus the record
// the Writer publishes parses back.

#include "server/discovery.h"

#include "core/golden_doc.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace horizon::server {
namespace {

namespace json = boost::json;

std::string read_doc() { return golden::read_source_file("docs/format/discovery.md"); }

std::string section(const std::string& doc, const std::string& name) { return golden::section(doc, name); }

// "`text`" -> "text"; other cells as they are.
std::string unquote(std::string cell) {
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') return cell.substr(1, cell.size() - 2);
  return cell;
}

std::vector<std::vector<std::string>> table_rows(const std::string& table) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(table);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (n++ < 2) continue;  // header and separator
    std::vector<std::string> cells;
    std::size_t pos = 1;
    while (pos < line.size()) {
      // Cells are split at " | " (values never contain it).
      auto end = line.find(" |", pos);
      if (end == std::string::npos) break;
      std::string cell = line.substr(pos, end - pos);
      cell.erase(0, cell.find_first_not_of(' '));
      cells.push_back(unquote(cell));
      pos = end + 2;
    }
    rows.push_back(cells);
  }
  return rows;
}

TEST(DiscoveryDoc, TheExampleIsWhatTheWriterWrites) {
  const std::string doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/format/discovery.md not found";
  const std::string example = section(doc, "record");
  auto r = parse_discovery(example);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->writer_id, "3f9a1c07d2e85b64");
  EXPECT_EQ(r->api, "writer.example.com:9092");
  EXPECT_EQ(r->pubsub, "writer.example.com:9091");
  EXPECT_EQ(r->ca_pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_EQ(r->ca_sha256, "538444f0bda13609a024c77659d20fd189ff1a379fc7a2388e971a8dee7791c4");
  EXPECT_EQ(r->updated, "2026-11-29T05:22:41.318Z");
  EXPECT_EQ(serialize_discovery(*r), example);
}

// Each row of a refusal table ("field | value | reason"), applied to the
// example: `parse` refuses it as corruption with "<prefix><reason>".
template <typename Parse>
void check_refusal_table(const std::string& doc, const std::string& example_section, Parse parse,
                         const std::string& prefix, std::size_t min_rows) {
  const json::object example = json::parse(section(doc, example_section)).as_object();
  const auto rows = table_rows(section(doc, "refusals"));
  ASSERT_GE(rows.size(), min_rows);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 3u);
    json::object o = example;
    if (row[1] == "absent") {
      o.erase(row[0]);
    } else {
      o[row[0]] = json::parse(row[1]);
    }
    auto r = parse(json::serialize(o) + "\n");
    ASSERT_FALSE(r) << row[0] << " = " << row[1];
    EXPECT_EQ(r.error().code, errc::corruption);
    EXPECT_EQ(r.error().message, prefix + row[2]) << row[0] << " = " << row[1];
  }
}

TEST(DiscoveryDoc, EveryRefusalOfTheTable) {
  check_refusal_table(read_doc(), "record", parse_discovery, "discovery record: ", 10);
}

// docs/format/history-mark.md
TEST(HistoryMarkDoc, TheExampleIsWhatTheShipperWrites) {
  const std::string doc = golden::read_source_file("docs/format/history-mark.md");
  ASSERT_FALSE(doc.empty()) << "docs/format/history-mark.md not found";
  const std::string example = section(doc, "mark");
  auto m = parse_history_mark(example);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(*m, (HistoryMark{"3f9a1c07d2e85b64", 27, "2026-11-29T16:15:39.469Z"}));
  EXPECT_EQ(serialize_history_mark(*m), example);
  check_refusal_table(doc, "mark", parse_history_mark, "history mark: ", 8);
}

TEST(HistoryMark, TheWholeCommitRangeUnknownFieldsAndTooLong) {
  for (std::uint64_t commit : {std::uint64_t{0}, std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
    const HistoryMark m{"0123456789abcdef", commit, "2026-11-29T16:15:39.469Z"};
    auto back = parse_history_mark(serialize_history_mark(m));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, m);
  }
  auto later = parse_history_mark(
      R"({"writer_id":"0123456789abcdef","commit":5,"updated":"2026-11-29T16:15:39.469Z","later":[1]})");
  ASSERT_TRUE(later) << later.error().message;
  EXPECT_EQ(later->commit, 5u);
  EXPECT_EQ(parse_history_mark("[]").error().message, "history mark: not a JSON object");
  std::string padded(kMaxHistoryBytes + 1, ' ');
  EXPECT_EQ(parse_history_mark(padded).error().message, "history mark: 4097 bytes (at most 4096)");
}

TEST(Discovery, RefusesWhatIsNotAnObjectAndWhatIsTooLong) {
  const std::string example = section(read_doc(), "record");
  for (const char* bad : {"", "[]", "\"x\"", "{\"writer_id\":", "null"}) {
    auto r = parse_discovery(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::corruption);
  }
  EXPECT_EQ(parse_discovery("[]").error().message, "discovery record: not a JSON object");
  EXPECT_EQ(parse_discovery("{").error().message.rfind("discovery record: not JSON (", 0), 0u);
  std::string padded = example;
  padded.insert(1, "\"pad\":\"" + std::string(kMaxDiscoveryBytes, 'x') + "\",");
  auto r = parse_discovery(padded);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("at most 65536"), std::string::npos) << r.error().message;
}

TEST(Discovery, UnknownFieldsAndAnEmptyPubsubAreAccepted) {
  json::object o = json::parse(section(read_doc(), "record")).as_object();
  o["later"] = json::array{1, 2};
  o["pubsub"] = "";
  auto r = parse_discovery(json::serialize(o));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pubsub, "");
}

TEST(Discovery, AnIpv6ApiAddressIsAccepted) {
  json::object o = json::parse(section(read_doc(), "record")).as_object();
  o["api"] = "[::1]:9092";
  auto r = parse_discovery(json::serialize(o));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->api, "[::1]:9092");
}

}  // namespace
}  // namespace horizon::server
