// libFuzzer target: the Writer's HTTP request parser (Beast's parser plus
// the framing rules of net/http_request.h), RELIABILITY E1. Invariants: a
// parsed request respects every limit and took at most the input; the same
// bytes brought by other reads give the same request or none; what follows a parsed
// request (pipelining) parses on its own.
#include "net/http_request.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace {

using horizon::net::ParsedRequest;
using horizon::net::RequestLimits;

RequestLimits limits() {
  RequestLimits l;
  l.max_header_bytes = 2048;
  l.max_body_bytes = 512;
  l.max_target_bytes = 256;
  return l;
}

void check_request(const ParsedRequest& p, std::string_view in) {
  if (!p.request) return;
  if (p.error) __builtin_trap();
  if (p.consumed == 0 || p.consumed > in.size()) __builtin_trap();
  if (p.request->body.size() > limits().max_body_bytes) __builtin_trap();
  if (p.request->target.size() > limits().max_target_bytes) __builtin_trap();
  if (p.request->method.empty()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const ParsedRequest whole = horizon::net::parse_request(in, limits());
  check_request(whole, in);
  if (size == 0) return 0;
  // Reads chosen by the input (its first bytes give the read sizes): the
  // same outcome as one read.
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0, at = 0; i < 8 && i < size; ++i) {
    at += 1 + data[i] % 64;
    if (at >= size) break;
    cuts.push_back(at);
  }
  // Garbage may be found out later, or as another error, with other reads
  // (Beast waits for the end of a head or chunk header once it has seen part
  // of it; a bad chunk extension became "body too large"): both reject and
  // close. What must never differ: whether a request is accepted, and which.
  // (HttpRequest.TheOutcomeDoesNotDependOnTheReads holds the listed
  // malformed requests to the same error.)
  const ParsedRequest split = horizon::net::parse_request(in, limits(), cuts);
  if (split.request.has_value() != whole.request.has_value()) __builtin_trap();
  if (split.request && (split.request->body != whole.request->body || split.request->target != whole.request->target ||
                        split.consumed != whole.consumed)) {
    __builtin_trap();
  }
  // The next request of a pipeline.
  if (whole.request && whole.consumed < size) {
    const std::string_view rest = in.substr(whole.consumed);
    check_request(horizon::net::parse_request(rest, limits()), rest);
  }
  return 0;
}
