#pragma once
// Internals of the chunk codec that tests, the golden document test and the
// fuzzer reach: key derivation, the header/AAD/IV encodings, sealing a body
// under an arbitrary (even lying) header, and the post-decryption path with
// its size caps. Not for production callers.
//
// Thread-safety: every function is safe to call concurrently; a DataKey is
// immutable after construction.

#include "codec/chunk_codec.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon::codec {

using Nonce = std::array<unsigned char, kNonceBytes>;

// What encode_chunk normally chooses itself. A fixed nonce is for golden
// tests only: reusing a nonce under the same data key breaks AES-GCM.
struct EncodeParams {
  Nonce nonce{};
  std::uint32_t block_size = kDefaultBlockSize;
};

// encode_chunk with the nonce and block size given (test-only overload).
// invalid_argument also for a block size outside [kMinBlockSize, kMaxBlockSize].
[[nodiscard]] Result<std::string> encode_chunk(const MasterKey& key, const ChunkId& id, std::string_view raw,
                                               std::uint32_t key_id, const EncodeParams& params);

namespace detail {

// Reads the master key's bytes (the only way to; the codec's own use).
struct KeyAccess {
  static const std::array<unsigned char, kMasterKeyBytes>& bytes(const MasterKey& key) { return key.bytes_; }
};

// The 256-bit AES key of one (stream, key id); wiped when destroyed.
class DataKey {
 public:
  DataKey() = default;
  DataKey(const DataKey&) = delete;
  DataKey& operator=(const DataKey&) = delete;
  ~DataKey();
  std::array<unsigned char, 32>& bytes() { return bytes_; }
  const std::array<unsigned char, 32>& bytes() const { return bytes_; }

 private:
  std::array<unsigned char, 32> bytes_{};
};

// HKDF-SHA256(master, no salt, "event-horizon chunk key v1" | u32 key id | stream).
// errc::internal if OpenSSL fails.
[[nodiscard]] Result<void> derive_data_key(const MasterKey& key, std::uint32_t key_id, std::string_view stream,
                                           DataKey& out);

// The first 8 bytes of SHA-256(stream).
std::array<unsigned char, kStreamTagBytes> stream_tag(std::string_view stream);

// The 68 header bytes of `h` (no validation).
std::string encode_header(const ChunkHeader& h);

// The associated data of block `index` (format document, "Associated data").
std::string block_aad(const ChunkId& id, const ChunkHeader& h, std::string_view header_bytes, std::uint32_t index);

// IV(i) = nonce with its last 4 bytes XORed with be32(i).
Nonce block_iv(const Nonce& nonce, std::uint32_t index);

// The zstd frame of `raw` as the encoder writes it (level 3, content size, no
// checksum). errc::internal if zstd fails.
[[nodiscard]] Result<std::string> compress_body(std::string_view raw);

// Seals `body` under header `h` exactly as given (h.body_size, h.block_count
// and h.block_size must describe `body`; nothing else is checked, so a test
// can build an authentic object whose header lies about the raw size, as a
// leaked key or an encoder bug would).
[[nodiscard]] Result<std::string> seal(const DataKey& key, const ChunkId& id, const ChunkHeader& h,
                                       std::string_view body);

// The path after authentication: checks that `body` is one zstd frame that
// declares `raw_size` bytes, that raw_size <= max_raw_size, and decompresses
// it into exactly raw_size bytes (never allocating more). errc::corruption
// on any violation.
[[nodiscard]] Result<std::string> decompress_body(std::string_view body, std::uint64_t raw_size,
                                                  std::uint64_t max_raw_size = kMaxRawSize);

// The decode path with the AEAD bypassed (for the fuzzer): `plain` is an
// object whose blocks were replaced by their plaintexts and whose tags were
// dropped (the 68-byte header, then exactly body_size body bytes). Checks the
// header and the framing, then decompress_body with `max_raw_size`.
[[nodiscard]] Result<std::string> decode_unsealed(std::string_view plain, std::uint64_t max_raw_size = kMaxRawSize);

}  // namespace detail
}  // namespace horizon::codec
