#pragma once
// The discovery record: the one object in the store that tells clients where
// the Writer is and which CA to trust (docs/format/discovery.md). The Writer
// writes it at every start; clients (CLI, Pusher, pub/sub clients) read it,
// and long-running ones read it again when the Writer stops answering where
// they thought it was (WriterLocator in cli/client.h).
//
// Nothing in it is secret; nothing in it is trusted without checks: a
// record that does not parse, or whose fields are not what this file says,
// is refused as a whole with the first bad field named.
//
// Thread-safety: plain functions and values.

#include "core/errc.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace horizon::server {

inline constexpr std::string_view kDiscoveryKey = "_horizon/discovery.json";
// A record is a few KiB (one to three CA certificates); more is damage.
inline constexpr std::size_t kMaxDiscoveryBytes = 64 * 1024;

struct DiscoveryRecord {
  std::string writer_id;  // 16 lower-case hex characters
  std::string api;        // "host:port" of the HTTPS API
  std::string pubsub;     // "host:port" of the pub/sub server; empty when it is off
  std::string ca_pem;     // the CA certificates clients trust (a PEM bundle)
  std::string ca_sha256;  // SHA-256 of the signing CA's certificate: one of ca_pem's
  std::string updated;    // when the Writer wrote it (timestamp format of SPEC §3)

  bool operator==(const DiscoveryRecord&) const = default;
};

// The record as the store holds it: one JSON object and a newline.
std::string serialize_discovery(const DiscoveryRecord& record);

// Errors: corruption, naming the field ("discovery record: \"api\" is not
// host:port"). Unknown fields are ignored (a newer Writer may add some).
[[nodiscard]] Result<DiscoveryRecord> parse_discovery(std::string_view text);

}  // namespace horizon::server
