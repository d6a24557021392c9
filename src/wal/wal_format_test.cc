// Golden test: the worked example of docs/format/wal.md, produced by the
// encoder, must equal the document byte for byte.

#include "core/meta.h"
#include "wal/coding.h"
#include "wal/log.h"
#include "wal/record_format.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace horizon::wal {
namespace {

std::string section_hex(const std::string& name) {
  std::ifstream in(std::string(HORIZON_SOURCE_DIR) + "/docs/format/wal.md", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto marker = doc.find("<!-- golden:" + name + " -->");
  if (marker == std::string::npos) return {};
  const auto start = doc.find("```\n", marker) + 4;
  const auto end = doc.find("```\n", start);
  std::string hex;
  for (char c : doc.substr(start, end - start)) {
    if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
  }
  return hex;
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return out;
}

TEST(WalFormatDoc, SegmentHeaderIsByteExact) {
  std::string payload(kSegmentMagic, sizeof kSegmentMagic);
  put_u32(payload, kFormatVersion);
  put_u64(payload, 1);
  put_u64(payload, 1);
  EXPECT_EQ(section_hex("segment-header"), to_hex(encode_record(RecordType::segment_header, payload)));
}

TEST(WalFormatDoc, CommitRecordIsByteExact) {
  const std::string created =
      encode_meta_line(CreatedMeta{{}, Timestamp::parse("2017-03-31T11:09:00.643Z").value()});
  ASSERT_EQ(created.size(), 65u);
  std::string payload;
  put_u64(payload, 1);  // commit number
  put_u32(payload, 2);  // operations
  put_u8(payload, 1);   // create stream
  put_u64(payload, 1);
  put_bytes(payload, "/");
  put_u8(payload, 2);  // chunk write
  put_u64(payload, 1);
  put_u64(payload, 0);
  put_u64(payload, 0);
  put_bytes(payload, created);
  EXPECT_EQ(section_hex("commit"), to_hex(encode_record(RecordType::commit, payload)));
}

}  // namespace
}  // namespace horizon::wal
