// The ObjectStore suite, run against every implementation: file://, the
// in-memory store, and s3:// on the real s3rver and on OpenStack Swift with
// s3api (started from scripts/start-s3rver.sh and scripts/start-swift.sh;
// those cases fail, never skip, without the servers).

#include "store/object_store.h"

#include "store/memory_store.h"
#include "store/s3_store.h"
#include "store/sigv4.h"
#include "store/test_support.h"
#include "wal/forwarding_fs.h"
#include "wal/sim_fs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

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
  // s3:// is available now: opening makes no request, and describe() hides the secret.
  auto s3open = open_store("s3://AKIA:sup3rsecret@eu-west-1/bucket");
  ASSERT_TRUE(s3open) << s3open.error().message;
  EXPECT_EQ((*s3open)->describe(), "s3://eu-west-1/bucket");
  EXPECT_EQ((*s3open)->describe().find("sup3rsecret"), std::string::npos);
}

TEST(StoreUrl, MemoryUrlsShareStateByName) {
  auto a = open_store("memory://shared-by-name");
  auto b = open_store("memory://shared-by-name");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->put("k", "v"));
  EXPECT_EQ((*b)->get("k").value().value(), "v");
  EXPECT_EQ((*b)->describe(), "memory://shared-by-name");
  EXPECT_FALSE(open_store("memory://"));
  EXPECT_FALSE(open_store("memory://bad name"));
  auto fresh = make_memory_store();
  EXPECT_FALSE(fresh->get("k").value().has_value());
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

// A put that returned success survives a power loss, also when it created
// the directories of its key (their names are durable only once their
// parents are synced; before that was done, some seeds lost the object).
TEST(FileStore, APutSurvivesAPowerLossWithTheDirectoriesItCreated) {
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    wal::SimFs sim(seed);
    // The store owns its Fs; the test keeps the SimFs to restart it.
    auto store = file_store_on(std::make_unique<wal::ForwardingFs>(sim), "sim-store", "file:///sim-store");
    ASSERT_TRUE(store->put("chunks/s/_sub/app/~0000.ehc", "sealed chunk"));
    ASSERT_TRUE(store->put("chunks/s/_sub/app/~0001.ehc", "next chunk"));  // the directory known durable
    sim.restart();
    auto got = store->get("chunks/s/_sub/app/~0000.ehc");
    ASSERT_TRUE(got) << got.error().message;
    ASSERT_TRUE(got->has_value()) << "seed " << seed << ": the object vanished";
    EXPECT_EQ(**got, "sealed chunk");
    auto next = store->get("chunks/s/_sub/app/~0001.ehc");
    ASSERT_TRUE(next && next->has_value()) << "seed " << seed;
    EXPECT_EQ(**next, "next chunk");
  }
}

TEST(FileStore, ListSkipsTempFilesAndForeignNames) {
  const auto dir = std::filesystem::temp_directory_path() / ("eh-store-list-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto s = open_store("file://" + dir.string());
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE((*s)->put("d/k1", "1"));
  // A temp file left by a crash mid-put, and a file no key can name.
  std::filesystem::create_directories(dir / "d");
  { std::ofstream(dir / "d/k2 tmp-put-1-0") << "partial"; }
  { std::ofstream(dir / "d/with space") << "x"; }
  std::filesystem::create_symlink(dir / "d/k1", dir / "d/link");
  auto page = (*s)->list("", "", 100);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "d/k1");
  EXPECT_TRUE(page->next_token.empty());
  std::filesystem::remove_all(dir);
}

TEST(MemoryStore, FaultHooks) {
  auto m = make_memory_store();
  m->fail_next(2, errc::not_ready, {MemoryStore::Op::put});
  EXPECT_EQ(m->put("a", "1").error().code, errc::not_ready);
  EXPECT_TRUE(m->get("a"));  // gets are not affected
  EXPECT_EQ(m->put("a", "1").error().code, errc::not_ready);
  EXPECT_TRUE(m->put("a", "1"));
  EXPECT_EQ(m->calls(MemoryStore::Op::put), 3u);

  // A lost answer: the put happened, the caller was told it failed.
  m->fail_next_after_effect(1, errc::not_ready, {MemoryStore::Op::put});
  EXPECT_FALSE(m->put("b", "2"));
  EXPECT_EQ(m->get("b").value().value(), "2");

  m->fail_next(1, errc::storage_failed);
  auto listed = m->list("", "", 10);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, errc::storage_failed);

  m->corrupt_next_reads(1);
  EXPECT_NE(m->get("b").value().value(), "2");
  EXPECT_EQ(m->get("b").value().value(), "2");

  m->fail_next(5, errc::not_ready);
  m->clear_faults();
  EXPECT_TRUE(m->head("b"));
  // Invalid keys are rejected before any fault is consumed.
  m->fail_next(1, errc::not_ready);
  EXPECT_EQ(m->get("/bad").error().code, errc::invalid_argument);
  EXPECT_EQ(m->get("b").error().code, errc::not_ready);
  EXPECT_EQ(m->object_count(), 2u);
}

// --- the shared suite ---

enum class Impl { file, memory, s3, swift };

void PrintTo(Impl impl, std::ostream* os) {
  switch (impl) {
    case Impl::file: *os << "file://"; break;
    case Impl::memory: *os << "memory"; break;
    case Impl::s3: *os << "s3:// on s3rver"; break;
    case Impl::swift: *os << "s3:// on Swift"; break;
  }
}

std::string impl_name(const ::testing::TestParamInfo<Impl>& info) {
  switch (info.param) {
    case Impl::file: return "file";
    case Impl::memory: return "memory";
    case Impl::s3: return "s3rver";
    case Impl::swift: return "swift";
  }
  return "?";
}

class StoreSuite : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Every test works under its own root, so s3 tests sharing one bucket
    // do not see each other.
    root_ = std::string("t-") + info->name() + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "/";
    for (auto& c : root_) {
      if (c == '/' && &c != &root_.back()) c = '_';
    }
    switch (GetParam()) {
      case Impl::file: {
        dir_ = std::filesystem::temp_directory_path() /
               ("eh-store-suite-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::filesystem::remove_all(dir_);
        auto s = open_store("file://" + dir_.string());
        ASSERT_TRUE(s) << s.error().message;
        store_ = std::move(*s);
        break;
      }
      case Impl::memory: store_ = make_memory_store(); break;
      case Impl::s3: {
        std::string error;
        auto* server = test::shared_s3rver(&error);
        ASSERT_NE(server, nullptr) << "s3rver is required for the s3:// cases (run `npm ci` in the repository "
                                      "root; node must be installed):\n"
                                   << error;
        secret_ = test::S3rver::kSecret;
        auto s = open_s3_store(server->url());
        ASSERT_TRUE(s) << s.error().message;
        store_ = std::move(*s);
        break;
      }
      case Impl::swift: {
        std::string error;
        auto* server = test::shared_swift(&error);
        ASSERT_NE(server, nullptr) << "OpenStack Swift is required for the Swift cases (run scripts/install-deps.sh):\n"
                                   << error;
        secret_ = test::Swift::kSecret;
        auto s = open_s3_store(server->url());
        ASSERT_TRUE(s) << s.error().message;
        store_ = std::move(*s);
        break;
      }
    }
  }

  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string k(std::string_view rel) const { return root_ + std::string(rel); }

  // Every error of the store: the message names no secret.
  void expect_clean(const Error& e) const {
    if (secret_.empty()) return;
    EXPECT_EQ(e.message.find(secret_), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("Authorization"), std::string::npos) << e.message;
  }

  std::vector<std::string> list_all(std::string_view prefix, std::size_t page_size, std::size_t* pages = nullptr) {
    std::vector<std::string> keys;
    std::string token;
    std::size_t n = 0;
    do {
      auto page = store_->list(prefix, token, page_size);
      EXPECT_TRUE(page) << page.error().message;
      if (!page) break;
      EXPECT_LE(page->objects.size(), page_size);
      for (const auto& o : page->objects) keys.push_back(o.key);
      token = page->next_token;
      ++n;
      EXPECT_LT(n, 1000u) << "listing does not end";
    } while (!token.empty() && n < 1000);
    if (pages != nullptr) *pages = n;
    return keys;
  }

  std::unique_ptr<ObjectStore> store_;
  std::string root_;
  std::string secret_;
  std::filesystem::path dir_;
};

TEST_P(StoreSuite, PutGetOverwrite) {
  ASSERT_TRUE(store_->put(k("a/b.json"), "one"));
  EXPECT_EQ(store_->get(k("a/b.json")).value().value(), "one");
  ASSERT_TRUE(store_->put(k("a/b.json"), "two, longer"));
  EXPECT_EQ(store_->get(k("a/b.json")).value().value(), "two, longer");
  ASSERT_TRUE(store_->put(k("a/b.json"), "3"));
  EXPECT_EQ(store_->get(k("a/b.json")).value().value(), "3");
  ASSERT_TRUE(store_->put(k("top"), "t"));
  EXPECT_EQ(store_->get(k("top")).value().value(), "t");
}

TEST_P(StoreSuite, MissingObjectsAreNulloptAndRemoveIsIdempotent) {
  auto g = store_->get(k("nope/x"));
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_FALSE(g->has_value());
  auto r = store_->get_range(k("nope/x"), 0, 10);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value());
  auto r0 = store_->get_range(k("nope/x"), 0, 0);
  ASSERT_TRUE(r0) << r0.error().message;
  EXPECT_FALSE(r0->has_value());
  auto h = store_->head(k("nope/x"));
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_FALSE(h->has_value());
  EXPECT_TRUE(store_->remove(k("nope/x")));

  ASSERT_TRUE(store_->put(k("gone"), "x"));
  ASSERT_TRUE(store_->remove(k("gone")));
  EXPECT_FALSE(store_->get(k("gone")).value().has_value());
  EXPECT_FALSE(store_->head(k("gone")).value().has_value());
  EXPECT_TRUE(store_->remove(k("gone")));
  // A key that is only a prefix of other keys is not an object.
  ASSERT_TRUE(store_->put(k("dir/inner"), "x"));
  EXPECT_FALSE(store_->get(k("dir")).value().has_value());
  EXPECT_FALSE(store_->head(k("dir")).value().has_value());
  EXPECT_TRUE(store_->remove(k("dir")));
  EXPECT_TRUE(store_->get(k("dir/inner")).value().has_value());
}

TEST_P(StoreSuite, GetRange) {
  const std::string data = "0123456789abcdefghij";  // 20 bytes
  ASSERT_TRUE(store_->put(k("r"), data));
  auto range = [&](std::uint64_t off, std::uint64_t len) {
    auto r = store_->get_range(k("r"), off, len);
    EXPECT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r && r->has_value());
    return r && *r ? **r : std::string("<none>");
  };
  EXPECT_EQ(range(0, 5), "01234");                                                 // start
  EXPECT_EQ(range(7, 6), "789abc");                                                // middle
  EXPECT_EQ(range(15, 5), "fghij");                                                // exactly the end
  EXPECT_EQ(range(15, 100), "fghij");                                              // short at the end
  EXPECT_EQ(range(0, 20), data);                                                   // everything
  EXPECT_EQ(range(19, 1), "j");                                                    // last byte
  EXPECT_EQ(range(20, 5), "");                                                     // at the end
  EXPECT_EQ(range(1000, 5), "");                                                   // beyond the end
  EXPECT_EQ(range(3, 0), "");                                                      // nothing asked
  EXPECT_EQ(range(5, std::numeric_limits<std::uint64_t>::max()), data.substr(5));  // to the end
}

TEST_P(StoreSuite, HeadReportsSizeAndMd5) {
  ASSERT_TRUE(store_->put(k("h/obj"), "hello world"));
  auto h = store_->head(k("h/obj"));
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_TRUE(h->has_value());
  EXPECT_EQ((*h)->key, k("h/obj"));
  EXPECT_EQ((*h)->size, 11u);
  EXPECT_EQ((*h)->etag, sigv4::md5_hex("hello world"));
}

TEST_P(StoreSuite, EmptyObject) {
  ASSERT_TRUE(store_->put(k("empty"), ""));
  EXPECT_EQ(store_->get(k("empty")).value().value(), "");
  EXPECT_EQ(store_->head(k("empty")).value().value().size, 0u);
  auto r = store_->get_range(k("empty"), 0, 10);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, "");
}

TEST_P(StoreSuite, BinaryContentWithNulBytes) {
  std::string data;
  for (int round = 0; round < 4; ++round) {
    for (int b = 0; b < 256; ++b) data.push_back(static_cast<char>(b));
  }
  data += std::string(100, '\0');
  ASSERT_TRUE(store_->put(k("bin/all-bytes"), data));
  EXPECT_EQ(store_->get(k("bin/all-bytes")).value().value(), data);
  EXPECT_EQ(store_->get_range(k("bin/all-bytes"), 250, 12).value().value(), data.substr(250, 12));
  EXPECT_EQ(store_->head(k("bin/all-bytes")).value().value().size, data.size());
}

TEST_P(StoreSuite, ThreeMebibyteObject) {
  std::string data(3u << 20, '\0');
  std::uint64_t x = 88172645463325252ull;  // xorshift: incompressible, reproducible
  for (auto& c : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  ASSERT_TRUE(store_->put(k("big/3mib"), data));
  auto got = store_->get(k("big/3mib"));
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_TRUE(**got == data) << "3 MiB object differs after the round trip";
  EXPECT_EQ(store_->get_range(k("big/3mib"), (1u << 20) + 7, 4096).value().value(), data.substr((1u << 20) + 7, 4096));
  EXPECT_EQ(store_->get_range(k("big/3mib"), data.size() - 10, 100).value().value(), data.substr(data.size() - 10));
  auto h = store_->head(k("big/3mib"));
  ASSERT_TRUE(h && h->has_value());
  EXPECT_EQ((*h)->size, data.size());
  EXPECT_EQ((*h)->etag, sigv4::md5_hex(data));
}

TEST_P(StoreSuite, ListWithPrefixAndPaging) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "p/obj-%02d", i);
    ASSERT_TRUE(store_->put(k(name), std::string(static_cast<std::size_t>(i), 'x')));
    expected.push_back(k(name));
  }
  ASSERT_TRUE(store_->put(k("p_sibling"), "s"));  // shares the text prefix "p"
  ASSERT_TRUE(store_->put(k("q/other"), "o"));
  ASSERT_TRUE(store_->put(k("p/sub/deeper"), "d"));  // below p/, after p/obj-*

  // Three pages of 10, 10 and 5, in key order, twice the same.
  std::size_t pages = 0;
  auto first = list_all(k("p/obj-"), 10, &pages);
  EXPECT_EQ(first, expected);
  EXPECT_EQ(pages, 3u);
  EXPECT_EQ(list_all(k("p/obj-"), 10), first);

  // Page by page: sizes, sizes and etags of the entries.
  auto p1 = store_->list(k("p/obj-"), "", 10);
  ASSERT_TRUE(p1) << p1.error().message;
  ASSERT_EQ(p1->objects.size(), 10u);
  EXPECT_FALSE(p1->next_token.empty());
  EXPECT_EQ(p1->objects[3].size, 3u);
  if (!p1->objects[3].etag.empty()) {
    EXPECT_EQ(p1->objects[3].etag, sigv4::md5_hex("xxx"));
  }

  // A whole-component prefix includes deeper keys; a text prefix does not stop at '/'.
  auto under_p = list_all(k("p/"), 7);
  ASSERT_EQ(under_p.size(), 26u);
  EXPECT_EQ(under_p.back(), k("p/sub/deeper"));
  auto text_p = list_all(k("p"), 1000);
  ASSERT_EQ(text_p.size(), 27u);
  EXPECT_EQ(text_p.back(), k("p_sibling"));  // '_' sorts after '/'
  EXPECT_EQ(list_all(k("p/obj-1"), 3).size(), 10u);
  EXPECT_TRUE(list_all(k("p/none"), 10).empty());
  auto everything = list_all(root_, 1000);
  EXPECT_EQ(everything.size(), 28u);
  EXPECT_TRUE(std::is_sorted(everything.begin(), everything.end()));
}

// Byte order where a directory walk differs from it. Not run on s3rver:
// s3rver 3.7.1 lists in directory-walk order (a key continuing a common
// prefix with a byte below '/', like "x/a-c" beside "x/a/b", comes after the
// '/' subtree) and its paging then drops such keys. AWS S3 and Swift list
// in byte order; this is an s3rver bug, not a client one.
class BytewiseListSuite : public StoreSuite {};

TEST_P(BytewiseListSuite, ListOrderIsBytewise) {
  // '-' (0x2D) < '.' (0x2E) < '/' (0x2F) < '0' (0x30): a directory walk
  // must still return keys in byte order.
  for (const char* name : {"x/a0", "x/a/b", "x/a.d", "x/a-c", "x/a/a/z", "x/A"}) {
    ASSERT_TRUE(store_->put(k(name), name));
  }
  auto keys = list_all(k("x/"), 2);
  std::vector<std::string> want = {k("x/A"), k("x/a-c"), k("x/a.d"), k("x/a/a/z"), k("x/a/b"), k("x/a0")};
  EXPECT_EQ(keys, want);
}

TEST_P(StoreSuite, ListArguments) {
  ASSERT_TRUE(store_->put(k("l/1"), "1"));
  auto zero = store_->list(k("l/"), "", 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, errc::invalid_argument);
  auto many = store_->list(k("l/"), "", 1'000'000);
  ASSERT_TRUE(many) << many.error().message;
  EXPECT_EQ(many->objects.size(), 1u);
  EXPECT_TRUE(many->next_token.empty());
  for (const char* bad : {"/abs", "a//b", "../x", "a/./"}) {
    auto r = store_->list(bad, "", 10);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_argument) << bad;
    expect_clean(r.error());
  }
}

TEST_P(StoreSuite, KeyValidation) {
  const std::vector<std::string> bad = {"",
                                        "/abs",
                                        "a//b",
                                        "a/./b",
                                        "a/../b",
                                        "..",
                                        ".",
                                        "a/",
                                        "sp ace",
                                        "tab\tx",
                                        std::string("nul\0x", 5),
                                        "caf\xC3\xA9",
                                        std::string(1025, 'k')};
  for (const auto& key : bad) {
    SCOPED_TRACE(::testing::Message() << "key \"" << key << "\"");
    auto checks = {store_->put(key, "x").error(), store_->get(key).error(), store_->get_range(key, 0, 1).error(),
                   store_->head(key).error(), store_->remove(key).error()};
    for (const auto& e : checks) {
      EXPECT_EQ(e.code, errc::invalid_argument) << e.message;
      expect_clean(e);
    }
  }
  EXPECT_EQ(store_->put(k(std::string(201, 'c')), "x").error().code, errc::invalid_argument);
  // A long and varied valid key.
  std::string ok = k("a.b/c-d/e_f/~0123/x=y+z@w!$&'()*,;:");
  while (ok.size() < 1000) ok += "/" + std::string(std::min<std::size_t>(200, 1023 - ok.size()), 'k');
  ASSERT_LE(ok.size(), kMaxKeyBytes);
  auto put_ok = store_->put(ok, "fine");
  ASSERT_TRUE(put_ok) << put_ok.error().message;
  EXPECT_EQ(store_->get(ok).value().value(), "fine");
  EXPECT_EQ(list_all(k("a.b/"), 10), std::vector<std::string>{ok});
}

TEST_P(StoreSuite, DescribeHasNoSecret) {
  const std::string d = store_->describe();
  EXPECT_FALSE(d.empty());
  if (!secret_.empty()) {
    EXPECT_EQ(d.find(secret_), std::string::npos) << d;
  }
}

TEST_P(StoreSuite, ConcurrentReplacementIsAtomic) {
  // Writers replace one key with whole values while readers read it: every
  // read is one complete value, never a mix. s3rver 3.7.1 replaces objects
  // non-atomically (content and metadata are separate files), so there a
  // read may instead fail with errc::corruption, which the client's ETag
  // check detects; it still must never return wrong bytes. AWS S3 and Swift
  // replace atomically, with two deviations of Swift 2.30: it orders writes
  // by the time its proxy received them and does not store one older than
  // the stored object (answering 200 without an ETag), so a put of the
  // shared key may fail with errc::conflict (the object then holds a newer
  // write); and its object server lists the object's directory, then opens
  // the newest file, which a concurrent put may have removed in between, so
  // a read may find no object. Neither may return wrong bytes.
  const bool s3rver = GetParam() == Impl::s3;
  const bool swift = GetParam() == Impl::swift;
  const int rounds = s3rver ? 5 : 10;
  std::vector<std::string> values;
  for (int i = 0; i < 4; ++i) values.push_back(std::string(64 * 1024, static_cast<char>('a' + i)));
  auto first = store_->put(k("c/shared"), values[0]);
  ASSERT_TRUE(first) << first.error().message;
  const std::set<std::string> allowed(values.begin(), values.end());
  std::atomic<int> bad_reads{0};
  std::atomic<int> errors{0};
  std::atomic<int> detected{0};
  std::atomic<int> superseded{0};
  std::atomic<int> vanished{0};
  std::mutex mu;
  std::string first_error;
  auto note = [&](const Error& e) {
    ++errors;
    expect_clean(e);
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = e.message;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        if (auto r = store_->put(k("c/shared"), values[static_cast<std::size_t>((t + i) % 4)]); !r) {
          if (swift && r.error().code == errc::conflict) {
            ++superseded;
          } else {
            note(r.error());
          }
        }
        if (auto r = store_->put(k("c/own-" + std::to_string(t)), values[static_cast<std::size_t>(t)]); !r) {
          note(r.error());
        }
        auto g = store_->get(k("c/shared"));
        if (!g && s3rver && g.error().code == errc::corruption) {
          ++detected;
        } else if (!g) {
          note(g.error());
        } else if (!g->has_value() && swift) {
          ++vanished;
        } else if (!g->has_value()) {
          note(Error::make(errc::internal, "c/shared vanished"));
        } else if (!allowed.contains(**g)) {
          ++bad_reads;
          std::lock_guard lock(mu);
          std::printf("bad read: %zu bytes, first %d last %d\n", (*g)->size(), (*g)->empty() ? -1 : (**g)[0],
                      (*g)->empty() ? -1 : (*g)->back());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0) << "first: " << first_error;
  EXPECT_EQ(bad_reads.load(), 0);
  if (detected.load() > 0) {
    std::printf("s3rver: %d torn reads detected by the ETag check (s3rver replaces non-atomically)\n", detected.load());
  }
  if (superseded.load() > 0) {
    std::printf("Swift: %d puts of the shared key superseded by newer ones (errc::conflict)\n", superseded.load());
  }
  if (vanished.load() > 0) {
    std::printf("Swift: %d reads found no object while it was replaced\n", vanished.load());
  }
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(store_->get(k("c/own-" + std::to_string(t))).value().value(), values[static_cast<std::size_t>(t)]);
  }
  EXPECT_EQ(list_all(k("c/"), 1000).size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(AllStores, StoreSuite, ::testing::Values(Impl::file, Impl::memory, Impl::s3, Impl::swift),
                         impl_name);
INSTANTIATE_TEST_SUITE_P(BytewiseStores, BytewiseListSuite, ::testing::Values(Impl::file, Impl::memory, Impl::swift),
                         impl_name);

}  // namespace
}  // namespace horizon::store
