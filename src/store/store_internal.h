#pragma once
// Helpers shared by the ObjectStore implementations: argument checks and
// range slicing, so every implementation applies the same rules.
//
// Thread-safety: pure functions.

#include "store/object_store.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace horizon::store::detail {

// Checks prefix, token and max_keys of a list call (invalid_argument);
// returns the effective page size (max_keys capped at kMaxListKeys).
[[nodiscard]] Result<std::size_t> check_list_args(std::string_view prefix, std::string_view continuation_token,
                                                  std::size_t max_keys);

// The bytes [offset, offset + length) of `data`, short at the end, "" past it.
inline std::string slice(std::string_view data, std::uint64_t offset, std::uint64_t length) {
  if (offset >= data.size()) return {};
  const std::uint64_t available = data.size() - offset;
  return std::string(
      data.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(std::min(available, length))));
}

}  // namespace horizon::store::detail
