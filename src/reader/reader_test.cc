// Long-term storage end to end in one process: the engine seals chunks, the
// shipper encodes, uploads, verifies and marks them shipped, and the reader
// reads any cursor across the store (through its cache) and the live tail.

#include "reader/reader.h"

#include "codec/chunk_codec.h"
#include "core/store_keys.h"
#include "server/discovery.h"
#include "server/shipper.h"
#include "wal/failpoint.h"
#include "wal/filename.h"
#include "wal/sim_fs.h"
#include "writer/engine.h"
#include "writer/test_util.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sys/stat.h>

namespace horizon::reader {
namespace {

using writer::testing::append_req;
using writer::testing::sn;

constexpr const char* kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// Fails the next `fail_puts` puts / `fail_gets` gets (transiently), or
// returns damaged bytes from get while `corrupt_gets` is set.
class FlakyStore final : public store::ObjectStore {
 public:
  explicit FlakyStore(store::ObjectStore& inner) : inner_(inner) {}
  int fail_puts = 0, fail_gets = 0;
  bool corrupt_gets = false;
  Result<void> put(const std::string& key, std::string_view bytes) override {
    if (fail_puts > 0 && fail_puts--) return Error::make(errc::not_ready, "store down (test)");
    return inner_.put(key, bytes);
  }
  Result<std::optional<std::string>> get(const std::string& key) override {
    if (fail_gets > 0 && fail_gets--) return Error::make(errc::not_ready, "store down (test)");
    auto r = inner_.get(key);
    if (r && *r && corrupt_gets && !(*r)->empty()) (**r)[(*r)->size() / 2] ^= 1;
    return r;
  }
  Result<void> remove(const std::string& key) override { return inner_.remove(key); }
  std::string describe() const override { return "flaky(" + inner_.describe() + ")"; }

 private:
  store::ObjectStore& inner_;
};

struct World {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("eh-reader-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  wal::SimFs fs{7};
  std::unique_ptr<store::ObjectStore> file_store;
  std::unique_ptr<FlakyStore> store;
  codec::MasterKey key = codec::MasterKey::parse_hex(kKeyHex).value();
  std::unique_ptr<writer::Engine> engine;
  static inline int counter = 0;

  World() {
    std::filesystem::remove_all(dir);
    file_store = std::move(store::open_store("file://" + (dir / "store").string()).value());
    store = std::make_unique<FlakyStore>(*file_store);
    open_engine();
  }
  ~World() {
    engine.reset();
    std::filesystem::remove_all(dir);
  }
  void open_engine() {
    writer::EngineOptions o;
    o.background = false;
    o.chunk_size = 400;
    o.server = "h";
    engine = std::move(writer::Engine::open(fs, o).value());
  }
  // The engine as the Writer's liveread.
  LiveSource live() {
    return [this](const Cursor& c, std::size_t n) -> Result<std::string> {
      auto r = engine->read(c, n);
      if (!r) return r.error();
      return std::move(r->bytes);
    };
  }
  Reader reader(bool with_live = true, std::string cache = {}, std::uint64_t cache_max = 1ull << 30) {
    ReaderOptions o;
    o.store = store.get();
    o.key = &key;
    if (with_live) o.live = live();
    o.cache_dir = cache.empty() ? (dir / "cache").string() : cache;
    o.cache_max_bytes = cache_max;
    return Reader(std::move(o));
  }
  // Streams /a and /s with several sealed chunks each; /a's come first in
  // the ship queue.
  void fill_a_and_s() {
    ASSERT_TRUE(engine->create_stream_sync(sn("/a")));
    ASSERT_TRUE(engine->create_stream_sync(sn("/s")));
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(engine->append_sync(append_req(sn("/a"), {"a-" + std::to_string(i), "x"})));
    }
    fill(60);
  }
  // Stream /s with `batches` appends, every sealed chunk shipped to the store.
  void fill_and_ship(int batches) {
    ASSERT_TRUE(engine->create_stream_sync(sn("/s")));
    fill(batches);
    server::Shipper shipper(*engine, *store, key, {}, nullptr);
    ASSERT_TRUE(shipper.ship_pending());
  }
  void fill(int batches) {
    for (int i = 0; i < batches; ++i) {
      ASSERT_TRUE(engine->append_sync(append_req(sn("/s"), {"event-" + std::to_string(i) + "-a", "event-b"})));
    }
  }
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> texts(const std::vector<Line>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.ptr_after.to_string() + " " + l.line.encode());
  return out;
}

std::vector<std::string> texts(const std::vector<writer::testing::ReadLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.after.to_string() + " " + l.line.encode());
  return out;
}

TEST(ShipperAndReader, ReadsAcrossShippedChunksAndTheLiveTail) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(60);
  const auto expected = texts(writer::testing::read_stream(*w.engine, sn("/s")).value());
  const auto queued = w.engine->ship_queue().size();
  ASSERT_GE(queued, 3u);
  server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
  auto shipped = shipper.ship_pending();
  ASSERT_TRUE(shipped) << shipped.error().message;
  EXPECT_EQ(*shipped, queued);
  EXPECT_TRUE(w.engine->ship_queue().empty());
  auto gone = w.engine->read(Cursor::parse("/s:0:0").value(), 1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, errc::chunk_not_found);
  // Objects are encrypted: no plaintext line in the store.
  auto obj = w.file_store->get(chunk_key(sn("/s"), 0)).value().value();
  EXPECT_EQ(obj.find("event-"), std::string::npos);

  Reader r = w.reader();
  auto all = r.read(Cursor::parse("/s:0:0").value(), 100000);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(texts(*all), expected);
  EXPECT_GT(r.stats().store_gets, 0u);
  EXPECT_GT(r.stats().live_reads, 0u);
  // From the middle of a sealed chunk, a few lines at a time.
  std::vector<Line> stepwise;
  Cursor at = (*all)[3].ptr_after;
  for (;;) {
    auto part = r.read(at, 7);
    ASSERT_TRUE(part);
    if (part->empty()) break;
    stepwise.insert(stepwise.end(), part->begin(), part->end());
    at = part->back().ptr_after;
  }
  EXPECT_EQ(texts(stepwise), std::vector<std::string>(expected.begin() + 4, expected.end()));
}

TEST(ShipperAndReader, SealedChunksAreReadWhenTheWriterIsUnreachable) {
  World w;
  w.fill_and_ship(60);
  ReaderOptions o;
  o.store = w.store.get();
  o.key = &w.key;
  o.live = [](const Cursor&, std::size_t) -> Result<std::string> {
    return Error::make(errc::not_ready, "connection refused (test)");
  };
  Reader r(std::move(o));
  auto part = r.read(Cursor::parse("/s:0:0").value(), 100000);
  ASSERT_TRUE(part) << part.error().message;
  ASSERT_FALSE(part->empty());
  EXPECT_EQ(part->back().line.meta_type, "Rotated");  // everything up to the live chunk
  // The live chunk is in no store: the error says why the Writer, which
  // holds it, could not be asked, and is retryable (not_ready), not a
  // definite "no such chunk".
  auto live_chunk = r.read(part->back().ptr_after, 10);
  ASSERT_FALSE(live_chunk);
  EXPECT_EQ(live_chunk.error().code, errc::not_ready);
  EXPECT_NE(live_chunk.error().message.find("is not in store"), std::string::npos) << live_chunk.error().message;
  EXPECT_NE(live_chunk.error().message.find("connection refused (test)"), std::string::npos)
      << live_chunk.error().message;
}

TEST(ShipperAndReader, IntegrityFailureIsAnErrorNamingTheObjectAndIsNotCached) {
  World w;
  w.fill_and_ship(60);
  const std::string key = chunk_key(sn("/s"), 1);
  const std::string good = w.file_store->get(key).value().value();
  std::string bad = good;
  bad[bad.size() - 20] ^= 0x40;
  ASSERT_TRUE(w.file_store->put(key, bad));
  Reader r = w.reader();
  auto res = r.read(Cursor::parse("/s:1:0").value(), 5);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, errc::corruption);
  EXPECT_NE(res.error().message.find(key), std::string::npos) << res.error().message;
  ASSERT_TRUE(w.file_store->put(key, good));
  Reader again = w.reader();
  EXPECT_TRUE(again.read(Cursor::parse("/s:1:0").value(), 5));
}

TEST(ShipperAndReader, CacheServesRepeatReadsAndStaysBounded) {
  World w;
  w.fill_and_ship(120);
  const auto cache = (w.dir / "small-cache").string();
  {
    Reader r = w.reader(false, cache, 1200);
    auto all = r.read(Cursor::parse("/s:0:0").value(), 100000);
    ASSERT_TRUE(all);
  }
  std::uint64_t total = 0;
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache)) {
    total += e.file_size();
    ++files;
  }
  EXPECT_LE(total, 1200u);
  EXPECT_GE(files, 1u);
  // A new reader with the store down is served by the cache.
  w.store->fail_gets = 1000;
  Reader cached = w.reader(false, cache, 1200);
  std::string last_key;
  for (const auto& e : std::filesystem::directory_iterator(cache)) last_key = e.path().filename().string();
  ASSERT_FALSE(last_key.empty());
  // Find which chunk that file holds by trying chunks until one is a hit.
  bool hit = false;
  for (std::int64_t c = 0; c < 20 && !hit; ++c) {
    auto res = cached.read(Cursor(sn("/s"), c, 0), 1);
    hit = res.has_value() && cached.stats().cache_hits > 0;
  }
  EXPECT_TRUE(hit);
}

// Cache files are plaintext and not fsync'ed: private to their owner, and
// one that a power loss left empty, short or zero-filled (or that anything
// altered) is never data: it is removed and the chunk read from the store.
TEST(ShipperAndReader, CacheFilesArePrivateAndADamagedOneIsReadFromTheStoreAgain) {
  World w;
  w.fill_and_ship(60);
  const auto cache = w.dir / "private-cache";
  const Cursor first = Cursor::parse("/s:0:0").value();  // two lines of chunk 0 (of about ten)
  std::vector<std::string> want;
  {
    Reader r = w.reader(false, cache.string());
    auto lines = r.read(first, 2);
    ASSERT_TRUE(lines) << lines.error().message;
    want = texts(*lines);
    EXPECT_EQ(r.stats().store_gets, 1u);
  }
  ASSERT_FALSE(want.empty());
  struct stat st {};
  ASSERT_EQ(::stat(cache.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const auto file = files[0];
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string whole = slurp(file);
  {
    Reader hit = w.reader(false, cache.string());
    auto lines = hit.read(first, 2);
    ASSERT_TRUE(lines);
    EXPECT_EQ(texts(*lines), want);
    EXPECT_EQ(hit.stats().cache_hits, 1u);
    EXPECT_EQ(hit.stats().store_gets, 0u);
  }
  const std::vector<std::pair<std::string, std::string>> damages = {
      {"empty", ""},
      {"no trailer (an older cache file)", whole.substr(0, whole.size() - 16)},
      {"cut short", whole.substr(0, whole.size() - 1)},
      {"zero-filled", std::string(whole.size(), '\0')},
      {"one bit flipped in the data", [&] { auto b = whole; b[3] ^= 0x01; return b; }()},
      {"a byte appended", whole + "x"},
  };
  for (const auto& [what, bytes] : damages) {
    { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
    Reader r = w.reader(false, cache.string());
    auto lines = r.read(first, 2);
    ASSERT_TRUE(lines) << what << ": " << lines.error().message;
    EXPECT_EQ(texts(*lines), want) << what;
    EXPECT_EQ(r.stats().cache_damaged, 1u) << what;
    EXPECT_EQ(r.stats().cache_hits, 0u) << what;
    EXPECT_EQ(r.stats().store_gets, 1u) << what;
    EXPECT_EQ(slurp(file), whole) << what << ": written again";
  }
}

// A reader killed while writing a cache file leaves its temp file: the next
// scan of the directory removes it once it is an hour old (a live writer's
// is fresh and stays).
TEST(ShipperAndReader, StaleCacheTempFilesAreRemoved) {
  World w;
  w.fill_and_ship(60);
  const auto cache = w.dir / "temp-cache";
  std::filesystem::create_directories(cache);
  const auto stale = cache / "6162.raw.tmp4242", fresh = cache / "6364.raw.tmp4343";
  { std::ofstream(stale) << "partial"; }
  { std::ofstream(fresh) << "partial"; }
  std::filesystem::last_write_time(stale, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  Reader r = w.reader(false, cache.string());
  ASSERT_TRUE(r.read(Cursor::parse("/s:0:0").value(), 2));  // a miss: written to the cache, which is scanned
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(fresh));
}

TEST(Shipper, RetriesWhileTheStoreIsDownAndVerifiesBeforeFreeing) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(30);
  server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
  w.store->fail_puts = 3;
  for (int i = 0; i < 3; ++i) {
    auto r = shipper.ship_pending();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::not_ready);
  }
  // A store that returns damaged bytes: the chunk is not marked shipped.
  w.store->corrupt_gets = true;
  auto bad = shipper.ship_pending();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::corruption);
  EXPECT_TRUE(w.engine->read(Cursor::parse("/s:0:0").value(), 1));  // still held locally
  w.store->corrupt_gets = false;
  ASSERT_TRUE(shipper.ship_pending());
  EXPECT_TRUE(w.engine->ship_queue().empty());
}

// Runs `before_put` before every put (from the caller's thread); an error
// it returns is the put's answer and the object is not stored.
class HookedStore final : public store::ObjectStore {
 public:
  using Hook = std::function<Result<void>(const std::string& key)>;
  HookedStore(store::ObjectStore& inner, Hook before_put) : inner_(inner), before_put_(std::move(before_put)) {}
  Result<void> put(const std::string& key, std::string_view bytes) override {
    if (auto r = before_put_(key); !r) return r;
    return inner_.put(key, bytes);
  }
  Result<std::optional<std::string>> get(const std::string& key) override { return inner_.get(key); }
  Result<void> remove(const std::string& key) override { return inner_.remove(key); }
  std::string describe() const override { return "hooked(" + inner_.describe() + ")"; }

 private:
  store::ObjectStore& inner_;
  Hook before_put_;
};

// One chunk that cannot ship (here an object the store refuses; also a
// damaged local file) stays queued and is retried, while the chunks queued
// after it, of its own stream and of others, ship.
TEST(Shipper, AChunkThatCannotShipDoesNotHoldBackTheOthers) {
  World w;
  w.fill_a_and_s();
  const auto queued = w.engine->ship_queue();
  ASSERT_GE(queued.size(), 4u);
  ASSERT_EQ(queued.front().stream, sn("/a"));  // the refused chunk is first in the queue
  ASSERT_EQ(queued.front().chunk_no, 0u);
  const std::string poisoned = chunk_key(sn("/a"), 0);
  bool refusing = true;
  int puts = 0;
  HookedStore refusing_store(*w.store, [&](const std::string& key) -> Result<void> {
    ++puts;
    if (refusing && key == poisoned) return Error::make(errc::storage_failed, "PUT " + key + ": refused (test)");
    return {};
  });
  server::Shipper shipper(*w.engine, refusing_store, w.key, {}, nullptr);
  auto r = shipper.ship_pending();
  ASSERT_FALSE(r);  // the pass reports the failure (the loop backs off)...
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_NE(r.error().message.find("chunk 0 of /a"), std::string::npos) << r.error().message;
  ASSERT_EQ(w.engine->ship_queue().size(), 1u);  // ...and everything else shipped
  EXPECT_EQ(w.engine->ship_queue().front().chunk_no, 0u);
  EXPECT_EQ(puts, static_cast<int>(queued.size()));
  refusing = false;
  auto again = shipper.ship_pending();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, 1u);
  EXPECT_TRUE(w.engine->ship_queue().empty());
}

// The store already holds the first queued chunk's key. With the same
// lines (an upload whose mark a crash cut) it is marked shipped without a
// second upload; with other lines (another history of this data directory:
// a restored older backup) it is never overwritten and the chunk stays
// queued with a conflict; an object that does not decode (a damaged body a
// faulty store kept) is uploaded again.
TEST(Shipper, AnObjectAlreadyUnderTheChunksKeyIsMarkedRefusedOrReplaced) {
  enum Case { same_lines, other_lines, undecodable };
  for (const Case c : {same_lines, other_lines, undecodable}) {
    World w;
    w.fill_a_and_s();
    const auto job = w.engine->ship_queue().front();
    const std::string key = chunk_key(job.stream, job.chunk_no);
    const codec::ChunkId id{job.stream.str(), job.chunk_no};
    std::string raw = w.engine->read_sealed_chunk(job.stream, job.chunk_no).value();
    if (c == other_lines) raw.replace(raw.size() - 3, 2, "zz");  // another history's last line
    const std::string planted =
        c == undecodable ? std::string("not a chunk object") : codec::encode_chunk(w.key, id, raw).value();
    ASSERT_TRUE(w.store->put(key, planted));
    int puts_of_key = 0;
    HookedStore counting(*w.store, [&](const std::string& k) -> Result<void> {
      if (k == key) ++puts_of_key;
      return {};
    });
    server::Shipper shipper(*w.engine, counting, w.key, {}, nullptr);
    auto r = shipper.ship_pending();
    const auto stored = w.store->get(key).value().value();
    if (c == other_lines) {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, errc::conflict);
      EXPECT_NE(r.error().message.find("the store already holds " + key + " with other lines"), std::string::npos)
          << r.error().message;
      EXPECT_EQ(stored, planted) << "not overwritten";
      EXPECT_EQ(puts_of_key, 0);
      ASSERT_EQ(w.engine->ship_queue().size(), 1u) << "the others shipped; this one stays queued";
      EXPECT_EQ(w.engine->ship_queue().front().chunk_no, job.chunk_no);
      EXPECT_TRUE(w.engine->read_sealed_chunk(job.stream, job.chunk_no)) << "still held locally";
      continue;
    }
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(w.engine->ship_queue().empty());
    if (c == same_lines) {
      EXPECT_EQ(puts_of_key, 0) << "marked without a second upload";
      EXPECT_EQ(stored, planted);
    } else {
      EXPECT_EQ(puts_of_key, 1) << "an object that does not decode is uploaded again";
      EXPECT_EQ(codec::decode_chunk(w.key, id, stored).value(), raw);
    }
  }
}

// RELIABILITY A6 for shipping: a local chunk file damaged on disk (here
// one flipped byte) fails its CRC32C when the shipper reads it, is not
// shipped (so the store never holds damaged bytes as the real chunk), and
// does not hold back the others.
TEST(Shipper, ADamagedLocalChunkFileIsNotShipped) {
  World w;
  w.fill_a_and_s();
  ASSERT_TRUE(w.engine->checkpoint());  // the sealed chunks' bytes go to their files (and leave memory)
  const auto queued = w.engine->ship_queue();
  ASSERT_GE(queued.size(), 4u);
  ASSERT_EQ(queued.front().stream, sn("/a"));
  const auto& victim = queued.front();
  ASSERT_TRUE(w.engine->read_sealed_chunk(victim.stream, victim.chunk_no));  // intact: reads fine
  const std::string path = wal::chunk_path(victim.stream_id, victim.chunk_no);
  const std::string before = w.fs.read_all(path).value();
  ASSERT_GT(before.size(), 10u);
  w.fs.corrupt(path, 10, std::string(1, static_cast<char>(before[10] ^ 0x20)));
  auto damaged = w.engine->read_sealed_chunk(victim.stream, victim.chunk_no);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, errc::corruption);
  EXPECT_NE(damaged.error().message.find("fails its checksum"), std::string::npos) << damaged.error().message;
  EXPECT_NE(damaged.error().message.find(path), std::string::npos) << damaged.error().message;

  server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
  auto r = shipper.ship_pending();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corruption);
  ASSERT_EQ(w.engine->ship_queue().size(), 1u);  // only the damaged chunk is left
  EXPECT_FALSE(w.file_store->get(chunk_key(victim.stream, victim.chunk_no)).value().has_value());
}

// A store that refuses everything (wrong credentials, say) costs a few
// requests per pass, not one per queued chunk; a store that is down
// (not_ready, after its own retries and timeouts) costs one.
TEST(Shipper, AStoreThatRefusesEverythingIsTriedAFewTimesPerPass) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(150);
  const auto queued = w.engine->ship_queue().size();
  ASSERT_GT(queued, server::Shipper::kFailuresPerPass);
  int puts = 0;
  errc code = errc::storage_failed;  // then not_ready: the store is down
  HookedStore refusing_store(*w.store, [&](const std::string& key) -> Result<void> {
    ++puts;
    return Error::make(code, "PUT " + key + ": refused (test)");
  });
  server::Shipper shipper(*w.engine, refusing_store, w.key, {}, nullptr);
  auto r = shipper.ship_pending();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_EQ(puts, static_cast<int>(server::Shipper::kFailuresPerPass));
  EXPECT_EQ(w.engine->ship_queue().size(), queued);

  puts = 0;
  code = errc::not_ready;
  auto down = shipper.ship_pending();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, errc::not_ready);
  EXPECT_EQ(puts, 1);
  EXPECT_EQ(w.engine->ship_queue().size(), queued);
}

// A sealed chunk is shipped when the engine says so (Writer: on_seal ->
// wake), not at the next poll: shipped before the next checkpoint, it is
// never written to a local file.
TEST(Shipper, WakeShipsAtOnceInsteadOfAtTheNextPoll) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  server::ShipperOptions o;
  o.poll = std::chrono::hours(1);
  server::Shipper shipper(*w.engine, *w.store, w.key, o, nullptr);
  shipper.start();  // finds nothing, then would sleep for an hour
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  w.fill(30);
  ASSERT_FALSE(w.engine->ship_queue().empty());
  shipper.wake();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!w.engine->ship_queue().empty() && std::chrono::steady_clock::now() < deadline) {
    w.engine->step();  // manual engine: commit the shipper's mark_shipped
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(w.engine->ship_queue().empty());
  shipper.stop();
}

// Issue 6 (found while writing tests/e2e/shipping_faults.sh): a
// stop() during a backlog used to wait until the whole backlog was shipped
// (ship_pending went through the queue without looking at stop), so a
// Writer's SIGTERM after an outage, with a slow store, took minutes.
TEST(Shipper, Issue6StopWaitsForTheChunkInFlightNotTheBacklog) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(200);
  const std::size_t queued = w.engine->ship_queue().size();
  ASSERT_GE(queued, 5u);
  std::unique_ptr<server::Shipper> shipper;
  int puts = 0;
  HookedStore hooked(*w.store, [&](const std::string&) -> Result<void> {
    if (++puts == 1) shipper->stop();  // SIGTERM while the first chunk is being uploaded
    return {};
  });
  shipper = std::make_unique<server::Shipper>(*w.engine, hooked, w.key, server::ShipperOptions{}, nullptr);
  auto shipped = shipper->ship_pending();
  ASSERT_TRUE(shipped) << shipped.error().message;
  EXPECT_EQ(*shipped, 1u);  // the chunk in flight is finished (verified, marked), nothing more
  EXPECT_EQ(puts, 1);
  EXPECT_EQ(w.engine->ship_queue().size(), queued - 1);
  // The next start ships the rest.
  server::Shipper next(*w.engine, *w.store, w.key, {}, nullptr);
  auto rest = next.ship_pending();
  ASSERT_TRUE(rest) << rest.error().message;
  EXPECT_EQ(*rest, queued - 1);
  EXPECT_TRUE(w.engine->ship_queue().empty());
}

// SPEC §2 allows names of up to 1,024 bytes; the plain store key of such a
// stream's chunk would pass S3's 1,024-byte key limit, so its chunks use
// the hashed key (docs/format/chunk-object.md, "Store keys"). Before that,
// the first sealed chunk of a long-named stream failed to ship forever and
// held back the chunks of every other stream queued behind it.
TEST(ShipperAndReader, LongestStreamNamesShipAndReadBack) {
  World w;
  std::string name;
  for (int i = 0; i < 8; ++i) {
    name += "/" + std::string(127, static_cast<char>('a' + i));
    ASSERT_TRUE(w.engine->create_stream_sync(StreamName::parse(name).value()));
  }
  ASSERT_EQ(name.size(), 1024u);
  const StreamName long_name = StreamName::parse(name).value();
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(w.engine->append_sync(append_req(long_name, {"long-" + std::to_string(i), "x"})));
    ASSERT_TRUE(w.engine->append_sync(append_req(sn("/s"), {"short-" + std::to_string(i)})));
  }
  const auto expected = texts(writer::testing::read_stream(*w.engine, long_name).value());
  ASSERT_GE(w.engine->ship_queue().size(), 4u);
  server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
  auto shipped = shipper.ship_pending();
  ASSERT_TRUE(shipped) << shipped.error().message;
  EXPECT_TRUE(w.engine->ship_queue().empty());
  auto obj = w.file_store->get(chunk_key(long_name, 0));
  ASSERT_TRUE(obj) << obj.error().message;
  ASSERT_TRUE(*obj);
  EXPECT_TRUE(chunk_key(long_name, 0).starts_with("chunks/h/"));
  Reader r = w.reader(/*with_live=*/true);
  auto all = r.read(Cursor::parse(name + ":0:0").value(), 100000);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(texts(*all), expected);
  EXPECT_GT(r.stats().store_gets, 0u);
}

// A store whose puts hang until cancel() (an S3 server that stopped
// answering), or, with hold set, take that long and then succeed.
class StuckStore final : public store::ObjectStore {
 public:
  explicit StuckStore(store::ObjectStore& inner) : inner_(inner) {}
  std::chrono::milliseconds hold{0};  // 0: hang until cancelled (20 s at most)
  Result<void> put(const std::string& key, std::string_view bytes) override {
    std::unique_lock lock(mu_);
    ++puts_;
    cv_.notify_all();
    if (hold.count() > 0) {
      cv_.wait_for(lock, hold, [this] { return cancelled_; });
    } else {
      // Long enough for any stop() grace in these tests; then it gives up
      // (the test fails on cancelled() instead of hanging).
      if (!cv_.wait_for(lock, std::chrono::seconds(20), [this] { return cancelled_; })) {
        return Error::make(errc::not_ready, "PUT " + key + ": never cancelled (test)");
      }
    }
    if (cancelled_) return Error::make(errc::not_ready, "PUT " + key + ": cancelled (test)");
    lock.unlock();
    return inner_.put(key, bytes);
  }
  Result<std::optional<std::string>> get(const std::string& key) override { return inner_.get(key); }
  Result<void> remove(const std::string& key) override { return inner_.remove(key); }
  std::string describe() const override { return "stuck(" + inner_.describe() + ")"; }
  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  bool wait_for_put(std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return puts_ > 0; });
  }
  bool cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

 private:
  store::ObjectStore& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  int puts_ = 0;
  bool cancelled_ = false;
};

// A SIGTERM while the store hangs: stop() waits for the chunk in flight no
// longer than its grace, then cancels the store's calls; the chunk stays
// queued (not marked shipped) for the next start.
TEST(Shipper, StopCancelsAnUploadStuckPastTheGrace) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(60);
  const std::size_t queued = w.engine->ship_queue().size();
  ASSERT_GE(queued, 1u);
  StuckStore stuck(*w.store);
  server::Shipper shipper(*w.engine, stuck, w.key, server::ShipperOptions{}, nullptr);
  shipper.start();
  shipper.wake();
  ASSERT_TRUE(stuck.wait_for_put(std::chrono::seconds(30)));
  shipper.stop(std::chrono::milliseconds(200));  // returns only once the thread is gone
  EXPECT_TRUE(stuck.cancelled());
  EXPECT_EQ(w.engine->ship_queue().size(), queued);
  // The next start ships everything.
  server::Shipper next(*w.engine, *w.store, w.key, {}, nullptr);
  auto rest = next.ship_pending();
  ASSERT_TRUE(rest) << rest.error().message;
  EXPECT_EQ(*rest, queued);
}

// An upload that finishes within the grace is waited for, not cancelled.
TEST(Shipper, StopWaitsForAnUploadThatFinishesWithinTheGrace) {
  World w;
  ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
  w.fill(60);
  const std::size_t queued = w.engine->ship_queue().size();
  ASSERT_GE(queued, 2u);
  StuckStore slow(*w.store);
  slow.hold = std::chrono::milliseconds(300);
  server::Shipper shipper(*w.engine, slow, w.key, server::ShipperOptions{}, nullptr);
  shipper.start();
  shipper.wake();
  ASSERT_TRUE(slow.wait_for_put(std::chrono::seconds(30)));
  shipper.stop(std::chrono::seconds(60));
  EXPECT_FALSE(slow.cancelled());
  EXPECT_EQ(w.engine->ship_queue().size(), queued - 1);  // the chunk in flight, not the backlog
}

TEST(Shipper, CrashBetweenUploadAndMarkReshipsAReadableObject) {
  std::uint64_t fired = 0;
  for (int round = 0; round < 10; ++round) {
    World w;
    ASSERT_TRUE(w.engine->create_stream_sync(sn("/s")));
    w.fill(60);
    const auto before = failpoint::fired("ship.after_upload_before_mark");
    failpoint::arm("ship.after_upload_before_mark", round % 2 ? failpoint::Action::crash : failpoint::Action::eio, (round / 2) % 2, 1);
    {
      server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
      try {
        while (!w.engine->ship_queue().empty()) {
          if (!shipper.ship_pending()) break;
        }
      } catch (const failpoint::SimulatedCrash&) {
        w.fs.crash_now();
      }
    }
    failpoint::disarm_all();
    fired += failpoint::fired("ship.after_upload_before_mark") - before;
    w.engine.reset();
    w.fs.restart();
    w.open_engine();
    server::Shipper shipper(*w.engine, *w.store, w.key, {}, nullptr);
    ASSERT_TRUE(shipper.ship_pending());
    EXPECT_TRUE(w.engine->ship_queue().empty());
    Reader r = w.reader();
    auto all = r.read(Cursor::parse("/s:0:0").value(), 100000);
    ASSERT_TRUE(all) << all.error().message;
    std::size_t events = 0;
    for (const auto& l : *all) events += l.line.content.starts_with("event-") ? 1u : 0u;
    EXPECT_EQ(events, 120u);  // two lines per batch
  }
  EXPECT_GE(fired, 10u) << "registered failpoint ship.after_upload_before_mark never (or too rarely) fired";
}

// The history mark (docs/format/history-mark.md): written after a pass that
// shipped chunks, with a commit the engine had made durable (so a power
// cut and recovery never end below it); a data directory that recovers
// below it is refused; a damaged mark or another Writer's is let pass; a
// mark that could not be written is written after the next pass.
TEST(Shipper, TheHistoryMarkFollowsShippedChunksAndRefusesAnOlderDataDirectory) {
  const std::string id = "0123456789abcdef";
  const std::string mark_key(server::kHistoryKey);
  server::ShipperOptions o;
  o.writer_id = id;
  World w;
  {
    server::Shipper idle(*w.engine, *w.store, w.key, o, nullptr);
    ASSERT_TRUE(idle.ship_pending());
    EXPECT_FALSE(w.store->get(mark_key).value()) << "nothing shipped: no mark";
  }
  w.fill_a_and_s();
  int mark_puts = 0;
  HookedStore once_down(*w.store, [&](const std::string& k) -> Result<void> {
    if (k != mark_key) return {};
    if (++mark_puts == 1) return Error::make(errc::not_ready, "store down (test)");
    return {};
  });
  {
    server::Shipper shipper(*w.engine, once_down, w.key, o, nullptr);
    auto r = shipper.ship_pending();
    ASSERT_TRUE(r) << r.error().message << " (a mark that cannot be written is no shipping failure)";
    EXPECT_GE(*r, 4u);
    EXPECT_FALSE(w.store->get(mark_key).value());
    ASSERT_TRUE(shipper.ship_pending());  // nothing left to ship: writes the mark it owes
    EXPECT_EQ(mark_puts, 2);
  }
  auto mark = server::parse_history_mark(w.store->get(mark_key).value().value());
  ASSERT_TRUE(mark) << mark.error().message;
  EXPECT_EQ(mark->writer_id, id);
  EXPECT_EQ(mark->commit, w.engine->last_commit());
  EXPECT_GT(mark->commit, 60u);

  // A power cut right after it: recovery ends at the mark or later.
  w.fs.crash_now();
  w.engine.reset();
  w.fs.restart();
  w.open_engine();
  EXPECT_GE(w.engine->last_commit(), mark->commit);
  EXPECT_TRUE(server::check_history_mark(*w.store, id, w.engine->last_commit(), "D"));

  // An older data directory is refused, naming both commits and the way on.
  auto refused = server::check_history_mark(*w.store, id, mark->commit - 1, "D");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, errc::conflict);
  const std::string& m = refused.error().message;
  EXPECT_NE(m.find(fmt::format("data directory D is older than its store: it recovered to WAL commit {}, but this "
                               "Writer had reached commit {} when it last shipped chunks",
                               mark->commit - 1, mark->commit)),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("remove _horizon/history.json from the store"), std::string::npos) << m;

  // Another Writer's mark, or a damaged one, does not stop a start.
  EXPECT_TRUE(server::check_history_mark(*w.store, "fedcba9876543210", 0, "D"));
  ASSERT_TRUE(w.store->put(mark_key, "{\"writer_id\":"));
  EXPECT_TRUE(server::check_history_mark(*w.store, id, 0, "D"));
  // A store that cannot be read is an error as it is (the start fails, curable).
  w.store->fail_gets = 1;
  auto down = server::check_history_mark(*w.store, id, 0, "D");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, errc::not_ready);
}

}  // namespace
}  // namespace horizon::reader
