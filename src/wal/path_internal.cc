#include "wal/path_internal.h"

namespace horizon::wal::detail {

Result<std::vector<std::string>> split_path(std::string_view op, std::string_view path, bool allow_root) {
  std::vector<std::string> parts;
  if (allow_root && (path.empty() || path == ".")) return parts;
  bool ok = !path.empty() && path.find('\0') == std::string_view::npos;
  std::string_view rest = path;
  while (ok) {
    std::size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") {
      ok = false;
      break;
    }
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (!ok) {
    return Error::make(errc::invalid_argument,
                       std::string(op) + " \"" + std::string(path.substr(0, 200)) +
                           "\": the path must be relative, with no empty, \".\" or \"..\" component");
  }
  return parts;
}

}  // namespace horizon::wal::detail
