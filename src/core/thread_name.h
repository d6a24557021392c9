#pragma once
// Names the calling thread as `top`, `ps -L` and `perf` show it (Linux keeps
// 15 bytes; longer names are cut). Purely diagnostic: failure is ignored.
//
// Thread-safety: affects only the calling thread.

#include <string_view>

namespace horizon {

void set_thread_name(std::string_view name);

}  // namespace horizon
