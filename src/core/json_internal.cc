#include "core/json_internal.h"

#include "core/text.h"

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace horizon::detail {

namespace json = boost::json;

Result<json::object> parse_object(std::string_view text, std::string_view context, errc code,
                                  json::storage_ptr storage) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  json::value v = json::parse(text, ec, std::move(storage), opts);
  if (ec) {
    return Error::make(code, fmt::format("{}: not valid JSON ({})", context, ec.message()));
  }
  if (!v.is_object()) return Error::make(code, fmt::format("{}: expected a JSON object", context));
  return std::move(v.get_object());
}

const json::value* ObjectReader::find(std::string_view key) {
  seen_.push_back(key);
  return o_.if_contains(key);
}

Error ObjectReader::error(std::string_view key, std::string_view what) const {
  return Error::make(code_, fmt::format("{}: field \"{}\" {}", context_, key, what));
}

Result<std::string_view> ObjectReader::string(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return error(key, "is missing");
  if (!v->is_string()) return error(key, "must be a string");
  return std::string_view(v->get_string());
}

Result<std::optional<std::string_view>> ObjectReader::optional_string(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string_view>();
  if (!v->is_string()) return error(key, "must be a string");
  return std::optional<std::string_view>(std::string_view(v->get_string()));
}

Result<const json::array*> ObjectReader::array(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return error(key, "is missing");
  if (!v->is_array()) return error(key, "must be an array");
  return &v->get_array();
}

Result<const json::array*> ObjectReader::optional_array(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr || v->is_null()) return static_cast<const json::array*>(nullptr);
  if (!v->is_array()) return error(key, "must be an array");
  return &v->get_array();
}

Result<std::int64_t> ObjectReader::integer(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return error(key, "is missing");
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return error(key, "is too large");
  return error(key, "must be an integer");
}

Result<const json::object*> ObjectReader::object(std::string_view key) {
  const json::value* v = find(key);
  if (v == nullptr) return error(key, "is missing");
  if (!v->is_object()) return error(key, "must be an object");
  return &v->get_object();
}

const json::value* ObjectReader::any(std::string_view key) { return find(key); }

Result<void> ObjectReader::finish_strict() const {
  for (const auto& kv : o_) {
    if (std::find(seen_.begin(), seen_.end(), kv.key()) == seen_.end()) {
      return Error::make(code_, fmt::format("{}: unknown field \"{}\"", context_, printable_excerpt(kv.key(), 40)));
    }
  }
  return {};
}

Result<std::vector<std::string_view>> strings_of(const ObjectReader& r, std::string_view key, const json::array& a) {
  std::vector<std::string_view> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) return r.error(key, fmt::format("must hold only strings (item {} is not)", i));
    out.emplace_back(a[i].get_string());
  }
  return out;
}

}  // namespace horizon::detail
