// libFuzzer target: the create_stream request parser
#include "core/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::wire::parse_create_stream_request(in);
  if (r && horizon::wire::parse_create_stream_request(horizon::wire::to_json(*r))->name != r->name) __builtin_trap();
  return 0;
}
