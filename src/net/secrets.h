#pragma once
// Secrets for the Writer's bootstrap: random bytes and hex tokens from the OS
// CSPRNG, a comparison that does not leak where (or whether by length) two
// secrets differ, and atomic 0600/0644 file writes for keys, tokens and
// certificates.
//
// Thread-safety: every function is safe to call concurrently (OpenSSL 3's
// RNG is thread-safe); concurrent writes to the same path are last-rename-wins.

#include "core/errc.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace horizon::net {

// `n` bytes from OpenSSL's private CSPRNG (RAND_priv_bytes, seeded from the
// OS). errc::internal if the RNG fails (e.g. not seeded); never short.
[[nodiscard]] Result<std::string> random_bytes(std::size_t n);

// Lower-case hex of `n_bytes` random bytes (2 * n_bytes characters). The auth
// token is random_hex(16) (128 bits), the master key random_hex(32) (256 bits).
[[nodiscard]] Result<std::string> random_hex(std::size_t n_bytes);

// True iff candidate == secret, in a time that depends only on the length
// of the candidate (the untrusted input): CRYPTO_memcmp over the whole
// candidate, whatever the position of the first difference. It reveals no
// byte of the secret; trying lengths only tells whether the secret has that
// length (tokens and keys here have fixed, documented lengths). No
// allocation: it runs on every API request. Use it for every comparison
// against a token or key, the untrusted value first.
bool constant_time_equal(std::string_view candidate, std::string_view secret);

// Writes `content` to `path` atomically with mode exactly 0600 (whatever the
// umask): creates a fresh temp file in the same directory
// (O_CREAT|O_EXCL|O_WRONLY|O_CLOEXEC), writes everything, fsyncs it, renames it
// over `path` and fsyncs the directory. An existing file at `path` is replaced;
// readers see the old or the new content, never a mix. On failure the temp file
// is removed and `path` is untouched. Errors (`<op> <path>: <strerror>`, code
// storage_failed, or disk_full on ENOSPC/EDQUOT) never contain `content`.
[[nodiscard]] Result<void> write_secret_file(const std::string& path, std::string_view content);

// As write_secret_file, with mode exactly 0644 (for certificates).
[[nodiscard]] Result<void> write_public_file(const std::string& path, std::string_view content);

// The whole content of a small file (keys, certificates, client.env,
// identity.json), or nullopt if it does not exist. Every read error is an
// error (`read <path>: <strerror>`, storage_failed), never a short content:
// a file cut by an I/O error must not pass for a damaged one.
[[nodiscard]] Result<std::optional<std::string>> read_small_file(const std::string& path);

}  // namespace horizon::net
