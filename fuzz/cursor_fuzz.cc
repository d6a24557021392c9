// libFuzzer target: the cursor parser: parse -> to_string -> parse is the identity
#include "core/cursor.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (auto r : {horizon::Cursor::parse(in), horizon::Cursor::parse_offset_query(in)}) {
    if (!r) continue;
    auto again = horizon::Cursor::parse_offset_query(r->to_string());
    if (!again || !(*again == *r) || again->to_string() != r->to_string()) __builtin_trap();
  }
  return 0;
}
