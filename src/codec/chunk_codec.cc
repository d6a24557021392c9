// The sealed-chunk object format; see docs/format/chunk-object.md.

#include "codec/chunk_codec.h"

#include "codec/chunk_codec_internal.h"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace horizon::codec {
namespace {

constexpr std::array<unsigned char, 8> kMagic = {'E', 'H', 'C', 'H', 'U', 'N', 'K', '\0'};
constexpr std::array<unsigned char, 4> kZstdMagic = {0x28, 0xb5, 0x2f, 0xfd};
constexpr std::string_view kKdfInfoPrefix = "event-horizon chunk key v1";
constexpr int kZstdLevel = 3;
constexpr std::size_t kMaxStreamBytes = 1024;  // SPEC §2
constexpr std::size_t kAadIndexOffset = 14;    // where block_aad puts the block index

Error corruption(std::string message) { return Error::make(errc::corruption, std::move(message)); }
Error internal_error(std::string message) { return Error::make(errc::internal, std::move(message)); }

void put_u16(std::string& out, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
template <class T>
T get_le(const unsigned char* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>(v | (static_cast<T>(p[i]) << (8 * i)));
  return v;
}

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes_of(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// A buffer of plaintext that is wiped when it goes out of scope.
class WipedBuffer {
 public:
  explicit WipedBuffer(std::size_t n) : bytes_(n, '\0') {}
  explicit WipedBuffer(std::string s) : bytes_(std::move(s)) {}
  WipedBuffer(const WipedBuffer&) = delete;
  WipedBuffer& operator=(const WipedBuffer&) = delete;
  ~WipedBuffer() {
    // Up to the capacity: a string shrunk by resize() keeps its old bytes.
    bytes_.resize(bytes_.capacity());
    OPENSSL_cleanse(bytes_.data(), bytes_.size());
  }
  std::string& str() { return bytes_; }

 private:
  std::string bytes_;
};

struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfFree {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* k) const { EVP_KDF_CTX_free(k); }
};
struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// An AES-256-GCM context keyed with `key`, for encryption or decryption.
struct GcmContext {
  std::unique_ptr<EVP_CIPHER, CipherFree> cipher;
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx;
};

Result<GcmContext> make_gcm(const detail::DataKey& key, bool encrypt) {
  GcmContext g;
  g.cipher.reset(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  g.ctx.reset(EVP_CIPHER_CTX_new());
  if (!g.cipher || !g.ctx) return internal_error("OpenSSL: AES-256-GCM is not available");
  const int ok = encrypt ? EVP_EncryptInit_ex2(g.ctx.get(), g.cipher.get(), key.bytes().data(), nullptr, nullptr)
                         : EVP_DecryptInit_ex2(g.ctx.get(), g.cipher.get(), key.bytes().data(), nullptr, nullptr);
  if (ok != 1) return internal_error("OpenSSL: AES-256-GCM key setup failed");
  return g;
}

void set_aad_index(std::string& aad, std::uint32_t index) {
  for (std::size_t i = 0; i < 4; ++i) aad[kAadIndexOffset + i] = static_cast<char>((index >> (8 * i)) & 0xff);
}

// Body bytes of block `i`.
std::size_t block_length(const ChunkHeader& h, std::uint32_t i) {
  const std::uint64_t start = std::uint64_t{i} * h.block_size;
  if (start >= h.body_size) return 0;
  return static_cast<std::size_t>(std::min<std::uint64_t>(h.block_size, h.body_size - start));
}

Result<void> check_id(const ChunkId& id) {
  if (id.stream.empty() || id.stream.size() > kMaxStreamBytes) {
    return Error::make(errc::invalid_argument,
                       fmt::format("stream name must be 1 to {} bytes, got {}", kMaxStreamBytes, id.stream.size()));
  }
  return {};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---- MasterKey ----

Result<MasterKey> MasterKey::parse_hex(std::string_view hex) {
  if (hex.size() != 2 * kMasterKeyBytes) {
    return Error::make(errc::invalid_argument,
                       fmt::format("master key must be exactly {} hexadecimal characters (256 bits), got {} characters",
                                   2 * kMasterKeyBytes, hex.size()));
  }
  MasterKey key;
  for (std::size_t i = 0; i < kMasterKeyBytes; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Error::make(
          errc::invalid_argument,
          fmt::format("master key has a character that is not hexadecimal at offset {}", hi < 0 ? 2 * i : 2 * i + 1));
    }
    key.bytes_[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return key;
}

MasterKey::MasterKey(MasterKey&& other) noexcept : bytes_(other.bytes_) {
  OPENSSL_cleanse(other.bytes_.data(), other.bytes_.size());
}

MasterKey& MasterKey::operator=(MasterKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    OPENSSL_cleanse(other.bytes_.data(), other.bytes_.size());
  }
  return *this;
}

MasterKey::~MasterKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

// ---- internals ----

namespace detail {

DataKey::~DataKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Result<void> derive_data_key(const MasterKey& key, std::uint32_t key_id, std::string_view stream, DataKey& out) {
  std::string info(kKdfInfoPrefix);
  put_u32(info, key_id);
  info.append(stream);
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return internal_error("OpenSSL: HKDF is not available");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return internal_error("OpenSSL: HKDF context allocation failed");
  char digest[] = "SHA256";
  auto& ikm = KeyAccess::bytes(key);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), out.bytes().data(), out.bytes().size(), params) != 1) {
    return internal_error("OpenSSL: HKDF-SHA256 key derivation failed");
  }
  return {};
}

std::array<unsigned char, kStreamTagBytes> stream_tag(std::string_view stream) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(stream.data(), stream.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    // SHA-256 cannot fail short of memory exhaustion. The tag is only an
    // early hint: the AEAD binds the full stream name either way.
    md.fill(0);
  }
  std::array<unsigned char, kStreamTagBytes> tag{};
  std::copy_n(md.begin(), tag.size(), tag.begin());
  return tag;
}

std::string encode_header(const ChunkHeader& h) {
  std::string out(reinterpret_cast<const char*>(kMagic.data()), kMagic.size());
  put_u16(out, h.format_version);
  out.push_back(static_cast<char>(h.cipher));
  out.push_back(static_cast<char>(h.compression));
  put_u32(out, h.key_id);
  put_u64(out, h.chunk);
  out.append(reinterpret_cast<const char*>(h.stream_tag.data()), h.stream_tag.size());
  put_u64(out, h.raw_size);
  put_u64(out, h.body_size);
  put_u32(out, h.block_size);
  put_u32(out, h.block_count);
  out.append(reinterpret_cast<const char*>(h.nonce.data()), h.nonce.size());
  return out;
}

std::string block_aad(const ChunkId& id, const ChunkHeader& h, std::string_view header_bytes, std::uint32_t index) {
  std::string aad;
  aad.reserve(26 + id.stream.size() + header_bytes.size());
  put_u16(aad, h.format_version);
  put_u32(aad, h.key_id);
  put_u64(aad, id.chunk);
  put_u32(aad, index);
  put_u32(aad, h.block_count);
  put_u32(aad, static_cast<std::uint32_t>(id.stream.size()));
  aad += id.stream;
  aad += header_bytes;
  return aad;
}

Nonce block_iv(const Nonce& nonce, std::uint32_t index) {
  Nonce iv = nonce;
  for (std::size_t i = 0; i < 4; ++i) {
    iv[8 + i] = static_cast<unsigned char>(iv[8 + i] ^ ((index >> (8 * (3 - i))) & 0xff));
  }
  return iv;
}

Result<std::string> compress_body(std::string_view raw) {
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return internal_error("zstd: cannot allocate a compression context");
  if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kZstdLevel)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0))) {
    return internal_error("zstd: cannot set compression parameters");
  }
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const std::size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), raw.data(), raw.size());
  if (ZSTD_isError(n)) return internal_error(fmt::format("zstd: compression failed ({})", ZSTD_getErrorName(n)));
  out.resize(n);
  return out;
}

Result<std::string> seal(const DataKey& key, const ChunkId& id, const ChunkHeader& h, std::string_view body) {
  const std::string header = encode_header(h);
  auto gcm = make_gcm(key, /*encrypt=*/true);
  if (!gcm) return gcm.error();
  std::string out;
  out.reserve(header.size() + body.size() + std::size_t{kTagBytes} * h.block_count);
  out += header;
  std::string aad = block_aad(id, h, header, 0);
  std::size_t offset = 0;
  for (std::uint32_t i = 0; i < h.block_count; ++i) {
    const std::size_t len = std::min(block_length(h, i), body.size() - std::min(offset, body.size()));
    const Nonce iv = block_iv(h.nonce, i);
    set_aad_index(aad, i);
    const std::size_t pos = out.size();
    out.resize(pos + len + kTagBytes);
    unsigned char* dst = bytes_of(out) + pos;
    int n = 0;
    int fin = 0;
    if (EVP_EncryptInit_ex2(gcm->ctx.get(), nullptr, nullptr, iv.data(), nullptr) != 1 ||
        EVP_EncryptUpdate(gcm->ctx.get(), nullptr, &n, bytes_of(aad), static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(gcm->ctx.get(), dst, &n, bytes_of(body) + offset, static_cast<int>(len)) != 1 ||
        static_cast<std::size_t>(n) != len || EVP_EncryptFinal_ex(gcm->ctx.get(), dst + len, &fin) != 1 || fin != 0 ||
        EVP_CIPHER_CTX_ctrl(gcm->ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagBytes), dst + len) != 1) {
      return internal_error(fmt::format("OpenSSL: AES-256-GCM encryption of block {} failed", i + 1));
    }
    offset += len;
  }
  return out;
}

Result<std::string> decompress_body(std::string_view body, std::uint64_t raw_size, std::uint64_t max_raw_size) {
  const std::uint64_t cap = std::min(max_raw_size, kMaxRawSize);
  if (raw_size > cap) return corruption(fmt::format("raw size {} exceeds the maximum of {}", raw_size, cap));
  if (body.size() < kZstdMagic.size() || std::memcmp(body.data(), kZstdMagic.data(), kZstdMagic.size()) != 0) {
    return corruption("body is not a zstd frame (bad magic)");
  }
  const std::size_t frame = ZSTD_findFrameCompressedSize(body.data(), body.size());
  if (ZSTD_isError(frame))
    return corruption(fmt::format("body is not a valid zstd frame ({})", ZSTD_getErrorName(frame)));
  if (frame != body.size()) return corruption(fmt::format("{} bytes after the zstd frame", body.size() - frame));
  const unsigned long long declared = ZSTD_getFrameContentSize(body.data(), body.size());
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return corruption("zstd frame does not declare its content size");
  if (declared == ZSTD_CONTENTSIZE_ERROR) return corruption("zstd frame header is invalid");
  if (declared != raw_size)
    return corruption(fmt::format("zstd frame declares {} bytes, header says {}", declared, raw_size));
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return internal_error("zstd: cannot allocate a decompression context");
  // Single-shot into exactly raw_size bytes: zstd writes nothing beyond the
  // buffer and allocates no window of its own.
  WipedBuffer out(static_cast<std::size_t>(raw_size));
  const std::size_t n = ZSTD_decompressDCtx(dctx.get(), out.str().data(), out.str().size(), body.data(), body.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return corruption(fmt::format("decompressed size exceeds the header's raw size {}", raw_size));
    }
    return corruption(fmt::format("zstd frame is corrupt ({})", ZSTD_getErrorName(n)));
  }
  if (n != raw_size) return corruption(fmt::format("decompressed {} bytes, header says {}", n, raw_size));
  return std::exchange(out.str(), std::string());
}

Result<std::string> decode_unsealed(std::string_view plain, std::uint64_t max_raw_size) {
  auto h = parse_header(plain);
  if (!h) return h.error();
  const std::string_view body = plain.substr(kHeaderBytes);
  if (body.size() != h->body_size) {
    return corruption(fmt::format("body is {} bytes, header says {}", body.size(), h->body_size));
  }
  return decompress_body(body, h->raw_size, max_raw_size);
}

}  // namespace detail

// ---- the format ----

Result<ChunkHeader> parse_header(std::string_view object) {
  if (object.size() < kHeaderBytes) {
    return corruption(fmt::format("truncated: {} bytes, shorter than the {}-byte header", object.size(), kHeaderBytes));
  }
  const unsigned char* p = bytes_of(object);
  if (std::memcmp(p, kMagic.data(), kMagic.size()) != 0) return corruption("not a chunk object (bad magic)");
  ChunkHeader h;
  h.format_version = get_le<std::uint16_t>(p + 8);
  h.cipher = p[10];
  h.compression = p[11];
  h.key_id = get_le<std::uint32_t>(p + 12);
  h.chunk = get_le<std::uint64_t>(p + 16);
  std::copy_n(p + 24, kStreamTagBytes, h.stream_tag.begin());
  h.raw_size = get_le<std::uint64_t>(p + 32);
  h.body_size = get_le<std::uint64_t>(p + 40);
  h.block_size = get_le<std::uint32_t>(p + 48);
  h.block_count = get_le<std::uint32_t>(p + 52);
  std::copy_n(p + 56, kNonceBytes, h.nonce.begin());

  if (h.format_version != kFormatVersion)
    return corruption(fmt::format("unsupported format version {}", h.format_version));
  if (h.cipher != kCipherAes256Gcm) return corruption(fmt::format("unsupported cipher id {}", h.cipher));
  if (h.compression != kCompressionZstd) return corruption(fmt::format("unsupported compression id {}", h.compression));
  if (h.raw_size > kMaxRawSize) {
    return corruption(fmt::format("raw size {} exceeds the maximum of {}", h.raw_size, kMaxRawSize));
  }
  if (h.block_size < kMinBlockSize || h.block_size > kMaxBlockSize) {
    return corruption(fmt::format("block size {} is outside [{}, {}]", h.block_size, kMinBlockSize, kMaxBlockSize));
  }
  if (h.body_size == 0) return corruption("body size is 0");
  const std::uint64_t bound = ZSTD_compressBound(static_cast<std::size_t>(h.raw_size));
  if (h.body_size > bound) {
    return corruption(
        fmt::format("body size {} is impossible for raw size {} (at most {})", h.body_size, h.raw_size, bound));
  }
  const std::uint64_t blocks = (h.body_size + h.block_size - 1) / h.block_size;
  if (h.block_count != blocks) {
    return corruption(fmt::format("block count {} does not match body size {} and block size {}", h.block_count,
                                  h.body_size, h.block_size));
  }
  return h;
}

Result<std::string> encode_chunk(const MasterKey& key, const ChunkId& id, std::string_view raw, std::uint32_t key_id,
                                 const EncodeParams& params) {
  if (auto ok = check_id(id); !ok) return ok.error();
  if (raw.size() > kMaxRawSize) {
    return Error::make(errc::invalid_argument,
                       fmt::format("chunk of {} bytes exceeds the codec's maximum of {}", raw.size(), kMaxRawSize));
  }
  if (params.block_size < kMinBlockSize || params.block_size > kMaxBlockSize) {
    return Error::make(errc::invalid_argument, fmt::format("block size {} is outside [{}, {}]", params.block_size,
                                                           kMinBlockSize, kMaxBlockSize));
  }
  auto compressed = detail::compress_body(raw);
  if (!compressed) return compressed.error();
  WipedBuffer body(std::move(*compressed));
  ChunkHeader h;
  h.key_id = key_id;
  h.chunk = id.chunk;
  h.stream_tag = detail::stream_tag(id.stream);
  h.raw_size = raw.size();
  h.body_size = body.str().size();
  h.block_size = params.block_size;
  h.block_count = static_cast<std::uint32_t>((h.body_size + h.block_size - 1) / h.block_size);
  h.nonce = params.nonce;
  detail::DataKey data_key;
  if (auto ok = detail::derive_data_key(key, key_id, id.stream, data_key); !ok) return ok.error();
  return detail::seal(data_key, id, h, body.str());
}

Result<std::string> encode_chunk(const MasterKey& key, const ChunkId& id, std::string_view raw, std::uint32_t key_id) {
  EncodeParams params;
  if (RAND_bytes(params.nonce.data(), static_cast<int>(params.nonce.size())) != 1) {
    return internal_error("OpenSSL: the random number generator failed");
  }
  return encode_chunk(key, id, raw, key_id, params);
}

Result<std::string> decode_chunk(const MasterKey& key, const ChunkId& id, std::string_view object,
                                 std::uint32_t expected_key_id) {
  if (auto ok = check_id(id); !ok) return ok.error();
  auto parsed = parse_header(object);
  if (!parsed) return parsed.error();
  const ChunkHeader& h = *parsed;
  const bool other_stream = h.stream_tag != detail::stream_tag(id.stream);
  if (h.chunk != id.chunk || other_stream) {
    return corruption(fmt::format("object is for another stream or chunk (header: chunk {}{}, expected chunk {})",
                                  h.chunk, other_stream ? " of another stream" : "", id.chunk));
  }
  if (h.key_id != expected_key_id) {
    return corruption(fmt::format("object is under key id {}, expected key id {}", h.key_id, expected_key_id));
  }
  const std::uint64_t expected_size = h.object_size();
  if (object.size() < expected_size) {
    const std::uint64_t whole = (object.size() - kHeaderBytes) / (std::uint64_t{h.block_size} + kTagBytes);
    return corruption(fmt::format("truncated: {} of {} blocks ({} of {} bytes)",
                                  std::min<std::uint64_t>(whole, h.block_count - 1), h.block_count, object.size(),
                                  expected_size));
  }
  if (object.size() > expected_size) {
    return corruption(
        fmt::format("extended: {} bytes after the last of {} blocks", object.size() - expected_size, h.block_count));
  }

  detail::DataKey data_key;
  if (auto ok = detail::derive_data_key(key, h.key_id, id.stream, data_key); !ok) return ok.error();
  auto gcm = make_gcm(data_key, /*encrypt=*/false);
  if (!gcm) return gcm.error();
  const std::string_view header = object.substr(0, kHeaderBytes);
  std::string aad = detail::block_aad(id, h, header, 0);
  WipedBuffer body(static_cast<std::size_t>(h.body_size));
  const unsigned char* in = bytes_of(object) + kHeaderBytes;
  std::size_t offset = 0;
  for (std::uint32_t i = 0; i < h.block_count; ++i) {
    const std::size_t len = block_length(h, i);
    const Nonce iv = detail::block_iv(h.nonce, i);
    set_aad_index(aad, i);
    std::array<unsigned char, kTagBytes> tag{};
    std::copy_n(in + len, kTagBytes, tag.begin());
    int n = 0;
    int fin = 0;
    if (EVP_DecryptInit_ex2(gcm->ctx.get(), nullptr, nullptr, iv.data(), nullptr) != 1 ||
        EVP_DecryptUpdate(gcm->ctx.get(), nullptr, &n, bytes_of(aad), static_cast<int>(aad.size())) != 1 ||
        EVP_DecryptUpdate(gcm->ctx.get(), bytes_of(body.str()) + offset, &n, in, static_cast<int>(len)) != 1 ||
        static_cast<std::size_t>(n) != len ||
        EVP_CIPHER_CTX_ctrl(gcm->ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagBytes), tag.data()) != 1 ||
        EVP_DecryptFinal_ex(gcm->ctx.get(), bytes_of(body.str()) + offset + len, &fin) != 1) {
      return corruption(fmt::format("block {} of {} failed authentication", i + 1, h.block_count));
    }
    in += len + kTagBytes;
    offset += len;
  }
  return detail::decompress_body(body.str(), h.raw_size);
}

}  // namespace horizon::codec
