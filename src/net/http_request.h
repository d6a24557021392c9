#pragma once
// The HTTP/1.x request parser of HttpServer and the framing rules it adds to
// Beast's (RELIABILITY E1/E2): a request is either parsed exactly or
// rejected with one error, and a rejected request is never passed on.
//
// Beast checks the syntax, the body limit, the chunk syntax,
// conflicting Content-Length values and Content-Length together with
// Transfer-Encoding. On top of that (check_request_head):
//   - the header fields (from the first field to the blank line's CRLF) are
//     at most max_header_bytes: 431. Beast's own header limit depends on how
//     the bytes arrived (it let 42 bytes more through when they came in TLS
//     records), so it is set higher, as the cap for heads that never end,
//     and the exact limit is checked on the complete head;
//   - HTTP/1.0 and 1.1 only (Beast's rule): another well-formed version is
//     505 rather than 400 (head_error);
//   - a request target over max_target_bytes is 414 (also when the request
//     line alone passes the header limit: head_error);
//   - Transfer-Encoding must be exactly "chunked" (one coding, one header):
//     chunked after other codings is 501, anything else 400 (the body's
//     length cannot be known), and any Transfer-Encoding in HTTP/1.0 is 400;
//   - POST, PUT and PATCH need a Content-Length or a chunked body: 411;
//   - an HTTP/1.1 request needs exactly one Host header: 400.
// Every rejection closes the connection (the framing of what follows is
// unknown). Messages never quote the request beyond a printable excerpt.
//
// Thread-safety: a RequestParser is used by one coroutine at a time; the
// functions are pure.

#include "core/errc.h"
#include "net/http_types.h"

#include <boost/beast/http/basic_parser.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace horizon::net {

struct RequestLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  std::size_t max_target_bytes = 8 * 1024;
};

// Parses a request straight into an HttpRequest: method, target, headers
// (names lower-cased, in order) and body, without a Beast message in
// between. Set the limits with apply(limits) before the first byte (it
// gives Beast a header limit above max_header_bytes: see above).
class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  void apply(const RequestLimits& limits);
  HttpRequest& request() { return req_; }
  const HttpRequest& request() const { return req_; }
  unsigned version() const { return version_; }
  bool expects_continue() const { return expect_continue_; }

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view method, boost::beast::string_view target,
                       int version, boost::beast::error_code&) override;
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code&) override;
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, boost::beast::error_code&) override;
  std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code&) override;
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::beast::error_code&) override;
  void on_finish_impl(boost::beast::error_code&) override {}

  HttpRequest req_;
  unsigned version_ = 11;
  bool expect_continue_ = false;
};

// The error for a failed read of the head by `parser`: 413 for a declared
// body over the limit, 414 when the request target is over the limit (the
// parsed one, or the one at the start of `buffered`, the bytes not yet
// consumed, when the request line itself overflowed), 431 for other
// oversized heads, 505 for a well-formed version other than 1.0 and 1.1,
// else 400 naming Beast's reason. `ec` must be an error.
[[nodiscard]] Error head_error(const boost::beast::error_code& ec, const RequestParser& parser,
                               std::string_view buffered, const RequestLimits& limits);

// The rules above, for a parsed head; nullopt when the request may go on.
// `head_bytes` is the size of the whole head the parser consumed (request
// line, fields, blank line).
[[nodiscard]] std::optional<Error> check_request_head(const RequestParser& parser, std::size_t head_bytes,
                                                      const RequestLimits& limits);

// The error for a failed read of the body: 413 over the limit, else 400.
[[nodiscard]] Error body_error(const boost::beast::error_code& ec, const RequestLimits& limits);

// The error's response: its status and JSON body, closing the connection.
[[nodiscard]] HttpResponse rejection(const Error& e);

// One request parsed from the start of `bytes` as the server parses a
// connection (for tests and the fuzzer): the request and the number of bytes
// it took, or the error the server answers, or neither when `bytes` ends
// before the request does. `cuts` (ascending offsets) splits the bytes into
// the reads that bring them: one parser is fed each read as it arrives, with
// the bytes it has not consumed yet, as the server does.
struct ParsedRequest {
  std::optional<HttpRequest> request;
  std::size_t consumed = 0;
  std::optional<Error> error;
};
[[nodiscard]] ParsedRequest parse_request(std::string_view bytes, const RequestLimits& limits,
                                          std::span<const std::size_t> cuts = {});

}  // namespace horizon::net
