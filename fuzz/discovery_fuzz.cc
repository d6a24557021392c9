// libFuzzer target: the parsers of the store's records under _horizon/:
// the discovery record (docs/format/discovery.md), which every client runs
// on what the store holds, and the history mark (docs/format/history-mark.md),
// which the Writer reads at start. Invariants: no crash; an accepted record
// has the documented field shapes, and serializing it parses back to the
// same record.
#include "core/text.h"
#include "server/discovery.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool lower_hex(const std::string& s, std::size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto m = horizon::server::parse_history_mark(in); m) {
    if (!lower_hex(m->writer_id, 16)) __builtin_trap();
    auto again = horizon::server::parse_history_mark(horizon::server::serialize_history_mark(*m));
    if (!again || !(*again == *m)) __builtin_trap();
  } else if (m.error().message.rfind("history mark: ", 0) != 0) {
    __builtin_trap();
  }
  auto r = horizon::server::parse_discovery(in);
  if (!r) {
    if (r.error().message.rfind("discovery record: ", 0) != 0) __builtin_trap();
    return 0;
  }
  if (!lower_hex(r->writer_id, 16) || !lower_hex(r->ca_sha256, 64)) __builtin_trap();
  std::string host;
  std::uint16_t port = 0;
  if (!horizon::split_host_port(r->api, host, port) || port == 0) __builtin_trap();
  if (!r->pubsub.empty() && (!horizon::split_host_port(r->pubsub, host, port) || port == 0)) __builtin_trap();
  auto again = horizon::server::parse_discovery(horizon::server::serialize_discovery(*r));
  if (!again || !(*again == *r)) __builtin_trap();
  return 0;
}
