#pragma once
// The error model of Event Horizon (SPEC §5).
//
// Every expected failure is a value: an `Error` (an `errc` plus a human
// message) carried by `Result<T>`. One table (errc.cc) maps each `errc` to an
// HTTP status and the wire code of the `{"error","message"}` body; a test
// checks that the table covers every enumerator.
//
// Thread-safety: all functions here are pure and safe to call concurrently.

#include <boost/system/result.hpp>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace horizon {

enum class errc : std::uint8_t {
  // 400
  bad_json = 1,           // body is not the JSON the endpoint expects
  invalid_stream_name,    // SPEC §2
  invalid_cursor,         // SPEC §3
  invalid_line,           // a line with \n, \r or NUL, or invalid UTF-8
  invalid_raw_line,       // a stored raw line that is not in the SPEC §4 format
  invalid_meta,           // a meta line whose JSON does not match its type
  invalid_argument,       // any other out-of-range value
  not_a_subscription,     // SubscriptionId is not under /_sub/
  subscription_loop,      // a subscription stream given as Stream to subscribe
  // 401
  unauthorized,
  // 404
  stream_not_found,
  parent_not_found,
  subscription_not_found,
  chunk_not_found,
  endpoint_not_found,
  // 405
  method_not_allowed,
  // 411
  length_required,        // a POST without Content-Length or chunked body
  // 409
  stream_exists,
  conflict,               // the After precondition did not hold
  // 413 / 431 / 414
  body_too_large,
  too_many_lines,
  line_too_long,
  headers_too_large,
  uri_too_long,           // 414: a request target over 8 KiB
  // 503
  not_ready,
  storage_failed,         // the engine latched a write/fdatasync failure
  disk_full,
  too_many_connections,
  // 501 / 505
  not_implemented,        // a transfer coding other than chunked
  http_version_not_supported,
  // 500
  corruption,             // stored data failed an integrity check
  internal,
};

// Every enumerator, in declaration order (the enum is contiguous from 1 to
// `internal`, the last one).
std::span<const errc> all_errcs();

struct ErrcInfo {
  errc code;
  int http_status;
  std::string_view wire_code;    // the "error" field, snake_case
  std::string_view description;  // a readable default message
};

// The row of the mapping table for `code`; nullptr if the table lacks one.
const ErrcInfo* find_info(errc code);
// The row for `code` (a 500 "internal" row if the table lacks one).
const ErrcInfo& info(errc code);

// An expected failure: a code and a message for humans. Messages never contain
// secrets (tokens, keys); callers that build them must not pass any in.
struct Error {
  errc code = errc::internal;
  std::string message;

  // Named constructors read like the failure they report.
  static Error make(errc code, std::string message) { return Error{code, std::move(message)}; }

  int http_status() const { return info(code).http_status; }
  std::string_view wire_code() const { return info(code).wire_code; }
  // `{"error":"<wire code>","message":"<message>"}` (SPEC §5).
  std::string to_json_body() const;
  // "<wire code>: <message>", for logs and the CLI.
  std::string to_string() const;

  friend bool operator==(const Error&, const Error&) = default;
};

// Needed by boost::system::result<T, Error>::value() when it holds an error.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

// Thrown only by Result::value() on an error; prefer checking has_value().
struct ErrorException : std::runtime_error {
  explicit ErrorException(Error e) : std::runtime_error(e.to_string()), error(std::move(e)) {}
  Error error;
};

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace horizon
