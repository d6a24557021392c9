// libFuzzer target: the sealed-chunk decode path (RELIABILITY B4).
//
// The first byte selects the path:
//   0: decode_unsealed (AEAD bypassed): the rest is an object whose blocks are
//      already plaintext; header checks, framing, zstd with a 1 MiB cap, then
//      the raw-line parser over what came out;
//   1: decompress_body of the rest as a bare zstd body whose declared raw size
//      is the frame's own content size (capped at 1 MiB), then the parser;
//   2: decode_chunk of the rest under a fixed key as the chunk /fuzz:0 (the
//      header, identity and length checks and the AEAD; a seed is a valid
//      object, so mutants start from real framing);
//   other: parse_header of the rest, whose accepted headers must re-encode to
//      the same bytes.
// Invariants checked: no crash, no allocation beyond the cap, output exactly
// the declared size.
#include "codec/chunk_codec.h"
#include "codec/chunk_codec_internal.h"
#include "core/raw_line.h"

#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::uint64_t kFuzzCap = 1u << 20;

void parse_lines(std::string_view raw) {
  horizon::RawLineSplitter lines(raw);
  while (auto line = lines.next()) {
    auto parsed = horizon::parse_raw_line(*line);
    if (parsed && parsed->is_meta()) (void)parsed->meta();
  }
}

const horizon::codec::MasterKey& fuzz_key() {
  static const horizon::codec::MasterKey key =
      horizon::codec::MasterKey::parse_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").value();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace codec = horizon::codec;
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 0: {
      auto raw = codec::detail::decode_unsealed(in, kFuzzCap);
      if (raw) {
        auto h = codec::parse_header(in);
        if (!h || raw->size() != h->raw_size || raw->size() > kFuzzCap) __builtin_trap();
        parse_lines(*raw);
      }
      break;
    }
    case 1: {
      const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
      const std::uint64_t raw_size = declared <= kFuzzCap ? declared : kFuzzCap;
      auto raw = codec::detail::decompress_body(in, raw_size, kFuzzCap);
      if (raw) {
        if (raw->size() != raw_size) __builtin_trap();
        parse_lines(*raw);
      }
      break;
    }
    case 2: {
      auto raw = codec::decode_chunk(fuzz_key(), codec::ChunkId{"/fuzz", 0}, in);
      if (raw) {
        auto h = codec::parse_header(in);
        if (!h || raw->size() != h->raw_size || h->object_size() != in.size()) __builtin_trap();
        parse_lines(*raw);
      }
      break;
    }
    default: {
      auto h = codec::parse_header(in);
      if (h && codec::detail::encode_header(*h) != in.substr(0, codec::kHeaderBytes)) __builtin_trap();
      break;
    }
  }
  return 0;
}
