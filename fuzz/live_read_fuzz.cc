// libFuzzer target: the liveread request parser
#include "core/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::wire::parse_live_read_request(in);
  if (r && (r->max_lines_to_read < 1 || r->max_lines_to_read > horizon::wire::kMaxLinesToRead)) __builtin_trap();
  return 0;
}
