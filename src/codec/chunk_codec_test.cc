// Tests of the sealed-chunk codec: round trips, the golden example of
// docs/format/chunk-object.md, tamper detection (RELIABILITY B3) and the size
// caps of the post-decryption path (B4).

#include "codec/chunk_codec.h"

#include "codec/chunk_codec_internal.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// ---- allocation tracking: the largest single operator-new request while armed ----

namespace {
std::atomic<bool> g_track_allocations{false};
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

// noinline keeps GCC from pairing the inlined free() with operator new
// (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (g_track_allocations.load(std::memory_order_relaxed)) {
    std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
    while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace horizon::codec {
namespace {

// The largest single allocation `fn` makes through operator new.
std::size_t largest_allocation_of(const std::function<void()>& fn) {
  g_largest_allocation = 0;
  g_track_allocations = true;
  fn();
  g_track_allocations = false;
  return g_largest_allocation.load();
}

constexpr std::string_view kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kOtherKeyHex = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";

MasterKey key_of(std::string_view hex) { return MasterKey::parse_hex(hex).value(); }

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>((v >> (8 * j)) & 0xff);
  }
  return out;
}

// A realistic sealed chunk: raw lines (SPEC §4) of JSON application events
// between a Created and a Rotated line, about `target` bytes.
std::string json_lines_chunk(std::size_t target, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  static const char* kTypes[] = {"OrderPlaced", "OrderShipped", "PaymentCaptured", "UserRenamed", "CartUpdated"};
  static const char* kCurrencies[] = {"EUR", "USD", "GBP"};
  std::string out = "/Created {\"subscription_ids\":[\"/_sub/billing\"],\"ts\":\"2024-05-01T10:00:00.000Z\"}\n";
  std::uint64_t ms = 0;
  char line[512];
  while (out.size() < target) {
    ms += rng() % 250;
    const unsigned long long order = 10'000'000 + rng() % 90'000'000;
    const int n = std::snprintf(
        line, sizeof line,
        " {\"type\":\"%s\",\"order_id\":\"o-%llu\",\"customer\":\"c-%05llu\",\"items\":[{\"sku\":\"SKU-%04llu\","
        "\"qty\":%llu,\"price_cents\":%llu}],\"currency\":\"%s\",\"ts\":\"2024-05-01T%02llu:%02llu:%02llu.%03lluZ\"}\n",
        kTypes[rng() % 5], order, static_cast<unsigned long long>(rng() % 50'000),
        static_cast<unsigned long long>(rng() % 3000), static_cast<unsigned long long>(1 + rng() % 5),
        static_cast<unsigned long long>(99 + rng() % 20'000), kCurrencies[rng() % 3],
        static_cast<unsigned long long>(10 + ms / 3'600'000 % 14), static_cast<unsigned long long>(ms / 60'000 % 60),
        static_cast<unsigned long long>(ms / 1000 % 60), static_cast<unsigned long long>(ms % 1000));
    out.append(line, static_cast<std::size_t>(n));
  }
  out += "/Rotated {\"next\":\"/shop/orders:8:0\",\"ts\":\"2024-05-01T11:00:00.000Z\"}\n";
  return out;
}

Nonce nonce_of(unsigned char first) {
  Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<unsigned char>(first + i);
  return n;
}

std::string encode_with(const MasterKey& key, const ChunkId& id, std::string_view raw, std::uint32_t block_size,
                        std::uint32_t key_id = kDefaultKeyId, unsigned char nonce = 0x10) {
  return encode_chunk(key, id, raw, key_id, EncodeParams{nonce_of(nonce), block_size}).value();
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return out;
}

template <std::size_t N>
std::string to_hex(const std::array<unsigned char, N>& a) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

void put_le(std::string& s, std::size_t offset, std::uint64_t v, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) s[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// True iff decoding is refused as corruption (and so returns no data).
bool rejected(const MasterKey& key, const ChunkId& id, std::string_view object, std::uint32_t key_id = kDefaultKeyId) {
  auto r = decode_chunk(key, id, object, key_id);
  return !r && r.error().code == errc::corruption;
}

std::string error_of(const MasterKey& key, const ChunkId& id, std::string_view object,
                     std::uint32_t key_id = kDefaultKeyId) {
  auto r = decode_chunk(key, id, object, key_id);
  if (r) return "<decoded>";
  return r.error().message;
}

// ---- MasterKey ----

TEST(MasterKey, ParsesHexOfEitherCase) {
  std::string upper(kKeyHex);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const MasterKey lower_key = key_of(kKeyHex);
  const MasterKey upper_key = key_of(upper);
  EXPECT_EQ(detail::KeyAccess::bytes(lower_key), detail::KeyAccess::bytes(upper_key));
  EXPECT_EQ(detail::KeyAccess::bytes(lower_key)[0], 0x00);
  EXPECT_EQ(detail::KeyAccess::bytes(lower_key)[31], 0x1f);
}

TEST(MasterKey, RejectsMalformedWithoutEchoingIt) {
  const std::string good(kKeyHex);
  const std::vector<std::string> bad = {
      "",
      good.substr(1),
      good + "0",
      "0x" + good.substr(2),
      good.substr(0, 63) + "g",
      good.substr(0, 20) + " " + good.substr(21),
      good + "\n",
      " " + good,
      std::string(64, 'z'),
      good.substr(0, 32) + std::string(1, '\0') + good.substr(33),
  };
  for (const auto& text : bad) {
    auto r = MasterKey::parse_hex(text);
    ASSERT_FALSE(r) << "accepted a malformed key of " << text.size() << " characters";
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    const std::string& m = r.error().message;
    EXPECT_NE(m.find("master key"), std::string::npos) << m;
    if (text.size() >= 8) {
      for (std::size_t i = 0; i + 8 <= text.size(); ++i) {
        ASSERT_EQ(m.find(text.substr(i, 8)), std::string::npos) << "message echoes the key: " << m;
      }
    }
  }
}

TEST(MasterKey, MoveWipesTheSource) {
  MasterKey a = key_of(kKeyHex);
  MasterKey b(std::move(a));
  const std::array<unsigned char, kMasterKeyBytes> zero{};
  EXPECT_EQ(detail::KeyAccess::bytes(a), zero);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(detail::KeyAccess::bytes(b)[1], 0x01);
  MasterKey c = key_of(kOtherKeyHex);
  c = std::move(b);
  EXPECT_EQ(detail::KeyAccess::bytes(b), zero);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(detail::KeyAccess::bytes(c)[1], 0x01);
}

// ---- round trips ----

TEST(ChunkCodec, RoundTripsEmptyChunk) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/", 0};
  auto object = encode_chunk(key, id, "");
  ASSERT_TRUE(object) << object.error().message;
  auto h = parse_header(*object);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->raw_size, 0u);
  EXPECT_EQ(h->block_count, 1u);
  auto raw = decode_chunk(key, id, *object);
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_EQ(*raw, "");
}

TEST(ChunkCodec, RoundTripsTinyChunk) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 3};
  const std::string chunk = " {\"type\":\"UserCreated\",\"id\":\"u1\"}\n";
  auto object = encode_chunk(key, id, chunk);
  ASSERT_TRUE(object) << object.error().message;
  auto raw = decode_chunk(key, id, *object);
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_EQ(*raw, chunk);
}

TEST(ChunkCodec, RoundTrips8MiBRandomChunk) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/big", 12};
  const std::string chunk = random_bytes(8u << 20, 1);
  auto object = encode_chunk(key, id, chunk);
  ASSERT_TRUE(object) << object.error().message;
  auto h = parse_header(*object).value();
  EXPECT_EQ(h.block_count, 9u);  // incompressible: a little over 8 MiB of body
  EXPECT_EQ(h.object_size(), object->size());
  auto raw = decode_chunk(key, id, *object);
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_TRUE(*raw == chunk);
}

TEST(ChunkCodec, RoundTrips8MiBCompressibleChunks) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/shop/orders", 7};
  for (const std::string& chunk : {json_lines_chunk(8u << 20, 2), std::string(8u << 20, 'a')}) {
    auto object = encode_chunk(key, id, chunk);
    ASSERT_TRUE(object) << object.error().message;
    EXPECT_LT(object->size(), chunk.size() / 3);
    auto raw = decode_chunk(key, id, *object);
    ASSERT_TRUE(raw) << raw.error().message;
    EXPECT_TRUE(*raw == chunk);
  }
}

TEST(ChunkCodec, RoundTripsAtTheRawSizeCap) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/big", 1};
  const std::string chunk(kMaxRawSize, '\n');
  auto object = encode_chunk(key, id, chunk);
  ASSERT_TRUE(object) << object.error().message;
  auto raw = decode_chunk(key, id, *object);
  ASSERT_TRUE(raw) << raw.error().message;
  EXPECT_TRUE(*raw == chunk);
}

TEST(ChunkCodec, RoundTripsManyBlocksOfEverySize) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/multi", 5};
  const std::string chunk = random_bytes(20'000, 3) + json_lines_chunk(30'000, 4);
  const std::uint64_t body = parse_header(encode_with(key, id, chunk, kDefaultBlockSize)).value().body_size;
  // Includes a block size that divides the body exactly, one that leaves a
  // 1-byte last block, and one block holding everything.
  std::set<std::uint32_t> sizes = {
      kMinBlockSize, 100, 1000, 4096, static_cast<std::uint32_t>(body), static_cast<std::uint32_t>(body - 1),
      kMaxBlockSize};
  for (std::uint32_t d = 64; d < 2000; ++d) {
    if (body % d == 0) sizes.insert(d);
  }
  for (std::uint32_t bs : sizes) {
    const std::string object = encode_with(key, id, chunk, bs);
    const ChunkHeader h = parse_header(object).value();
    EXPECT_EQ(h.block_count, (body + bs - 1) / bs) << bs;
    EXPECT_EQ(object.size(), h.object_size());
    auto raw = decode_chunk(key, id, object);
    ASSERT_TRUE(raw) << "block size " << bs << ": " << raw.error().message;
    EXPECT_TRUE(*raw == chunk);
  }
}

TEST(ChunkCodec, AcceptsStreamNamesUpTo1024Bytes) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId longest{"/" + std::string(1023, 'a'), 1};
  auto object = encode_chunk(key, longest, "x\n");
  ASSERT_TRUE(object) << object.error().message;
  EXPECT_EQ(decode_chunk(key, longest, *object).value(), "x\n");
  for (const ChunkId& bad : {ChunkId{"", 1}, ChunkId{"/" + std::string(1024, 'a'), 1}}) {
    auto e = encode_chunk(key, bad, "x\n");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::invalid_argument);
    auto d = decode_chunk(key, bad, *object);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, errc::invalid_argument);
  }
}

TEST(ChunkCodec, RejectsChunksAboveTheCapAndBadBlockSizes) {
  const MasterKey key = key_of(kKeyHex);
  const std::string too_big(kMaxRawSize + 1, ' ');
  auto r = encode_chunk(key, ChunkId{"/", 0}, too_big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  for (std::uint32_t bs : {0u, kMinBlockSize - 1, kMaxBlockSize + 1}) {
    auto e = encode_chunk(key, ChunkId{"/", 0}, "x", 1, EncodeParams{nonce_of(1), bs});
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::invalid_argument);
  }
}

TEST(ChunkCodec, SameInputTwiceGivesDifferentObjectsThatBothDecode) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  const std::string chunk = json_lines_chunk(10'000, 5);
  const std::string a = encode_chunk(key, id, chunk).value();
  const std::string b = encode_chunk(key, id, chunk).value();
  EXPECT_NE(a, b);
  EXPECT_NE(parse_header(a).value().nonce, parse_header(b).value().nonce);
  EXPECT_EQ(decode_chunk(key, id, a).value(), chunk);
  EXPECT_EQ(decode_chunk(key, id, b).value(), chunk);
}

TEST(ChunkCodec, HeaderDescribesTheObject) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 42};
  const std::string chunk = json_lines_chunk(5000, 6);
  const std::string object = encode_with(key, id, chunk, 256, 9, 0x40);
  const ChunkHeader h = parse_header(object).value();
  EXPECT_EQ(h.format_version, kFormatVersion);
  EXPECT_EQ(h.cipher, kCipherAes256Gcm);
  EXPECT_EQ(h.compression, kCompressionZstd);
  EXPECT_EQ(h.key_id, 9u);
  EXPECT_EQ(h.chunk, 42u);
  EXPECT_EQ(h.stream_tag, detail::stream_tag("/tenants/acme"));
  EXPECT_EQ(h.raw_size, chunk.size());
  EXPECT_EQ(h.block_size, 256u);
  EXPECT_EQ(h.block_count, (h.body_size + 255) / 256);
  EXPECT_EQ(h.nonce, nonce_of(0x40));
  EXPECT_EQ(h.object_size(), object.size());
  EXPECT_EQ(detail::encode_header(h), object.substr(0, kHeaderBytes));
  EXPECT_EQ(decode_chunk(key, id, object, 9).value(), chunk);
}

TEST(ChunkCodec, ObjectDoesNotContainThePlaintext) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  std::string chunk;
  for (int i = 0; i < 200; ++i) chunk += " {\"card\":\"SECRET-PAYLOAD-7f3a\"}\n";
  const std::string object = encode_with(key, id, chunk, 64);
  EXPECT_EQ(object.find("SECRET"), std::string::npos);
  EXPECT_NE(object.substr(kHeaderBytes, 4), "\x28\xb5\x2f\xfd");  // the zstd frame is encrypted
}

// ---- tampering (RELIABILITY B3) ----

// An object of exactly 4096 bytes (4 blocks of 1 KiB of body + tags).
std::string object_of_4kib(const MasterKey& key, const ChunkId& id, std::string* raw_out) {
  for (std::size_t n = 3800; n < 4100; ++n) {
    std::string raw = random_bytes(n, 7);
    std::string object = encode_with(key, id, raw, 1024);
    if (object.size() == 4096) {
      if (raw_out) *raw_out = raw;
      return object;
    }
  }
  return {};
}

TEST(ChunkTamper, ExhaustiveSingleBitFlipsOf4KiBObjectAreAllRejected) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 3};
  std::string raw;
  std::string object = object_of_4kib(key, id, &raw);
  ASSERT_EQ(object.size(), 4096u);
  ASSERT_EQ(parse_header(object).value().block_count, 4u);
  ASSERT_EQ(decode_chunk(key, id, object).value(), raw);
  std::size_t cases = 0;
  std::size_t refused = 0;
  std::size_t by_authentication = 0;
  for (std::size_t bit = 0; bit < object.size() * 8; ++bit) {
    object[bit / 8] = static_cast<char>(object[bit / 8] ^ (1 << (bit % 8)));
    auto r = decode_chunk(key, id, object);
    ++cases;
    if (!r && r.error().code == errc::corruption) {
      ++refused;
      if (r.error().message.find("failed authentication") != std::string::npos) ++by_authentication;
    }
    object[bit / 8] = static_cast<char>(object[bit / 8] ^ (1 << (bit % 8)));
  }
  EXPECT_EQ(cases, 32768u);
  EXPECT_EQ(refused, cases) << "rejected " << refused << " of " << cases << " single-bit flips";
  // Every bit after the header can only be caught by the AEAD.
  EXPECT_GE(by_authentication, (4096u - kHeaderBytes) * 8);
  EXPECT_EQ(decode_chunk(key, id, object).value(), raw);  // restored
}

TEST(ChunkTamper, ThousandRandomBitFlipsIn8MBObjectAreAllRejected) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/big", 8};
  const std::string raw = random_bytes(8'000'000, 8);
  std::string object = encode_chunk(key, id, raw).value();
  ASSERT_GT(object.size(), 8'000'000u);
  std::mt19937_64 rng(9);
  std::size_t refused = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::size_t bit = rng() % (object.size() * 8);
    object[bit / 8] = static_cast<char>(object[bit / 8] ^ (1 << (bit % 8)));
    if (rejected(key, id, object)) ++refused;
    object[bit / 8] = static_cast<char>(object[bit / 8] ^ (1 << (bit % 8)));
  }
  EXPECT_EQ(refused, 1000u);
  EXPECT_TRUE(decode_chunk(key, id, object).value() == raw);
}

TEST(ChunkTamper, TruncationAt64OffsetsIsRejected) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 3};
  const std::string object = encode_with(key, id, random_bytes(20'000, 10), 4096);
  const ChunkHeader h = parse_header(object).value();
  ASSERT_EQ(h.block_count, 5u);
  std::set<std::size_t> offsets = {
      0, 1, 8, 40, kHeaderBytes - 1, kHeaderBytes, kHeaderBytes + 1, object.size() - 1, object.size() - kTagBytes};
  for (std::size_t b = 1; b < h.block_count; ++b) {
    const std::size_t boundary = kHeaderBytes + b * (4096 + kTagBytes);
    offsets.insert(boundary);
    offsets.insert(boundary - 1);
  }
  for (std::size_t step = 1; offsets.size() < 64; ++step) offsets.insert(step * object.size() / 59);
  ASSERT_EQ(offsets.size(), 64u);
  for (std::size_t len : offsets) {
    ASSERT_LT(len, object.size());
    EXPECT_TRUE(rejected(key, id, object.substr(0, len))) << "cut at " << len;
    EXPECT_NE(error_of(key, id, object.substr(0, len)).find("truncated"), std::string::npos) << len;
  }
  EXPECT_EQ(error_of(key, id, object.substr(0, kHeaderBytes + 4 * (4096 + kTagBytes))),
            "truncated: 4 of 5 blocks (16516 of 20158 bytes)");
}

TEST(ChunkTamper, ExtensionBy1To16BytesIsRejected) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 3};
  const std::string object = encode_with(key, id, random_bytes(20'000, 11), 4096);
  for (std::size_t n = 1; n <= 16; ++n) {
    for (const std::string& tail : {std::string(n, '\0'), random_bytes(n, n), object.substr(object.size() - n)}) {
      EXPECT_TRUE(rejected(key, id, object + tail)) << n;
      EXPECT_EQ(error_of(key, id, object + tail),
                "extended: " + std::to_string(n) + " bytes after the last of 5 blocks");
    }
  }
}

TEST(ChunkTamper, HundredSwapsAreAllRejected) {
  const MasterKey key = key_of(kKeyHex);
  const MasterKey other_master = key_of(kOtherKeyHex);
  const ChunkId target{"/tenants/acme", 3};
  const std::string raw = random_bytes(5000, 12);
  const auto enc = [&](const MasterKey& k, const ChunkId& id, std::uint32_t key_id, unsigned char nonce,
                       std::string_view chunk) { return encode_with(k, id, chunk, 1024, key_id, nonce); };
  std::vector<std::pair<std::string, std::string>> cases;  // what, object
  for (int i = 0; i < 20; ++i) {                           // another stream, same chunk number
    const std::string stream = i == 0 ? "/tenants/acme/x" : i == 1 ? "/tenants/acm" : "/s" + std::to_string(i);
    cases.emplace_back("other stream " + stream, enc(key, ChunkId{stream, 3}, 1, 1, raw));
  }
  for (int i = 0; i < 20; ++i) {  // another chunk of the same stream
    const std::uint64_t chunk = i < 10 ? static_cast<std::uint64_t>(i) : 4 + static_cast<std::uint64_t>(i) * 1000;
    if (chunk == 3) continue;
    cases.emplace_back("other chunk " + std::to_string(chunk), enc(key, ChunkId{target.stream, chunk}, 1, 2, raw));
  }
  cases.emplace_back("other chunk 2^64-1", enc(key, ChunkId{target.stream, ~std::uint64_t{0}}, 1, 2, raw));
  for (std::uint32_t key_id = 2; key_id < 17; ++key_id) {  // same chunk under another key id
    cases.emplace_back("key id " + std::to_string(key_id), enc(key, target, key_id, 3, raw));
  }
  for (std::uint32_t key_id = 2; key_id < 7; ++key_id) {  // ... with the header's key id forged back to 1
    std::string object = enc(key, target, key_id, 4, raw);
    put_le(object, 12, 1, 4);
    cases.emplace_back("key id " + std::to_string(key_id) + " relabelled 1", object);
  }
  for (unsigned char n = 0; n < 10; ++n) {  // same chunk under another master key
    std::string hex(kOtherKeyHex);
    hex[0] = "0123456789"[n];
    cases.emplace_back("other master key",
                       n == 0 ? enc(other_master, target, 1, 5, raw) : enc(key_of(hex), target, 1, 5, raw));
  }
  // Blocks moved between two objects of the same chunk (same sizes, different
  // nonces), and reordered inside one object.
  const std::string a = enc(key, target, 1, 6, raw);
  const std::string b = enc(key, target, 1, 7, random_bytes(5000, 13));
  const ChunkHeader ha = parse_header(a).value();
  ASSERT_EQ(ha.body_size, parse_header(b).value().body_size);
  ASSERT_EQ(ha.block_count, 5u);
  const auto block_at = [&](std::uint32_t i) { return kHeaderBytes + std::size_t{i} * (1024 + kTagBytes); };
  const auto block_len = [&](std::uint32_t i) {
    return (i + 1 == ha.block_count ? a.size() : block_at(i + 1)) - block_at(i);
  };
  for (std::uint32_t i = 0; i < ha.block_count; ++i) {
    std::string mixed = a;
    mixed.replace(block_at(i), block_len(i), b.substr(block_at(i), block_len(i)));
    cases.emplace_back("block " + std::to_string(i) + " of another object", mixed);
  }
  for (std::uint32_t i = 0; i + 2 < ha.block_count; ++i) {
    for (std::uint32_t j = i + 1; j + 1 < ha.block_count; ++j) {  // full-size blocks only
      std::string swapped = a;
      swapped.replace(block_at(i), block_len(i), a.substr(block_at(j), block_len(j)));
      swapped.replace(block_at(j), block_len(j), a.substr(block_at(i), block_len(i)));
      cases.emplace_back("blocks " + std::to_string(i) + "<->" + std::to_string(j) + " swapped", swapped);
    }
  }
  // Header of one object on the body of another.
  cases.emplace_back("header of a, body of b", a.substr(0, kHeaderBytes) + b.substr(kHeaderBytes));
  cases.emplace_back("header of b, body of a", b.substr(0, kHeaderBytes) + a.substr(kHeaderBytes));
  const std::string c = enc(key, target, 1, 8, raw);  // same plaintext as a
  cases.emplace_back("header of c, body of a", c.substr(0, kHeaderBytes) + a.substr(kHeaderBytes));
  const std::string other_chunk = enc(key, ChunkId{target.stream, 4}, 1, 9, raw);
  std::string relabelled = other_chunk;  // chunk 4's object claiming to be chunk 3
  put_le(relabelled, 16, 3, 8);
  cases.emplace_back("chunk 4 relabelled 3", relabelled);
  cases.emplace_back("header of a, body of chunk 4", a.substr(0, kHeaderBytes) + other_chunk.substr(kHeaderBytes));
  // One block of a sibling stream's object (same nonce, same plaintext), or of
  // chunk 4's object, in our own object.
  const std::string sibling = enc(key, ChunkId{"/tenants/acme/x", 3}, 1, 6, raw);
  for (std::uint32_t i = 0; i < ha.block_count; ++i) {
    std::string spliced = a;
    spliced.replace(block_at(i), block_len(i), sibling.substr(block_at(i), block_len(i)));
    cases.emplace_back("block " + std::to_string(i) + " of a sibling stream", spliced);
    spliced = a;
    spliced.replace(block_at(i), block_len(i), other_chunk.substr(block_at(i), block_len(i)));
    cases.emplace_back("block " + std::to_string(i) + " of chunk 4", spliced);
  }
  // Objects of other streams whose headers were edited to name our stream.
  for (const char* stream : {"/tenants/acme/x", "/other"}) {
    std::string forged = enc(key, ChunkId{stream, 3}, 1, 10, raw);
    const auto tag = detail::stream_tag(target.stream);
    std::copy(tag.begin(), tag.end(), forged.begin() + 24);
    cases.emplace_back("object of " + std::string(stream) + " relabelled", forged);
  }
  // The last block dropped, and the count in the header edited to match.
  std::string dropped = a.substr(0, block_at(ha.block_count - 1));
  put_le(dropped, 40, std::uint64_t{1024} * (ha.block_count - 1), 8);
  put_le(dropped, 52, ha.block_count - 1, 4);
  cases.emplace_back("last block dropped, header edited", dropped);
  // An extra block: a's blocks then b's first block, header edited to match.
  std::string grown = a.substr(0, block_at(ha.block_count - 1)) + a.substr(block_at(0), block_len(0)) +
                      a.substr(block_at(ha.block_count - 1));
  put_le(grown, 40, ha.body_size + 1024, 8);
  put_le(grown, 52, ha.block_count + 1, 4);
  cases.emplace_back("block appended, header edited", grown);

  ASSERT_EQ(cases.size(), 100u);
  std::size_t refused = 0;
  for (const auto& [what, object] : cases) {
    auto r = decode_chunk(key, target, object);
    if (!r && r.error().code == errc::corruption) {
      ++refused;
    } else {
      ADD_FAILURE() << what << ": " << (r ? "returned data" : r.error().message);
    }
  }
  EXPECT_EQ(refused, 100u);
  EXPECT_EQ(decode_chunk(key, target, a).value(), raw);
}

TEST(ChunkTamper, WrongMasterKeyIsRejected) {
  const ChunkId id{"/a", 1};
  const std::string object = encode_chunk(key_of(kKeyHex), id, "hello\n").value();
  const MasterKey wrong = key_of(kOtherKeyHex);
  EXPECT_TRUE(rejected(wrong, id, object));
  EXPECT_EQ(error_of(wrong, id, object), "block 1 of 1 failed authentication");
}

TEST(ChunkTamper, ErrorsNameWhatFailed) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/tenants/acme", 3};
  const std::string object = encode_with(key, id, random_bytes(20'000, 14), 4096);
  std::string flipped = object;
  flipped[kHeaderBytes + 2 * (4096 + kTagBytes) + 17] ^= 0x20;  // in block 3 of 5
  EXPECT_EQ(error_of(key, id, flipped), "block 3 of 5 failed authentication");
  flipped = object;
  flipped[flipped.size() - 1] ^= 0x01;  // last tag
  EXPECT_EQ(error_of(key, id, flipped), "block 5 of 5 failed authentication");
  flipped = object;
  flipped[60] ^= 0x01;  // nonce
  EXPECT_EQ(error_of(key, id, flipped), "block 1 of 5 failed authentication");
  EXPECT_EQ(error_of(key, ChunkId{"/tenants/acme", 4}, object),
            "object is for another stream or chunk (header: chunk 3, expected chunk 4)");
  EXPECT_EQ(error_of(key, ChunkId{"/tenants/other", 3}, object),
            "object is for another stream or chunk (header: chunk 3 of another stream, expected chunk 3)");
  EXPECT_EQ(error_of(key, id, object, 2), "object is under key id 1, expected key id 2");
  EXPECT_EQ(error_of(key, id, object.substr(0, 40)), "truncated: 40 bytes, shorter than the 68-byte header");
  std::string bad = object;
  bad[0] = 'X';
  EXPECT_EQ(error_of(key, id, bad), "not a chunk object (bad magic)");
  bad = object;
  put_le(bad, 8, 2, 2);
  EXPECT_EQ(error_of(key, id, bad), "unsupported format version 2");
  bad = object;
  bad[10] = 2;
  EXPECT_EQ(error_of(key, id, bad), "unsupported cipher id 2");
  bad = object;
  bad[11] = 0;
  EXPECT_EQ(error_of(key, id, bad), "unsupported compression id 0");
  bad = object;
  put_le(bad, 32, std::uint64_t{1} << 60, 8);
  EXPECT_EQ(error_of(key, id, bad), "raw size 1152921504606846976 exceeds the maximum of 67108864");
  bad = object;
  put_le(bad, 52, 6, 4);
  EXPECT_EQ(error_of(key, id, bad), "block count 6 does not match body size 20010 and block size 4096");
  bad = object;
  put_le(bad, 48, 32, 4);
  EXPECT_EQ(error_of(key, id, bad), "block size 32 is outside [64, 16777216]");
  bad = object;
  put_le(bad, 40, 0, 8);
  EXPECT_EQ(error_of(key, id, bad), "body size is 0");
}

TEST(ChunkTamper, ErrorsNeverContainKeysOrPlaintext) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  std::string chunk;
  for (int i = 0; i < 300; ++i) chunk += " {\"card\":\"SECRET-PAYLOAD-7f3a\",\"n\":" + std::to_string(i) + "}\n";
  const std::string object = encode_with(key, id, chunk, 64);
  detail::DataKey data_key;
  ASSERT_TRUE(detail::derive_data_key(key, 1, "/a", data_key));
  const std::string data_key_hex = to_hex(data_key.bytes());
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < object.size(); i += 7) {
    std::string t = object;
    t[i] ^= 0x04;
    messages.push_back(error_of(key, id, t));
    messages.push_back(error_of(key, id, object.substr(0, i)));
  }
  messages.push_back(error_of(key_of(kOtherKeyHex), id, object));
  // An authentic object whose body is not what the header says (a leaked key).
  auto body = detail::compress_body(chunk).value();
  ChunkHeader h = parse_header(object).value();
  h.raw_size = chunk.size() - 1;
  h.block_size = kMaxBlockSize;
  h.block_count = 1;
  messages.push_back(error_of(key, id, detail::seal(data_key, id, h, body).value()));
  for (const std::string& m : messages) {
    ASSERT_NE(m, "<decoded>");
    EXPECT_EQ(m.find("SECRET"), std::string::npos) << m;
    EXPECT_EQ(m.find(kKeyHex.substr(0, 16)), std::string::npos) << m;
    EXPECT_EQ(m.find(data_key_hex.substr(0, 16)), std::string::npos) << m;
  }
}

// ---- size caps after decryption (RELIABILITY B4) ----

TEST(ChunkCaps, ForgedRawSizeIsRejectedWithoutAllocating) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  std::string object = encode_chunk(key, id, json_lines_chunk(50'000, 15)).value();
  put_le(object, 32, std::uint64_t{1} << 60, 8);
  const std::size_t largest = largest_allocation_of([&] { EXPECT_TRUE(rejected(key, id, object)); });
  EXPECT_LT(largest, 4096u);
  // The same lie with the AEAD bypassed.
  std::string plain = object.substr(0, kHeaderBytes) + detail::compress_body("abc").value();
  put_le(plain, 32, std::uint64_t{1} << 60, 8);
  put_le(plain, 40, plain.size() - kHeaderBytes, 8);
  put_le(plain, 52, 1, 4);
  const std::size_t largest_unsealed = largest_allocation_of([&] {
    auto r = detail::decode_unsealed(plain);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "raw size 1152921504606846976 exceeds the maximum of 67108864");
  });
  EXPECT_LT(largest_unsealed, 4096u);
}

// Seals `body` under an authentic header that says `raw_size` (as a leaked key
// or an encoder bug could).
std::string seal_lying(const MasterKey& key, const ChunkId& id, std::string_view body, std::uint64_t raw_size) {
  detail::DataKey data_key;
  EXPECT_TRUE(detail::derive_data_key(key, 1, id.stream, data_key));
  ChunkHeader h;
  h.chunk = id.chunk;
  h.stream_tag = detail::stream_tag(id.stream);
  h.raw_size = raw_size;
  h.body_size = body.size();
  h.block_size = 4096;
  h.block_count = static_cast<std::uint32_t>((body.size() + 4095) / 4096);
  h.nonce = nonce_of(0x77);
  return detail::seal(data_key, id, h, body).value();
}

std::string zstd_frame(std::string_view raw, bool declare_size) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, declare_size ? 1 : 0);
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const std::size_t n = ZSTD_compress2(c, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(c);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

TEST(ChunkCaps, AuthenticBombIsAnErrorNotAnAllocation) {
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  const std::string bomb = zstd_frame(std::string(kMaxRawSize, '\0'), /*declare_size=*/true);
  ASSERT_LT(bomb.size(), 8192u);
  const std::string object = seal_lying(key, id, bomb, 4096);
  std::string message;
  const std::size_t largest = largest_allocation_of([&] { message = error_of(key, id, object); });
  EXPECT_EQ(message, "zstd frame declares 67108864 bytes, header says 4096");
  EXPECT_LT(largest, 64u * 1024);
  // Without a declared size the frame is refused before decompressing.
  const std::string undeclared = seal_lying(key, id, zstd_frame(std::string(1u << 20, '\0'), false), 4096);
  EXPECT_EQ(error_of(key, id, undeclared), "zstd frame does not declare its content size");
}

TEST(ChunkCaps, FrameThatLiesAboutItsSizeStopsAtTheHeaderRawSize) {
  // A frame of 1 MiB of 'a' whose frame header is edited to declare 4096
  // bytes, under an authentic header that also says 4096.
  std::string frame = zstd_frame(std::string(1u << 20, 'a'), true);
  const auto fhd = static_cast<unsigned char>(frame[4]);
  ASSERT_EQ(fhd >> 6, 2);    // 4-byte content size field
  ASSERT_EQ(fhd & 0x03, 0);  // no dictionary id
  // magic(4), descriptor(1), a window byte unless single-segment, then the size.
  put_le(frame, (fhd & 0x20) != 0 ? 5 : 6, 4096, 4);
  const MasterKey key = key_of(kKeyHex);
  const ChunkId id{"/a", 1};
  const std::string object = seal_lying(key, id, frame, 4096);
  std::string message;
  const std::size_t largest = largest_allocation_of([&] { message = error_of(key, id, object); });
  EXPECT_EQ(message, "decompressed size exceeds the header's raw size 4096");
  EXPECT_LT(largest, 64u * 1024);
}

TEST(ChunkCaps, BodyMustBeExactlyOneZstdFrame) {
  const std::string frame = zstd_frame("hello\n", true);
  EXPECT_EQ(detail::decompress_body(frame, 6).value(), "hello\n");
  EXPECT_EQ(detail::decompress_body(frame + "x", 6).error().message, "1 bytes after the zstd frame");
  EXPECT_EQ(detail::decompress_body(frame + frame, 6).error().message,
            frame.size() == 0 ? "" : std::to_string(frame.size()) + " bytes after the zstd frame");
  EXPECT_EQ(detail::decompress_body("hello", 5).error().message, "body is not a zstd frame (bad magic)");
  const std::string skippable("\x50\x2a\x4d\x18\x00\x00\x00\x00", 8);
  EXPECT_EQ(detail::decompress_body(skippable, 0).error().message, "body is not a zstd frame (bad magic)");
  EXPECT_EQ(detail::decompress_body(frame, 7).error().message, "zstd frame declares 6 bytes, header says 7");
  EXPECT_EQ(detail::decompress_body(frame.substr(0, frame.size() - 1), 6).error().code, errc::corruption);
  EXPECT_EQ(detail::decompress_body(frame, 6, 5).error().message, "raw size 6 exceeds the maximum of 5");
  std::string garbled = frame;
  garbled[garbled.size() - 2] ^= 0x5a;
  auto r = detail::decompress_body(garbled, 6);
  if (r) {
    EXPECT_EQ(r->size(), 6u);
  }  // raw blocks carry no checksum: garbage of the right size is possible
}

TEST(ChunkCaps, DecodeUnsealedChecksTheFraming) {
  const std::string frame = zstd_frame("hello\n", true);
  ChunkHeader h;
  h.raw_size = 6;
  h.body_size = frame.size();
  h.block_size = 64;
  h.block_count = 1;
  const std::string header = detail::encode_header(h);
  EXPECT_EQ(detail::decode_unsealed(header + frame).value(), "hello\n");
  EXPECT_EQ(detail::decode_unsealed(header + frame + "z").error().message,
            "body is " + std::to_string(frame.size() + 1) + " bytes, header says " + std::to_string(frame.size()));
  EXPECT_FALSE(detail::decode_unsealed(header.substr(0, 67)));
}

// ---- the worked example of docs/format/chunk-object.md ----

std::string doc_section(const std::string& name) {
  std::ifstream in(std::string(HORIZON_SOURCE_DIR) + "/docs/format/chunk-object.md", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto marker = doc.find("<!-- golden:" + name + " -->");
  if (marker == std::string::npos) return "<no section " + name + ">";
  const auto start = doc.find("```\n", marker) + 4;
  const auto end = doc.find("```\n", start);
  return doc.substr(start, end - start);
}

std::string doc_hex(const std::string& name) {
  std::string hex;
  for (char c : doc_section(name)) {
    if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
  }
  return hex;
}

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

struct DocExample {
  MasterKey key = key_of(kKeyHex);
  ChunkId id{"/demo", 3};
  std::string raw = doc_section("raw");
  EncodeParams params{Nonce{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab}, 64};
};

TEST(ChunkObjectDoc, DataKeyIsByteExact) {
  DocExample ex;
  detail::DataKey data_key;
  ASSERT_TRUE(detail::derive_data_key(ex.key, 1, ex.id.stream, data_key));
  EXPECT_EQ(doc_hex("data-key"), to_hex(data_key.bytes()));
}

TEST(ChunkObjectDoc, HeaderAadAndIvsAreByteExact) {
  DocExample ex;
  ASSERT_EQ(ex.raw.size(), 174u);
  const std::string body = from_hex(doc_hex("body"));
  ChunkHeader h;
  h.chunk = 3;
  h.stream_tag = detail::stream_tag("/demo");
  h.raw_size = ex.raw.size();
  h.body_size = body.size();
  h.block_size = 64;
  h.block_count = static_cast<std::uint32_t>((body.size() + 63) / 64);
  h.nonce = ex.params.nonce;
  const std::string header = detail::encode_header(h);
  EXPECT_EQ(doc_hex("header"), to_hex(header));
  EXPECT_EQ(doc_hex("aad-block-0"), to_hex(detail::block_aad(ex.id, h, header, 0)));
  std::string ivs;
  for (std::uint32_t i = 0; i < 3; ++i) ivs += to_hex(detail::block_iv(h.nonce, i));
  EXPECT_EQ(doc_hex("ivs"), ivs);
}

TEST(ChunkObjectDoc, ObjectIsByteExactForTheDocumentedBody) {
  // Independent of the zstd version: seal the documented body.
  DocExample ex;
  const std::string body = from_hex(doc_hex("body"));
  EXPECT_EQ(detail::decompress_body(body, ex.raw.size()).value(), ex.raw);
  const std::string object = from_hex(doc_hex("object"));
  ChunkHeader h = parse_header(object).value();
  detail::DataKey data_key;
  ASSERT_TRUE(detail::derive_data_key(ex.key, 1, ex.id.stream, data_key));
  EXPECT_EQ(to_hex(detail::seal(data_key, ex.id, h, body).value()), doc_hex("object"));
  EXPECT_EQ(decode_chunk(ex.key, ex.id, object).value(), ex.raw);
}

TEST(ChunkObjectDoc, EncoderIsByteExactWithThePinnedZstd) {
  if (ZSTD_versionNumber() != 10504) GTEST_SKIP() << "the example's body was made by zstd 1.5.4";
  DocExample ex;
  EXPECT_EQ(doc_hex("body"), to_hex(detail::compress_body(ex.raw).value()));
  EXPECT_EQ(doc_hex("object"), to_hex(encode_chunk(ex.key, ex.id, ex.raw, 1, ex.params).value()));
}

TEST(ChunkObjectDoc, BlocksOpenWithAFreshCipherContext) {
  // Cross-checks the codec's per-block IV re-initialisation against a new
  // OpenSSL context per block, keyed and IV'd in one call.
  DocExample ex;
  const std::string object = from_hex(doc_hex("object"));
  const ChunkHeader h = parse_header(object).value();
  detail::DataKey data_key;
  ASSERT_TRUE(detail::derive_data_key(ex.key, 1, ex.id.stream, data_key));
  std::string body;
  std::size_t pos = kHeaderBytes;
  for (std::uint32_t i = 0; i < h.block_count; ++i) {
    const std::size_t len = std::min<std::size_t>(h.block_size, h.body_size - body.size());
    const std::string aad = detail::block_aad(ex.id, h, object.substr(0, kHeaderBytes), i);
    const Nonce iv = detail::block_iv(h.nonce, i);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    std::string plain(len, '\0');
    std::string tag = object.substr(pos + len, kTagBytes);
    int n = 0;
    ASSERT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, data_key.bytes().data(), iv.data()), 1);
    ASSERT_EQ(EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                                static_cast<int>(aad.size())),
              1);
    ASSERT_EQ(EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(plain.data()), &n,
                                reinterpret_cast<const unsigned char*>(object.data() + pos), static_cast<int>(len)),
              1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag.data()), 1);
    EXPECT_EQ(EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(plain.data()), &n), 1) << "block " << i;
    EVP_CIPHER_CTX_free(ctx);
    body += plain;
    pos += len + kTagBytes;
  }
  EXPECT_EQ(to_hex(body), doc_hex("body"));
}

}  // namespace
}  // namespace horizon::codec
