#include "core/store_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

namespace horizon {
namespace {

TEST(StoreKeys, ChunkKeyRoundTrips) {
  EXPECT_EQ(chunk_key(StreamName::parse("/tenants/acme").value(), 3), "chunks/s/tenants/acme/~00000000000000000003.ehc");
  EXPECT_EQ(chunk_key(StreamName::root(), 0), "chunks/s/~00000000000000000000.ehc");
  for (const char* n : {"/", "/a", "/a/b.c/d@e"}) {
    auto name = StreamName::parse(n).value();
    auto back = parse_chunk_key(chunk_key(name, 42));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(back->stream, name);
    EXPECT_EQ(back->chunk, 42u);
  }
  for (const char* bad : {"chunks/s/a/~1.ehc", "chunks/x/a/~00000000000000000001.ehc", "chunks/s/../~00000000000000000001.ehc",
                          "s/a/~00000000000000000001.ehc", "chunks/s/a/~0000000000000000000x.ehc"}) {
    EXPECT_FALSE(parse_chunk_key(bad)) << bad;
  }
}

// docs/format/chunk-object.md, "Store keys": a name whose key would pass
// S3's 1024-byte limit is stored under the SHA-256 of the name.
TEST(StoreKeys, LongNamesUseTheHashedFormWithinTheKeyLimit) {
  // Names of an exact byte length: segments of up to 128 "a".
  auto name_of = [](std::size_t bytes) {
    std::string n;
    while (n.size() < bytes) {
      const std::size_t left = bytes - n.size();
      const std::size_t seg = std::min<std::size_t>(128, left - 1);
      n += "/" + std::string(seg, 'a');
    }
    return StreamName::parse(n).value();
  };
  const auto at_limit = name_of(990);  // 7 + 1 + 990 + 2 + 20 + 4 = 1024
  EXPECT_EQ(chunk_key(at_limit, 7).size(), 1024u);
  EXPECT_TRUE(chunk_key(at_limit, 7).starts_with("chunks/s/"));
  ASSERT_TRUE(parse_chunk_key(chunk_key(at_limit, 7)));
  for (std::size_t bytes : {991u, 1000u, 1024u}) {
    const auto long_name = name_of(bytes);
    ASSERT_EQ(long_name.str().size(), bytes);
    const std::string key = chunk_key(long_name, 3);
    EXPECT_EQ(key.size(), 99u) << bytes;
    EXPECT_TRUE(key.starts_with("chunks/h/")) << key;
    EXPECT_TRUE(key.ends_with("/~00000000000000000003.ehc")) << key;
    EXPECT_FALSE(parse_chunk_key(key)) << key;
    // A plain key forged for the long name does not parse as that stream.
    EXPECT_FALSE(parse_chunk_key("chunks/s" + long_name.str() + "/~00000000000000000003.ehc"));
  }
  EXPECT_NE(chunk_key(name_of(1000), 0), chunk_key(name_of(1001), 0));
  // Golden: the example of docs/format/chunk-object.md (the 1,024-byte name
  // "/" + "a" x 127, repeated 8 times).
  std::string doc_name;
  for (int i = 0; i < 8; ++i) doc_name += "/" + std::string(127, 'a');
  std::ifstream in(std::string(HORIZON_SOURCE_DIR) + "/docs/format/chunk-object.md", std::ios::binary);
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto marker = doc.find("<!-- golden:hashed-key -->\n```\n");
  ASSERT_NE(marker, std::string::npos) << "docs/format/chunk-object.md: no golden:hashed-key block";
  const auto start = doc.find("```\n", marker) + 4;
  const std::string documented = doc.substr(start, doc.find('\n', start) - start);
  EXPECT_EQ(chunk_key(StreamName::parse(doc_name).value(), 3), documented);
}

}  // namespace
}  // namespace horizon
