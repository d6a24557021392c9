// libFuzzer target: the subscribe/unsubscribe request parser
#include "core/wire.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = horizon::wire::parse_subscription_request(in);
  if (r && !r->subscription_id.is_subscription()) __builtin_trap();
  return 0;
}
