#include "net/http_request.h"

#include "core/text.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace horizon::net {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// Beast's header limit is this much above max_header_bytes (http_request.h).
constexpr std::size_t kHeaderSlack = 4096;
}  // namespace

void RequestParser::apply(const RequestLimits& limits) {
  header_limit(static_cast<std::uint32_t>(limits.max_header_bytes + kHeaderSlack));
  body_limit(limits.max_body_bytes);
}

void RequestParser::on_request_impl(http::verb, beast::string_view method, beast::string_view target, int version,
                                    beast::error_code&) {
  req_.method.assign(method.data(), method.size());
  req_.target.assign(target.data(), target.size());
  version_ = static_cast<unsigned>(version);
}

void RequestParser::on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                                  beast::error_code&) {
  if (req_.headers.empty()) req_.headers.reserve(8);
  req_.headers.emplace_back(ascii_lower(name_string), std::string(value.data(), value.size()));
  if (name == http::field::expect && beast::iequals(value, "100-continue")) expect_continue_ = true;
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, beast::error_code&) {
  // The parser has checked a declared length against the body limit.
  if (content_length) req_.body.reserve(static_cast<std::size_t>(*content_length));
}

std::size_t RequestParser::on_body_impl(beast::string_view body, beast::error_code&) {
  req_.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) {
  req_.body.append(body.data(), body.size());
  return body.size();
}

namespace {

// The length of the request target in the request line at the start of
// `buffered` (up to the first line break or the end of what arrived): from
// the first space to the next one.
std::size_t target_length(std::string_view buffered) {
  const std::string_view line = buffered.substr(0, buffered.find_first_of("\r\n"));
  const auto start = line.find(' ');
  if (start == std::string_view::npos) return 0;
  const auto end = line.find(' ', start + 1);
  return (end == std::string_view::npos ? line.size() : end) - start - 1;
}

Error too_long_target(std::size_t length, const RequestLimits& limits) {
  return Error::make(errc::uri_too_long,
                     fmt::format("request target of {} bytes exceeds {} bytes", length, limits.max_target_bytes));
}

bool body_method(std::string_view method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

}  // namespace

Error head_error(const beast::error_code& ec, const RequestParser& parser, std::string_view buffered,
                 const RequestLimits& limits) {
  if (ec == http::error::body_limit) {
    return Error::make(errc::body_too_large, fmt::format("request body exceeds {} bytes", limits.max_body_bytes));
  }
  if (ec == http::error::header_limit) {
    // Beast consumes the request line before the fields: when it has not,
    // the line is what overflowed and is still at the start of `buffered`.
    const HttpRequest& req = parser.request();
    const std::size_t n = req.method.empty() ? target_length(buffered) : req.target.size();
    if (n > limits.max_target_bytes) return too_long_target(n, limits);
    return Error::make(errc::headers_too_large,
                       fmt::format("request headers exceed {} bytes", limits.max_header_bytes));
  }
  if (ec == http::error::bad_version) {
    // A well-formed version other than 1.0 and 1.1 is 505, not 400.
    // The request line is method SP target SP version.
    std::string_view v = buffered.substr(0, buffered.find_first_of("\r\n"));
    for (int field = 0; field < 2 && !v.empty(); ++field) {
      const auto sp = v.find(' ');
      v = sp == std::string_view::npos ? std::string_view() : v.substr(sp + 1);
    }
    // Beast judges the version by its first 8 bytes, before the line's end
    // arrives: so does this (the answer must not depend on the reads).
    v = v.substr(0, 8);
    if (v.size() == 8 && v.starts_with("HTTP/") && std::isdigit(static_cast<unsigned char>(v[5])) && v[6] == '.' &&
        std::isdigit(static_cast<unsigned char>(v[7])) && v != "HTTP/1.0" && v != "HTTP/1.1") {
      return Error::make(errc::http_version_not_supported, fmt::format("{} is not supported: use HTTP/1.1", v));
    }
  }
  return Error::make(errc::bad_json, "malformed HTTP request: " + ec.message());
}

std::optional<Error> check_request_head(const RequestParser& parser, std::size_t head_bytes,
                                        const RequestLimits& limits) {
  const HttpRequest& req = parser.request();
  const unsigned version = parser.version();  // 10 or 11: Beast refuses others (head_error)
  // Beast's request line is exactly method SP target SP HTTP/1.x CRLF.
  const std::size_t request_line = req.method.size() + 1 + req.target.size() + 1 + 8 + 2;
  if (head_bytes > request_line && head_bytes - request_line > limits.max_header_bytes) {
    return Error::make(errc::headers_too_large, fmt::format("request headers of {} bytes exceed {} bytes",
                                                            head_bytes - request_line, limits.max_header_bytes));
  }
  if (req.target.size() > limits.max_target_bytes) return too_long_target(req.target.size(), limits);

  if (const auto len = parser.content_length(); len && *len > limits.max_body_bytes) {
    return Error::make(errc::body_too_large,
                       fmt::format("request body of {} bytes exceeds {} bytes", *len, limits.max_body_bytes));
  }

  std::vector<std::string_view> codings;
  int hosts = 0;
  bool transfer_encoding = false;
  for (const auto& [name, value] : req.headers) {
    if (name == "host") ++hosts;
    if (name != "transfer-encoding") continue;
    transfer_encoding = true;
    for (auto token : http::token_list{value}) codings.emplace_back(token.data(), token.size());
  }
  if (transfer_encoding || parser.chunked()) {
    if (version == 10) {
      return Error::make(errc::bad_json, "malformed HTTP request: Transfer-Encoding is not allowed in HTTP/1.0");
    }
    const bool chunked_last = !codings.empty() && beast::iequals(codings.back(), "chunked");
    if (!chunked_last) {
      return Error::make(
          errc::bad_json,
          "malformed HTTP request: Transfer-Encoding must end with chunked (the body length is unknown)");
    }
    if (codings.size() > 1) {
      return Error::make(errc::not_implemented,
                         fmt::format("transfer coding \"{}\" is not supported: send the body chunked or with a "
                                     "Content-Length",
                                     printable_excerpt(codings.front(), 40)));
    }
  }
  if (version == 11 && hosts != 1) {
    return Error::make(errc::bad_json, hosts == 0 ? "malformed HTTP request: HTTP/1.1 needs a Host header"
                                                  : "malformed HTTP request: more than one Host header");
  }
  if (body_method(req.method) && !parser.content_length() && !parser.chunked()) {
    return Error::make(errc::length_required,
                       fmt::format("{} needs a Content-Length or Transfer-Encoding: chunked", req.method));
  }
  return std::nullopt;
}

Error body_error(const beast::error_code& ec, const RequestLimits& limits) {
  if (ec == http::error::body_limit) {
    return Error::make(errc::body_too_large, fmt::format("request body exceeds {} bytes", limits.max_body_bytes));
  }
  return Error::make(errc::bad_json, "malformed HTTP request body: " + ec.message());
}

HttpResponse rejection(const Error& e) {
  HttpResponse r;
  r.status = e.http_status();
  r.body = e.to_json_body();
  r.close = true;
  return r;
}

ParsedRequest parse_request(std::string_view bytes, const RequestLimits& limits, std::span<const std::size_t> cuts) {
  ParsedRequest out;
  RequestParser parser;
  parser.apply(limits);
  std::size_t used = 0;  // consumed by the parser
  std::size_t next_cut = 0;
  std::size_t arrived = 0;  // the bytes the reads brought so far
  auto arrival = [&] {      // the end of the next read
    while (next_cut < cuts.size() && std::min(cuts[next_cut], bytes.size()) <= arrived) ++next_cut;
    return next_cut < cuts.size() ? std::min(cuts[next_cut], bytes.size()) : bytes.size();
  };
  arrived = arrival();
  // Feeds the parser until `done`, a read at a time; false when the input
  // ran out first or the parser failed (then out.error is set by `failed`).
  auto feed = [&](auto done, auto failed) {
    while (!done()) {
      beast::error_code ec;
      const std::size_t n =
          used == arrived ? 0 : parser.put(boost::asio::buffer(bytes.data() + used, arrived - used), ec);
      used += n;
      if (ec && ec != http::error::need_more) {
        out.error = failed(ec, bytes.substr(used, arrived - used));
        return false;
      }
      if (n == 0 || ec == http::error::need_more) {
        if (arrived == bytes.size()) return false;
        arrived = arrival();
      }
    }
    return true;
  };
  // The head first (Beast consumes the request line, then the fields once
  // they are all there), as the server reads it.
  if (!feed([&] { return parser.is_header_done(); },
            [&](const beast::error_code& ec, std::string_view buffered) {
              return head_error(ec, parser, buffered, limits);
            })) {
    return out;
  }
  if (auto e = check_request_head(parser, used, limits)) {
    out.error = std::move(*e);
    return out;
  }
  // The body: the server parses what is buffered eagerly.
  parser.eager(true);
  if (!feed([&] { return parser.is_done(); },
            [&](const beast::error_code& ec, std::string_view) { return body_error(ec, limits); })) {
    return out;
  }
  out.request = std::move(parser.request());
  out.consumed = used;
  return out;
}

}  // namespace horizon::net
