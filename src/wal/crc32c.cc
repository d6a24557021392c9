#include "wal/crc32c.h"

#include <array>
#include <cstring>

namespace horizon::crc32c {
namespace {

constexpr std::uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

// GF(2) polynomial arithmetic modulo the CRC polynomial, in the reflected
// bit order of the register (bit 31 is the coefficient of x^0). Used to move
// a CRC register past n zero bytes: that multiplies it by x^(8n).
constexpr std::uint32_t kOne = 0x80000000u;  // x^0

constexpr std::uint32_t mul_mod(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t bit = kOne; bit != 0; bit >>= 1) {  // a's terms from x^0 up
    if ((a & bit) != 0) product ^= b;
    b = (b & 1u) != 0 ? (b >> 1) ^ kPoly : b >> 1;  // b *= x
  }
  return product;
}

// x^(8 * bytes) mod P, by repeated squaring.
constexpr std::uint32_t zeros_operator(std::uint64_t bytes) {
  std::uint32_t result = kOne;
  std::uint32_t power = kOne >> 8;  // x^8
  for (std::uint64_t n = bytes; n != 0; n >>= 1) {
    if ((n & 1u) != 0) result = mul_mod(result, power);
    power = mul_mod(power, power);
  }
  return result;
}

// The crc32 instruction takes 3 cycles and can start one per cycle: three
// independent registers over three adjacent blocks keep it busy, and the
// registers are joined by moving the earlier ones past the later blocks
// (the register update is linear: over A then B it is shift(reg, |B|) xor
// the register of B alone from 0).
constexpr std::size_t kLane = 4096;
constexpr std::uint32_t kShiftLane = zeros_operator(kLane);
constexpr std::uint32_t kShiftTwoLanes = zeros_operator(2 * kLane);

__attribute__((target("sse4.2"))) std::uint32_t extend_hw(std::uint32_t crc, std::string_view data) {
  std::uint64_t c = ~crc;
  const char* p = data.data();
  std::size_t n = data.size();
  while (n >= 3 * kLane) {
    std::uint64_t c1 = 0, c2 = 0;
    for (std::size_t i = 0; i < kLane; i += 8) {
      std::uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kLane + i, 8);
      std::memcpy(&v2, p + 2 * kLane + i, 8);
      c = __builtin_ia32_crc32di(c, v0);
      c1 = __builtin_ia32_crc32di(c1, v1);
      c2 = __builtin_ia32_crc32di(c2, v2);
    }
    c = mul_mod(static_cast<std::uint32_t>(c), kShiftTwoLanes) ^ mul_mod(static_cast<std::uint32_t>(c1), kShiftLane) ^
        static_cast<std::uint32_t>(c2);
    p += 3 * kLane;
    n -= 3 * kLane;
  }
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, static_cast<unsigned char>(*p));
    ++p;
    --n;
  }
  return ~c32;
}

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

}  // namespace

std::uint32_t extend_portable(std::uint32_t crc, std::string_view data) {
  std::uint32_t c = ~crc;
  for (char ch : data) c = kTable[(c ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (c >> 8);
  return ~c;
}

std::uint32_t extend(std::uint32_t crc, std::string_view data) {
  static const bool hw = cpu_has_sse42();
  return hw ? extend_hw(crc, data) : extend_portable(crc, data);
}

}  // namespace horizon::crc32c
