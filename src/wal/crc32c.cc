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

__attribute__((target("sse4.2"))) std::uint32_t extend_hw(std::uint32_t crc, std::string_view data) {
  std::uint64_t c = ~crc;
  const char* p = data.data();
  std::size_t n = data.size();
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
