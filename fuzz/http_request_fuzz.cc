// libFuzzer target: the Writer's HTTP request parser (Beast's parser plus
// the framing rules of net/http_request.h), RELIABILITY E1. Invariants: a
// parsed request respects every limit and took at most the input; the same
// bytes cut anywhere give "incomplete" or the same outcome; what follows a
// parsed request (pipelining) parses on its own.
#include "net/http_request.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

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
  // A cut chosen by the input: a prefix is incomplete or decides the same.
  const std::size_t cut = data[0] % size;
  const ParsedRequest prefix = horizon::net::parse_request(in.substr(0, cut), limits());
  if (prefix.error && (!whole.error || prefix.error->code != whole.error->code)) __builtin_trap();
  if (prefix.request && (!whole.request || prefix.request->body != whole.request->body ||
                         prefix.request->target != whole.request->target || prefix.consumed != whole.consumed)) {
    __builtin_trap();
  }
  // The next request of a pipeline.
  if (whole.request && whole.consumed < size) {
    const std::string_view rest = in.substr(whole.consumed);
    check_request(horizon::net::parse_request(rest, limits()), rest);
  }
  return 0;
}
