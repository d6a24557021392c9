#pragma once
// Strict reading of JSON objects for the wire and meta parsers (private to
// src/core). Every failure names the field and what was wrong with it.

#include "core/errc.h"

#include <boost/container/small_vector.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::detail {

// Parses `text` as one JSON object; anything else (including trailing data,
// invalid UTF-8 or nesting deeper than 64) is an error of code `code`.
// `storage`: where the parsed values live (default: the heap); a caller
// may pass a monotonic resource that outlives the returned object.
[[nodiscard]] Result<boost::json::object> parse_object(std::string_view text, std::string_view context, errc code,
                                                       boost::json::storage_ptr storage = {});

// Reads the fields of one object, remembering which were read so that
// `finish` can reject unknown ones.
class ObjectReader {
 public:
  ObjectReader(const boost::json::object& o, std::string_view context, errc code)
      : o_(o), context_(context), code_(code) {}

  [[nodiscard]] Result<std::string_view> string(std::string_view key);
  // Missing or null gives nullopt.
  [[nodiscard]] Result<std::optional<std::string_view>> optional_string(std::string_view key);
  [[nodiscard]] Result<const boost::json::array*> array(std::string_view key);
  // Missing or null gives nullptr.
  [[nodiscard]] Result<const boost::json::array*> optional_array(std::string_view key);
  [[nodiscard]] Result<std::int64_t> integer(std::string_view key);
  [[nodiscard]] Result<const boost::json::object*> object(std::string_view key);
  // Missing gives nullptr; any JSON value otherwise.
  const boost::json::value* any(std::string_view key);

  // Fails if the object has a field that was never read.
  [[nodiscard]] Result<void> finish_strict() const;

  Error error(std::string_view key, std::string_view what) const;

 private:
  const boost::json::value* find(std::string_view key);

  const boost::json::object& o_;
  std::string_view context_;
  errc code_;
  boost::container::small_vector<std::string_view, 8> seen_;  // requests have a few fields: no allocation
};

// The strings of a JSON array, or an error naming `key` and the index.
[[nodiscard]] Result<std::vector<std::string_view>> strings_of(const ObjectReader& r, std::string_view key,
                                                              const boost::json::array& a);

}  // namespace horizon::detail
