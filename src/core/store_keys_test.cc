#include "core/store_keys.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace horizon
