#include "store/object_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace horizon::store {
namespace {

TEST(StoreUrl, ParsesFileAndHidesS3Secrets) {
  auto f = parse_store_url("file:///var/lib/x/../store/");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->path, "/var/lib/store");
  EXPECT_EQ(f->canonical, "file:///var/lib/store");
  auto rel = parse_store_url("file://relative/dir");
  ASSERT_FALSE(rel);
  EXPECT_NE(rel.error().message.find("absolute path"), std::string::npos);
  auto s3 = parse_store_url("s3://AKIA:sup3r%2Fsecret@eu-west-1/bucket?endpoint=http://127.0.0.1:4568");
  ASSERT_TRUE(s3);
  EXPECT_EQ(s3->canonical, "s3://eu-west-1/bucket");
  auto bad = parse_store_url("ftp://user:sup3rsecret@host/x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.find("sup3rsecret"), std::string::npos) << bad.error().message;
  auto s3open = open_store("s3://AKIA:sup3rsecret@eu-west-1/bucket");
  ASSERT_FALSE(s3open);
  EXPECT_EQ(s3open.error().message.find("sup3rsecret"), std::string::npos);
}

TEST(FileStore, PutGetRemove) {
  const auto dir = std::filesystem::temp_directory_path() / ("eh-store-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto s = open_store("file://" + dir.string());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE((*s)->get("a/b.json").value().has_value());
  ASSERT_TRUE((*s)->put("a/b.json", "one"));
  ASSERT_TRUE((*s)->put("a/b.json", "two"));
  EXPECT_EQ((*s)->get("a/b.json").value().value(), "two");
  EXPECT_FALSE(std::filesystem::exists(dir / "a/b.json.tmp-put"));
  ASSERT_TRUE((*s)->remove("a/b.json"));
  EXPECT_FALSE((*s)->get("a/b.json").value().has_value());
  EXPECT_FALSE((*s)->put("../escape", "x"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace horizon::store
