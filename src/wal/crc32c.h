#pragma once
// CRC-32C (Castagnoli), with the masking of leveldb's log format so that a
// CRC stored inside CRC'd data does not weaken it. Uses the SSE4.2 crc32
// instruction when the CPU has it, a table otherwise (same results; tested).
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string_view>

namespace horizon::crc32c {

// CRC of `data` continuing from `crc` (0 to start).
std::uint32_t extend(std::uint32_t crc, std::string_view data);
inline std::uint32_t value(std::string_view data) { return extend(0, data); }
// The portable implementation (for tests).
std::uint32_t extend_portable(std::uint32_t crc, std::string_view data);

inline constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
inline std::uint32_t mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline std::uint32_t unmask(std::uint32_t masked) {
  const std::uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace horizon::crc32c
