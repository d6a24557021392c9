#pragma once
// The Writer's identity: created once per data directory (SPEC §9) and loaded
// on every later start.
//
// First start: refuse if the store already has another Writer's discovery
// record (nothing is written then); otherwise generate a 128-bit token, a
// 256-bit master key, an internal CA (ECDSA P-256) and a server certificate
// for the advertised host, localhost, 127.0.0.1 and ::1; write them to the
// data directory (secrets mode 0600), `client.env`, `ca.pem`, and last
// `identity.json` (which marks the bootstrap complete). The caller then
// publishes the non-secret discovery record (addresses, CA certificate) to
// the store once it listens (publish_discovery).
//
// Later starts: refuse if the data directory belongs to another store or
// the store's discovery names another Writer; renew the server certificate
// when it is due (renew_server_cert_if_due: the advertised host changed, or
// it expired or expires within 90 days).
//
// Files: docs/format/data-dir.md. Thread-safety: call from one thread.

#include "core/errc.h"
#include "server/discovery.h"
#include "store/object_store.h"

#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace horizon::server {

struct WriterIdentity {
  std::string writer_id;
  std::string token;           // secret
  std::string master_key;      // secret
  std::string ca_pem;          // the CA that signs the server certificate
  std::string trusted_ca_pem;  // what clients trust: trusted_cas()
  std::string server_cert_pem;
  std::string server_key_pem;  // secret
  bool fresh = false;          // created by this call
  std::string renewed;         // why this call renewed the server certificate, if it did
};

struct BootstrapConfig {
  std::string data_dir;
  std::string store_url;       // as given (may contain an S3 secret; written only to client.env)
  std::string advertise_host;  // host clients use to reach this Writer
};

[[nodiscard]] Result<WriterIdentity> bootstrap_or_load(const BootstrapConfig& config, store::ObjectStore& store);

// Server certificate renewal. Due when the certificate expires within
// kRenewBefore of `now` (or has expired), or does not verify against the CA
// at `now` (one instant for every check: the clock may move between reads)
// for the advertised host (a changed --advertise). Never when the CA has
// expired, nor for expiry when the CA ends before the current certificate
// (a new one could not outlive it): see ca_expiry_warning. Then the internal
// CA (tls/ca-key.pem) signs a new key and certificate (5 years, capped at
// the CA's end), written to tls/server.pem and tls/server-key.pem (0600).
// Returns the new pair and the reason, or nullopt when not due.
inline constexpr std::chrono::hours kRenewBefore{24 * 90};
struct Renewal {
  std::string cert_pem;
  std::string key_pem;  // secret
  std::string reason;
};
[[nodiscard]] Result<std::optional<Renewal>> renew_server_cert_if_due(const std::string& data_dir,
                                                                      const std::string& advertise_host,
                                                                      std::string_view ca_pem,
                                                                      std::string_view cert_pem, std::time_t now);
// A warning when the internal CA expires within kCaWarnBefore of `now`
// (clients pin it: it is replaced by a rotation, below), else nullopt.
inline constexpr std::chrono::hours kCaWarnBefore{24 * 365};
std::optional<std::string> ca_expiry_warning(std::string_view ca_pem, std::time_t now);

// Rotating the internal CA (docs/format/data-dir.md, "Rotating the internal
// CA"), on a data directory whose Writer is stopped (the caller holds its
// lock), in two steps with a restart of the clients in between:
//   prepare: a successor CA (tls/ca-next.pem, tls/ca-next-key.pem); clients
//     trust it from then on (trusted_cas) while the server certificate is
//     still the current CA's;
//   finish: the successor becomes the CA (the current one is kept as
//     tls/ca-previous.pem, trusted until it expires) and signs a new server
//     certificate for the same names.
// Each writes the data directory's ca.pem (the trusted bundle) and returns a
// summary for the operator. finish can be run again after a crash at any
// point; a Writer refuses to start on an interrupted finish.
[[nodiscard]] Result<std::string> prepare_ca_rotation(const std::string& data_dir, std::time_t now);
[[nodiscard]] Result<std::string> finish_ca_rotation(const std::string& data_dir, std::time_t now);

// The CA certificates clients trust, as one PEM bundle: the current CA, then
// a prepared successor, then the previous CA while it is valid at `now`.
[[nodiscard]] Result<std::string> trusted_cas(const std::string& data_dir, std::time_t now);

// Writes the discovery record (discovery.h): writer id, "host:port" of the
// API and the pub/sub server (empty: off), the trusted CA certificates (a PEM
// bundle) and the SHA-256 of the current CA's. Nothing secret.
[[nodiscard]] Result<void> publish_discovery(store::ObjectStore& store, const WriterIdentity& identity,
                                             const std::string& api_address, const std::string& pubsub_address);

// Parses `KEY=VALUE` lines (client.env); unknown keys are kept.
std::vector<std::pair<std::string, std::string>> parse_env_file(std::string_view text);

}  // namespace horizon::server
