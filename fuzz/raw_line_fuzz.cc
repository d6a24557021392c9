// libFuzzer target: the raw-line parser: parse -> encode reproduces the line; meta lines decode
#include "core/raw_line.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::parse_raw_line(in);
  if (!r) return 0;
  if (!r->is_meta() && r->encode() != std::string(in) + "\n") __builtin_trap();
  if (r->is_meta()) {
    auto m = r->meta();
    if (m) {
      // A known meta event re-encodes to a line that parses to the same event.
      auto again = horizon::parse_raw_line(std::string_view(horizon::encode_meta_line(*m)).substr(
          0, horizon::encode_meta_line(*m).size() - 1));
      if (!again) __builtin_trap();
      auto m2 = again->meta();
      if (!m2 || !(*m2 == *m)) __builtin_trap();
    }
  }
  return 0;
}
