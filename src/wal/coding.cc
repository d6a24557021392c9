#include "wal/coding.h"

#include <fmt/format.h>

namespace horizon::wal {

Error Decoder::error(std::string_view detail) const {
  return Error::make(errc::corruption, fmt::format("{}: {} at byte {} of {}", what_, detail, pos_, data_.size()));
}

}  // namespace horizon::wal
