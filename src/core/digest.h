#pragma once
// Message digests (OpenSSL EVP) and lowercase hex, shared by the store
// keys of long stream names (core/store_keys) and S3 request signing and
// ETags (store/sigv4).
//
// Thread-safety: pure functions. They throw std::runtime_error only if
// OpenSSL has no usable provider for the digest.

#include <string>
#include <string_view>

namespace horizon {

// Lowercase hex of the bytes.
std::string hex(std::string_view bytes);
// Raw digests (32 and 16 bytes).
std::string sha256(std::string_view data);
std::string md5(std::string_view data);
inline std::string sha256_hex(std::string_view data) { return hex(sha256(data)); }
inline std::string md5_hex(std::string_view data) { return hex(md5(data)); }

}  // namespace horizon
