#include "core/stream_name.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

namespace horizon {
namespace {

TEST(StreamName, ValidNames) {
  for (const char* s : {"/", "/tenants", "/tenants/acme", "/_sub", "/_sub/billing", "/a.b/c-d/e_f/g@h/i=j/k+l",
                        "/...", "/.a", "/a..", "/0"}) {
    auto n = StreamName::parse(s);
    ASSERT_TRUE(n) << s << ": " << n.error().message;
    EXPECT_EQ(n->str(), s);
  }
}

struct BadCase {
  std::string name;
  std::string message_part;
};

TEST(StreamName, InvalidNamesGiveClearErrors) {
  const BadCase cases[] = {
      {"", "empty"},
      {"a", "must start with '/'"},
      {"a/b", "must start with '/'"},
      {"/a/", "must not end with '/'"},
      {"//", "must not end with '/'"},
      {"//a", "empty segment at byte 1"},
      {"/a//b", "empty segment at byte 3"},
      {"/.", "segment \".\" is not allowed"},
      {"/..", "segment \"..\" is not allowed"},
      {"/../x", "segment \"..\" is not allowed"},
      {"/a/./b", "segment \".\" is not allowed"},
      {"/a:b", "':' at byte 2 is not allowed"},
      {"/a,b", "',' at byte 2"},
      {"/a b", "byte 0x20 at byte 2"},
      {"/a\tb", "byte 0x09"},
      {std::string("/a\0b", 4), "byte 0x00"},
      {"/a\\b", "'\\' at byte 2"},
      {"/%2e%2e%2f", "'%' at byte 1"},
      {"/caf\xC3\xA9", "byte 0xc3"},
      {"/\xD0\xB0", "byte 0xd0"},  // Cyrillic look-alike 'a'
      {"/" + std::string(129, 'a'), "129 characters, at most 128"},
      {std::string(1025, '/'), "1025 bytes, at most 1024"},
  };
  for (const auto& c : cases) {
    auto n = StreamName::parse(c.name);
    ASSERT_FALSE(n) << "accepted: " << c.name;
    EXPECT_EQ(n.error().code, errc::invalid_stream_name);
    EXPECT_NE(n.error().message.find(c.message_part), std::string::npos)
        << "message \"" << n.error().message << "\" lacks \"" << c.message_part << "\"";
  }
}

TEST(StreamName, LengthBoundaries) {
  EXPECT_TRUE(StreamName::parse("/" + std::string(128, 'a')));
  // 8 segments of 127 chars = 1024 bytes exactly.
  std::string at_limit;
  for (int i = 0; i < 8; ++i) at_limit += "/" + std::string(127, 'b');
  ASSERT_EQ(at_limit.size(), 1024u);
  EXPECT_TRUE(StreamName::parse(at_limit));
  EXPECT_FALSE(StreamName::parse(at_limit + "c"));
}

TEST(StreamName, ParentChildAndSubscription) {
  auto ab = StreamName::parse("/a/b").value();
  EXPECT_EQ(ab.parent().str(), "/a");
  EXPECT_EQ(ab.parent().parent().str(), "/");
  EXPECT_TRUE(StreamName::root().parent().is_root());
  EXPECT_EQ(ab.last_segment(), "b");
  EXPECT_TRUE(ab.parent().is_parent_of(ab));
  EXPECT_FALSE(StreamName::root().is_parent_of(ab));
  EXPECT_FALSE(ab.is_parent_of(ab));
  EXPECT_EQ(StreamName::root().child("x").value().str(), "/x");
  EXPECT_EQ(ab.child("c").value().str(), "/a/b/c");
  EXPECT_FALSE(ab.child("c/d"));
  EXPECT_FALSE(ab.child(".."));
  EXPECT_FALSE(ab.child(""));

  EXPECT_TRUE(StreamName::parse("/_sub/billing").value().is_subscription());
  EXPECT_TRUE(StreamName::parse("/_sub/a/b").value().is_subscription());
  EXPECT_FALSE(StreamName::parse("/_sub").value().is_subscription());
  EXPECT_FALSE(StreamName::parse("/_subx/a").value().is_subscription());
  EXPECT_FALSE(StreamName::parse("/a/_sub/b").value().is_subscription());
  EXPECT_FALSE(StreamName::root().is_subscription());
}

TEST(StreamName, RelativePathExamples) {
  EXPECT_EQ(StreamName::root().relative_path(), "s");
  EXPECT_EQ(StreamName::parse("/tenants/acme").value().relative_path(), "s/tenants/acme");
}

// RELIABILITY E5: random names through the mapping: accepted names map
// injectively, stay relative, and never have "." / ".." / empty components.
TEST(StreamName, RandomNamesMapInjectivelyAndStayInside) {
  std::mt19937_64 rng(12345);
  const std::string alphabet = "ab.._-@=+/:\\%\x00\xC3\xA9 ~Z9";
  std::set<std::string> names, paths;
  std::size_t accepted = 0;
  for (int i = 0; i < 200'000; ++i) {
    std::string s = "/";
    const std::size_t len = rng() % 12;
    for (std::size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    auto n = StreamName::parse(s);
    if (!n) continue;
    ++accepted;
    const std::string p = n->relative_path();
    ASSERT_FALSE(p.empty());
    ASSERT_NE(p.front(), '/');
    std::size_t start = 0;
    while (start <= p.size()) {
      auto end = p.find('/', start);
      if (end == std::string::npos) end = p.size();
      auto comp = p.substr(start, end - start);
      ASSERT_FALSE(comp.empty()) << p;
      ASSERT_NE(comp, ".") << p;
      ASSERT_NE(comp, "..") << p;
      ASSERT_EQ(comp.find('~'), std::string::npos) << p;
      start = end + 1;
    }
    if (names.insert(n->str()).second) {
      ASSERT_TRUE(paths.insert(p).second) << "collision on " << p;
    }
  }
  EXPECT_GT(accepted, 1000u);
}

}  // namespace
}  // namespace horizon
