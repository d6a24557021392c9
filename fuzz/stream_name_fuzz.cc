// libFuzzer target: the stream-name validator and its path mapping
#include "core/stream_name.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto n = horizon::StreamName::parse(in);
  if (!n) return 0;
  if (n->str() != in) __builtin_trap();
  const std::string p = n->relative_path();
  if (p.empty() || p.front() == '/' || p.find("/../") != std::string::npos || p.find("/./") != std::string::npos ||
      p.ends_with("/..") || p.find("//") != std::string::npos || p.find('~') != std::string::npos) {
    __builtin_trap();
  }
  if (!n->is_root() && !n->parent().is_parent_of(*n)) __builtin_trap();
  return 0;
}
