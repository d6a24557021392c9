// The request parser's framing rules (RELIABILITY E1, E2's URL limit): each
// malformed or ambiguous request gets its one error, valid ones parse to the
// exact method, target, headers and body, and the outcome never depends on
// how the bytes were split between reads.

#include "net/http_request.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace horizon::net {
namespace {

RequestLimits small_limits() {
  RequestLimits l;
  l.max_header_bytes = 1024;
  l.max_body_bytes = 64;
  l.max_target_bytes = 256;
  return l;
}

struct Rejected {
  const char* name;
  std::string request;
  int status;
  const char* code;
  const char* message_part;
};

std::vector<Rejected> rejected_cases() {
  const std::string long_target = "/" + std::string(256, 'a');   // 257 bytes
  const std::string huge_target = "/" + std::string(2000, 'a');  // the line alone passes the header limit
  return {
      {"garbage request line", "GARBAGE\r\n\r\n", 400, "bad_request", "malformed HTTP request"},
      {"no version", "GET /\r\n\r\n", 400, "bad_request", "malformed HTTP request"},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported", "HTTP/2.0"},
      {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505, "http_version_not_supported", "HTTP/0.9"},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "http_version_not_supported", "HTTP/1.2"},
      {"bad version, good one after it", std::string("GET /a HTTP/1\0\0 HTTP/1.1\r\nHost: h\r\n\r\n", 37), 400,
       "bad_request", "bad version"},
      {"2.0 with a tail", "GET / HTTP/2.0x\r\nHost: h\r\n\r\n", 505, "http_version_not_supported", "HTTP/2.0"},
      {"1.1 with a tail", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400, "bad_request", "malformed HTTP request"},
      {"two different lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
       "bad_request", "malformed HTTP request"},
      {"length list that disagrees", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", 400,
       "bad_request", "malformed HTTP request"},
      {"negative length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "bad_request",
       "malformed HTTP request"},
      {"length over 2^64", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 400,
       "bad_request", "malformed HTTP request"},
      {"length then chunked", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400, "bad_request", "malformed HTTP request"},
      {"chunked then length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       400, "bad_request", "malformed HTTP request"},
      {"gzip then length", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", 400,
       "bad_request", "must end with chunked"},
      {"gzip only", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400, "bad_request",
       "must end with chunked"},
      {"chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "bad_request",
       "must end with chunked"},
      {"empty coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\nContent-Length: 0\r\n\r\n", 400,
       "bad_request", "must end with chunked"},
      {"chunked twice",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "bad_request", "malformed HTTP request"},
      {"gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
       "not_implemented", "\"gzip\""},
      {"gzip header then chunked header",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501,
       "not_implemented", "\"gzip\""},
      {"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_request",
       "HTTP/1.0"},
      {"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400,
       "bad_request", "malformed HTTP request body"},
      {"chunk size overflow",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400,
       "bad_request", "malformed HTTP request body"},
      {"chunk without its CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
       400, "bad_request", "malformed HTTP request body"},
      {"chunked body over the limit",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + std::string(65, 'x') +
           "\r\n0\r\n\r\n",
       413, "body_too_large", "64 bytes"},
      {"declared length over the limit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n", 413,
       "body_too_large", "64 bytes"},
      {"declared 1 GiB", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1073741824\r\n\r\n", 413, "body_too_large",
       "64 bytes"},
      {"POST without a length", "POST / HTTP/1.1\r\nHost: h\r\n\r\n", 411, "length_required", "POST needs"},
      {"PUT without a length (1.0)", "PUT / HTTP/1.0\r\n\r\n", 411, "length_required", "PUT needs"},
      {"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400, "bad_request", "needs a Host header"},
      {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request",
       "more than one Host header"},
      {"target one over the limit", "GET " + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long",
       "257 bytes"},
      {"request line over the header limit", "GET " + huge_target + " HTTP/1.1\r\nHost: h\r\n\r\n", 414, "uri_too_long",
       "exceeds 256 bytes"},
      {"headers over the limit", "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(1100, 'h') + "\r\n\r\n", 431,
       "headers_too_large", "1024 bytes"},
      {"header without colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "bad_request",
       "malformed HTTP request"},
      {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad_request", "malformed HTTP request"},
      {"NUL in a header", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 36), 400, "bad_request",
       "malformed HTTP request"},
  };
}

TEST(HttpRequest, EachMalformedOrAmbiguousRequestGetsItsError) {
  for (const auto& c : rejected_cases()) {
    SCOPED_TRACE(c.name);
    const ParsedRequest p = parse_request(c.request, small_limits());
    ASSERT_FALSE(p.request.has_value());
    ASSERT_TRUE(p.error.has_value());
    EXPECT_EQ(p.error->http_status(), c.status) << p.error->message;
    EXPECT_EQ(p.error->wire_code(), c.code) << p.error->message;
    EXPECT_NE(p.error->message.find(c.message_part), std::string::npos) << p.error->message;
    const HttpResponse r = rejection(*p.error);
    EXPECT_EQ(r.status, c.status);
    EXPECT_TRUE(r.close);
    EXPECT_EQ(r.body, p.error->to_json_body());
  }
}

// The limits at N - 1, N and N + 1 (RELIABILITY E2): target and body.
TEST(HttpRequest, LimitsHoldAtTheirBoundaries) {
  const RequestLimits l = small_limits();
  for (std::size_t n : {l.max_target_bytes - 1, l.max_target_bytes, l.max_target_bytes + 1}) {
    const std::string target = "/" + std::string(n - 1, 't');
    const ParsedRequest p = parse_request("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n", l);
    if (n <= l.max_target_bytes) {
      ASSERT_TRUE(p.request.has_value()) << n << ": " << (p.error ? p.error->message : "incomplete");
      EXPECT_EQ(p.request->target, target);
    } else {
      ASSERT_TRUE(p.error.has_value()) << n;
      EXPECT_EQ(p.error->http_status(), 414);
    }
  }
  // The header limit counts the fields from the first one to the blank
  // line's CRLF (the request line has its own, the target limit).
  for (std::size_t n : {l.max_header_bytes - 1, l.max_header_bytes, l.max_header_bytes + 1}) {
    const std::string fixed = "Host: h\r\nX-Pad: \r\n\r\n";
    const std::string fields = "Host: h\r\nX-Pad: " + std::string(n - fixed.size(), 'p') + "\r\n\r\n";
    ASSERT_EQ(fields.size(), n);
    const ParsedRequest p = parse_request("GET / HTTP/1.1\r\n" + fields, l);
    if (n <= l.max_header_bytes) {
      ASSERT_TRUE(p.request.has_value()) << n << ": " << (p.error ? p.error->message : "incomplete");
    } else {
      ASSERT_TRUE(p.error.has_value()) << n;
      EXPECT_EQ(p.error->http_status(), 431);
    }
  }
  for (std::size_t n : {l.max_body_bytes - 1, l.max_body_bytes, l.max_body_bytes + 1}) {
    const std::string body(n, 'b');
    const std::string sized = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n" + body;
    char size_hex[16];
    std::snprintf(size_hex, sizeof size_hex, "%zx", n);
    const std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                std::string(size_hex) + "\r\n" + body + "\r\n0\r\n\r\n";
    for (const std::string& req : {sized, chunked}) {
      const ParsedRequest p = parse_request(req, l);
      if (n <= l.max_body_bytes) {
        ASSERT_TRUE(p.request.has_value()) << n << ": " << (p.error ? p.error->message : "incomplete");
        EXPECT_EQ(p.request->body, body);
        EXPECT_EQ(p.consumed, req.size());
      } else {
        ASSERT_TRUE(p.error.has_value()) << n;
        EXPECT_EQ(p.error->http_status(), 413);
      }
    }
  }
}

TEST(HttpRequest, ValidRequestsParseExactly) {
  const RequestLimits l = small_limits();
  {
    const std::string req =
        "POST /writer/append?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Two: a b\r\n\r\nhello";
    const ParsedRequest p = parse_request(req + "GET /next HTTP/1.1\r\n", l);
    ASSERT_TRUE(p.request.has_value()) << (p.error ? p.error->message : "incomplete");
    EXPECT_EQ(p.request->method, "POST");
    EXPECT_EQ(p.request->target, "/writer/append?x=1");
    EXPECT_EQ(p.request->path(), "/writer/append");
    EXPECT_EQ(p.request->body, "hello");
    const std::vector<std::pair<std::string, std::string>> headers = {
        {"host", "h"}, {"content-length", "5"}, {"x-two", "a b"}};
    EXPECT_EQ(p.request->headers, headers);
    EXPECT_EQ(p.consumed, req.size());  // the pipelined request after it stays
  }
  {
    // Equal duplicate lengths are one length (RFC 9110 §8.6); chunk
    // extensions and trailers are allowed and dropped.
    const ParsedRequest a =
        parse_request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", l);
    ASSERT_TRUE(a.request.has_value());
    EXPECT_EQ(a.request->body, "ok");
    const ParsedRequest b = parse_request(
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n2;ext=1\r\nok\r\n1\r\n!\r\n0\r\nX-T: "
        "1\r\n\r\n",
        l);
    ASSERT_TRUE(b.request.has_value()) << (b.error ? b.error->message : "incomplete");
    EXPECT_EQ(b.request->body, "ok!");
  }
  {
    // HTTP/1.0 needs no Host; a GET needs no length.
    const ParsedRequest p = parse_request("GET /health HTTP/1.0\r\n\r\n", l);
    ASSERT_TRUE(p.request.has_value());
    EXPECT_EQ(p.request->target, "/health");
    const ParsedRequest empty_post = parse_request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", l);
    ASSERT_TRUE(empty_post.request.has_value());
    EXPECT_EQ(empty_post.request->body, "");
  }
  {
    // Incomplete input is neither a request nor an error.
    for (const char* part :
         {"GET / HTTP/1.1\r\nHost: h\r\n", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel",
          "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"}) {
      const ParsedRequest p = parse_request(part, l);
      EXPECT_FALSE(p.request.has_value()) << part;
      EXPECT_FALSE(p.error.has_value()) << part;
    }
  }
}

// The server reads whatever the socket gives and feeds one parser what
// arrived: the same bytes brought by any reads must parse to the same
// request or the same error (Beast's own header limit did not: it depends on
// the reads, hence the exact check on the complete head).
TEST(HttpRequest, TheOutcomeDoesNotDependOnTheReads) {
  const RequestLimits l = small_limits();
  std::vector<std::string> inputs;
  for (const auto& c : rejected_cases()) inputs.push_back(c.request);
  inputs.push_back("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  inputs.push_back("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  for (std::size_t n : {l.max_header_bytes - 1, l.max_header_bytes, l.max_header_bytes + 1}) {
    const std::string fixed = "Host: h\r\nX-Pad: \r\n\r\n";
    inputs.push_back("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + std::string(n - fixed.size(), 'p') + "\r\n\r\n");
  }
  auto same = [](const ParsedRequest& a, const ParsedRequest& b) {
    if (a.error || b.error) return a.error.has_value() && b.error.has_value() && a.error->code == b.error->code;
    return a.request.has_value() == b.request.has_value() && a.consumed == b.consumed &&
           (!a.request || (a.request->body == b.request->body && a.request->target == b.request->target &&
                           a.request->headers == b.request->headers));
  };
  std::mt19937 rng(7);
  for (const std::string& in : inputs) {
    const ParsedRequest whole = parse_request(in, l);
    ASSERT_TRUE(whole.request.has_value() || whole.error.has_value()) << in;
    for (std::size_t cut = 1; cut < in.size(); ++cut) {  // two reads
      const std::vector<std::size_t> cuts = {cut};
      EXPECT_TRUE(same(whole, parse_request(in, l, cuts))) << "cut at " << cut << " of " << in.substr(0, 80);
    }
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{512}}) {  // reads of `step` bytes
      std::vector<std::size_t> cuts;
      for (std::size_t at = step; at < in.size(); at += step) cuts.push_back(at);
      EXPECT_TRUE(same(whole, parse_request(in, l, cuts))) << "reads of " << step << " of " << in.substr(0, 80);
    }
    for (int round = 0; round < 20; ++round) {  // random reads
      std::vector<std::size_t> cuts;
      for (std::size_t at = 0; (at += 1 + rng() % 300) < in.size();) cuts.push_back(at);
      EXPECT_TRUE(same(whole, parse_request(in, l, cuts))) << "random reads of " << in.substr(0, 80);
    }
  }
}

}  // namespace
}  // namespace horizon::net
