#include "net/secrets.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace horizon::net {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with its content.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "horizon-secrets-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Sets the process umask for the scope of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

mode_t file_mode(const std::string& path) {
  struct stat st = {};
  if (::stat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode & 07777;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t entries_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

bool is_lower_hex(const std::string& s) { return s.find_first_not_of("0123456789abcdef") == std::string::npos; }

TEST(RandomBytes, ReturnsExactlyTheRequestedLength) {
  for (std::size_t n : {0u, 1u, 16u, 32u, 4096u}) {
    auto r = random_bytes(n);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->size(), n);
  }
}

TEST(RandomHex, IsLowerCaseHexOfTwiceTheByteCount) {
  for (std::size_t n : {0u, 1u, 16u, 32u, 100u}) {
    auto r = random_hex(n);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->size(), 2 * n);
    EXPECT_TRUE(is_lower_hex(*r)) << *r;
  }
}

TEST(RandomHex, TokenAndMasterKeyLengths) {
  auto token = random_hex(16);
  auto master_key = random_hex(32);
  ASSERT_TRUE(token && master_key);
  EXPECT_EQ(token->size(), 32u);       // 128 bits
  EXPECT_EQ(master_key->size(), 64u);  // 256 bits
}

TEST(RandomHex, ThousandDrawsAreAllDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto r = random_hex(16);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(seen.insert(*r).second) << "repeated token " << *r;
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomHex, DrawsUseEveryHexDigit) {
  // 1000 * 32 digits: each of the 16 digits is expected ~2000 times.
  std::string all;
  for (int i = 0; i < 1000; ++i) all += random_hex(16).value();
  for (char c : std::string("0123456789abcdef")) EXPECT_NE(all.find(c), std::string::npos) << c;
}

TEST(ConstantTimeEqual, TruthTable) {
  struct Case {
    std::string a;
    std::string b;
    bool equal;
  };
  const Case cases[] = {
      {"", "", true},
      {"a", "a", true},
      {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", true},
      {std::string("a\0b", 3), std::string("a\0b", 3), true},
      {"", "a", false},
      {"a", "", false},
      {"a", "b", false},
      {"abc", "abd", false},
      {"xbc", "abc", false},
      {"abc", "abcd", false},  // prefix: different lengths
      {"abcd", "abc", false},
      {std::string("a\0b", 3), "a", false},  // differs only after a NUL
      {"token", "TOKEN", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(constant_time_equal(c.a, c.b), c.equal) << "\"" << c.a << "\" vs \"" << c.b << "\"";
    EXPECT_EQ(constant_time_equal(c.b, c.a), c.equal) << "symmetric";
  }
}

TEST(ConstantTimeEqual, RandomTokensOnlyEqualThemselves) {
  const std::string a = random_hex(16).value();
  const std::string b = random_hex(16).value();
  EXPECT_TRUE(constant_time_equal(a, std::string(a)));
  EXPECT_FALSE(constant_time_equal(a, b));
}

TEST(WriteSecretFile, CreatesMode0600EvenWithUmaskZero) {
  TempDir dir;
  const std::string path = dir.file("token");
  {
    ScopedUmask mask(0);
    auto r = write_secret_file(path, "s3cret");
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(read_all(path), "s3cret");
}

TEST(WriteSecretFile, CreatesMode0600WhenUmaskStripsOwnerBits) {
  TempDir dir;
  const std::string path = dir.file("token");
  {
    ScopedUmask mask(0277);
    auto r = write_secret_file(path, "s3cret");
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(read_all(path), "s3cret");
}

TEST(WriteSecretFile, ContentRoundTripsIncludingBinaryAndEmpty) {
  TempDir dir;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  binary += std::string(1 << 20, 'x');  // larger than one write on most systems
  for (const std::string& content : {std::string(), std::string("line\n"), binary}) {
    const std::string path = dir.file("secret");
    auto r = write_secret_file(path, content);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(read_all(path), content);
  }
}

TEST(ReadSmallFile, WholeContentMissingFileAndReadErrors) {
  TempDir dir;
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  binary += std::string(100'000, 'y');  // several reads
  for (const std::string& content : {std::string(), binary}) {
    ASSERT_TRUE(write_public_file(dir.file("f"), content));
    auto r = read_small_file(dir.file("f"));
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, content);
  }
  auto missing = read_small_file(dir.file("nothing"));
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->has_value());
  // open succeeds on a directory and read fails: an error, never "".
  auto unreadable = read_small_file(dir.path().string());
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().code, errc::storage_failed);
  EXPECT_EQ(unreadable.error().message, "read " + dir.path().string() + ": Is a directory");
}

TEST(WriteSecretFile, OverwritesAtomicallyAndLeavesNoTempFiles) {
  TempDir dir;
  const std::string path = dir.file("master.key");
  {
    std::ofstream old(path);
    old << "old content";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  struct stat before = {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);

  auto r = write_secret_file(path, "new content");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read_all(path), "new content");
  EXPECT_EQ(file_mode(path), 0600u);
  struct stat after = {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino) << "replaced by rename, not rewritten in place";
  EXPECT_EQ(entries_in(dir.path()), 1u) << "no temp file left behind";

  ASSERT_TRUE(write_secret_file(path, "third"));
  EXPECT_EQ(read_all(path), "third");
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(WriteSecretFile, MissingDirectoryErrorNamesThePathNotTheContent) {
  TempDir dir;
  const std::string path = dir.file("no-such-dir/token");
  const std::string content = "do-not-leak-4f1c2a";
  auto r = write_secret_file(path, content);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(content), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir.path() / "no-such-dir"));
}

TEST(WriteSecretFile, PathThatIsADirectoryFailsAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("sub");
  ASSERT_TRUE(fs::create_directory(path));
  auto r = write_secret_file(path, "content");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_EQ(entries_in(dir.path()), 1u) << "the temp file was removed";
}

TEST(WritePublicFile, CreatesMode0644WhateverTheUmask) {
  TempDir dir;
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    const std::string path = dir.file("ca.pem");
    {
      ScopedUmask scoped(mask);
      auto r = write_public_file(path, "-----BEGIN CERTIFICATE-----\n");
      ASSERT_TRUE(r) << r.error().message;
    }
    EXPECT_EQ(file_mode(path), 0644u) << "umask " << mask;
    EXPECT_EQ(read_all(path), "-----BEGIN CERTIFICATE-----\n");
  }
}

TEST(WriteSecretFile, RelativePathInCurrentDirectory) {
  TempDir dir;
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir.path());
  auto r = write_secret_file("relative-token", "abc");
  fs::current_path(old_cwd);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(read_all(dir.file("relative-token")), "abc");
  EXPECT_EQ(file_mode(dir.file("relative-token")), 0600u);
}

}  // namespace
}  // namespace horizon::net
