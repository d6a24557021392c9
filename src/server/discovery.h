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

// The history mark (docs/format/history-mark.md): how far this Writer's
// history had come (its last durable WAL commit) when it last shipped
// chunks. The shipper rewrites it after each pass that shipped any; the
// Writer reads it at start, and a data directory that recovers to an
// earlier commit is older than what the store holds (a restored backup, or
// a copy): the start is refused.
inline constexpr std::string_view kHistoryKey = "_horizon/history.json";
inline constexpr std::size_t kMaxHistoryBytes = 4096;

struct HistoryMark {
  std::string writer_id;     // 16 lower-case hex characters
  std::uint64_t commit = 0;  // a durable commit number of that Writer's WAL
  std::string updated;       // when it was written (timestamp format of SPEC §3)

  bool operator==(const HistoryMark&) const = default;
};

std::string serialize_history_mark(const HistoryMark& mark);
// Errors: corruption, naming the field ("history mark: \"commit\" is not
// a non-negative integer"). Unknown fields are ignored.
[[nodiscard]] Result<HistoryMark> parse_history_mark(std::string_view text);

}  // namespace horizon::server
