#pragma once
// The sealed-chunk object format (docs/format/chunk-object.md): a sealed chunk
// is compressed with zstd, then cut into blocks that are each sealed with
// AES-256-GCM under a per-stream data key derived from the master key
// (HKDF-SHA256). Every block's associated data binds the format version, the
// stream, the chunk, the block index and count, the key id and the header, so
// a changed, cut, extended or swapped object is detected and never returned
// as data (SPEC §9, RELIABILITY B3).
//
// Thread-safety: every function is safe to call concurrently; a MasterKey is
// immutable after construction and may be shared between threads.

#include "core/errc.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon::codec {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::uint8_t kCipherAes256Gcm = 1;
inline constexpr std::uint8_t kCompressionZstd = 1;
inline constexpr std::size_t kHeaderBytes = 68;
inline constexpr std::size_t kNonceBytes = 12;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kStreamTagBytes = 8;
inline constexpr std::size_t kMasterKeyBytes = 32;
inline constexpr std::uint32_t kDefaultKeyId = 1;
inline constexpr std::uint32_t kDefaultBlockSize = 1u << 20;  // body bytes per block
inline constexpr std::uint32_t kMinBlockSize = 64;
inline constexpr std::uint32_t kMaxBlockSize = 16u << 20;
// The absolute cap on a chunk's raw size, for encoding and decoding.
inline constexpr std::uint64_t kMaxRawSize = 64u << 20;

// Which chunk an object holds. `stream` is the stream name (SPEC §2, at most
// 1024 bytes, e.g. "/tenants/acme").
struct ChunkId {
  std::string stream;
  std::uint64_t chunk = 0;
};

namespace detail {
struct KeyAccess;
}

// The 256-bit master key (HORIZON_KEY). Move-only so the secret exists once;
// the bytes are wiped (OPENSSL_cleanse) when the key is destroyed or moved
// from. It deliberately has no operator<<, to_string or accessor: only this
// room reads the bytes.
class MasterKey {
 public:
  // Exactly 64 hexadecimal characters (either case, nothing else). Otherwise
  // errc::invalid_argument; the message never contains the input.
  [[nodiscard]] static Result<MasterKey> parse_hex(std::string_view hex);

  MasterKey(MasterKey&& other) noexcept;
  MasterKey& operator=(MasterKey&& other) noexcept;
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;
  ~MasterKey();

 private:
  MasterKey() = default;
  friend struct detail::KeyAccess;
  std::array<unsigned char, kMasterKeyBytes> bytes_{};
};

// The fields of an object's header (see the format document for the rules).
struct ChunkHeader {
  std::uint16_t format_version = kFormatVersion;
  std::uint8_t cipher = kCipherAes256Gcm;
  std::uint8_t compression = kCompressionZstd;
  std::uint32_t key_id = kDefaultKeyId;
  std::uint64_t chunk = 0;
  std::array<unsigned char, kStreamTagBytes> stream_tag{};
  std::uint64_t raw_size = 0;   // the chunk's bytes before compression
  std::uint64_t body_size = 0;  // bytes of the compressed body (sum of the block plaintexts)
  std::uint32_t block_size = kDefaultBlockSize;
  std::uint32_t block_count = 0;
  std::array<unsigned char, kNonceBytes> nonce{};

  // Bytes the object occupies in the store: header + body + one tag per block
  // (for metrics: stored vs raw_size).
  std::uint64_t object_size() const { return kHeaderBytes + body_size + std::uint64_t{kTagBytes} * block_count; }

  friend bool operator==(const ChunkHeader&, const ChunkHeader&) = default;
};

// Compresses and encrypts `raw` (one sealed chunk) for `id`, under the data
// key of (`key_id`, id.stream), with a fresh random nonce. Errors:
// invalid_argument if raw is larger than kMaxRawSize or the stream name is
// empty or longer than 1024 bytes; internal if OpenSSL or zstd fail (e.g. the
// RNG is not seeded).
[[nodiscard]] Result<std::string> encode_chunk(const MasterKey& key, const ChunkId& id, std::string_view raw,
                                               std::uint32_t key_id = kDefaultKeyId);

// Authenticates and decodes an object written by encode_chunk for the same
// `id` under `expected_key_id`. Any mismatch or damage is errc::corruption
// with a message naming what failed ("block 3 of 5 failed authentication",
// "object is for another stream or chunk (...)", "truncated: 4 of 5 blocks
// (...)", "decompressed size exceeds ..."); no data is returned unless every
// block authenticated, and messages never contain key material or plaintext.
// invalid_argument for an invalid `id` (as encode_chunk); internal if OpenSSL
// fails. Allocates at most the object's size plus the (capped) raw size.
[[nodiscard]] Result<std::string> decode_chunk(const MasterKey& key, const ChunkId& id, std::string_view object,
                                               std::uint32_t expected_key_id = kDefaultKeyId);

// Parses and checks the header at the start of `object` (only its first
// kHeaderBytes are read): magic, version, known cipher and compression,
// sizes within the caps and consistent with each other. For tools and
// metrics: the header is NOT authenticated by this call (decode_chunk does
// that). errc::corruption on any violation.
[[nodiscard]] Result<ChunkHeader> parse_header(std::string_view object);

}  // namespace horizon::codec
