#pragma once
// Path validation shared by the Fs implementations (private to src/wal).

#include "core/errc.h"

#include <string>
#include <string_view>
#include <vector>

namespace horizon::wal::detail {

// The components of a relative path. A path is valid when it is non-empty,
// not absolute, has no NUL, and no component is empty, "." or "..". With
// `allow_root`, "" and "." name the root itself (no components). Errors
// (invalid_argument) name `op` and the path.
[[nodiscard]] Result<std::vector<std::string>> split_path(std::string_view op, std::string_view path,
                                                          bool allow_root);

}  // namespace horizon::wal::detail
