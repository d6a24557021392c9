// libFuzzer target: the append request parser
#include "core/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::wire::parse_append_request(in);
  if (!r) return 0;
  auto again = horizon::wire::parse_append_request(horizon::wire::to_json(*r));
  if (!again || again->lines != r->lines || again->stream != r->stream) __builtin_trap();
  return 0;
}
