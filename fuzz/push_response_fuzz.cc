// libFuzzer target: the push response parser (Pusher side)
#include "core/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::wire::parse_push_response(in);
  if (!r) return 0;
  auto again = horizon::wire::parse_push_response(horizon::wire::to_json(*r));
  if (!again || again->code != r->code || again->behind_cursors.size() != r->behind_cursors.size()) __builtin_trap();
  return 0;
}
