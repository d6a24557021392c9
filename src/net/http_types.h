#pragma once
// Plain HTTP request/response values exchanged between the HTTP server
// (Beast, in http_server.cc) and handlers, so that handlers stay pure
// functions that never include Beast.
//
// Thread-safety: values.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace horizon::net {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query, as sent
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string remote;         // peer address, for logs

  // The value of header `name` (lower-case) when the request has exactly
  // one such header; nullptr when it has none or several.
  const std::string* only_header(std::string_view name) const;
  // The path without the query string.
  std::string_view path() const;
};

struct HttpResponse {
  int status = 200;
  // A literal or other static text (never freed before the response is
  // written): a std::string here cost an allocation per response.
  std::string_view content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
};

// A handler answers exactly once, possibly later and from another thread.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest, Responder)>;

}  // namespace horizon::net
