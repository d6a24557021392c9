#include "core/errc.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <vector>
#include <string>

namespace horizon {
namespace {

TEST(Errc, EveryEnumeratorHasExactlyOneRow) {
  ASSERT_EQ(all_errcs().size(), static_cast<std::size_t>(errc::internal));
  std::set<std::string_view> wire_codes;
  for (errc e : all_errcs()) {
    const ErrcInfo* row = find_info(e);
    ASSERT_NE(row, nullptr) << "errc " << static_cast<int>(e) << " has no row in the mapping table";
    EXPECT_EQ(row->code, e);
    EXPECT_FALSE(row->wire_code.empty());
    EXPECT_FALSE(row->description.empty());
    EXPECT_TRUE(wire_codes.insert(row->wire_code).second) << "duplicate wire code " << row->wire_code;
    EXPECT_GE(row->http_status, 400);
    EXPECT_LE(row->http_status, 599);
    for (char c : row->wire_code) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << row->wire_code;
  }
}

TEST(Errc, StatusesMatchSpecSection5) {
  EXPECT_EQ(info(errc::bad_json).http_status, 400);
  EXPECT_EQ(info(errc::invalid_line).http_status, 400);
  EXPECT_EQ(info(errc::subscription_loop).http_status, 400);
  EXPECT_EQ(info(errc::unauthorized).http_status, 401);
  EXPECT_EQ(info(errc::stream_not_found).http_status, 404);
  EXPECT_EQ(info(errc::parent_not_found).http_status, 404);
  EXPECT_EQ(info(errc::subscription_not_found).http_status, 404);
  EXPECT_EQ(info(errc::chunk_not_found).http_status, 404);
  EXPECT_EQ(info(errc::stream_exists).http_status, 409);
  EXPECT_EQ(info(errc::conflict).http_status, 409);
  EXPECT_EQ(info(errc::body_too_large).http_status, 413);
  EXPECT_EQ(info(errc::headers_too_large).http_status, 431);
  EXPECT_EQ(info(errc::not_ready).http_status, 503);
  EXPECT_EQ(info(errc::storage_failed).http_status, 503);
  EXPECT_EQ(info(errc::disk_full).http_status, 503);
}

TEST(Errc, JsonBodyHasErrorAndMessage) {
  Error e = Error::make(errc::stream_not_found, "no stream /a/\"b\"");
  auto v = boost::json::parse(e.to_json_body());
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.as_object().size(), 2u);
  EXPECT_EQ(v.at("error").as_string(), "stream_not_found");
  EXPECT_EQ(v.at("message").as_string(), "no stream /a/\"b\"");
  EXPECT_EQ(e.http_status(), 404);
}

TEST(Errc, EmptyMessageFallsBackToDescription) {
  Error e = Error::make(errc::unauthorized, "");
  EXPECT_EQ(e.to_json_body(), R"({"error":"unauthorized","message":"missing or wrong bearer token"})");
  EXPECT_EQ(e.to_string(), "unauthorized: missing or wrong bearer token");
}

TEST(Errc, ResultValueThrowsTheError) {
  Result<int> r = Error::make(errc::conflict, "x");
  EXPECT_FALSE(r.has_value());
  try {
    (void)r.value();
    FAIL() << "value() of an error must throw";
  } catch (const ErrorException& ex) {
    EXPECT_EQ(ex.error.code, errc::conflict);
  }
}

}  // namespace
}  // namespace horizon

namespace horizon {
namespace {

// docs/protocol/http-api.md lists every error code with its status and
// description; the table must match the code exactly.
TEST(Errc, HttpApiDocumentListsEveryCode) {
  std::ifstream in(std::string(HORIZON_SOURCE_DIR) + "/docs/protocol/http-api.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto start = doc.find("<!-- golden:errors -->");
  ASSERT_NE(start, std::string::npos);
  std::istringstream table(doc.substr(start, doc.find("\n\n", start) - start));
  std::string row, expected;
  std::vector<std::string> rows;
  while (std::getline(table, row)) {
    if (row.rfind("| `", 0) == 0) rows.push_back(row);
  }
  std::vector<std::string> want;
  for (errc e : all_errcs()) {
    const ErrcInfo& i = info(e);
    want.push_back("| `" + std::string(i.wire_code) + "` | " + std::to_string(i.http_status) + " | " +
                   std::string(i.description) + " |");
  }
  EXPECT_EQ(rows, want);
}

}  // namespace
}  // namespace horizon
