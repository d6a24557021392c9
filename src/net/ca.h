#pragma once
// The Writer's internal certificate authority: an ECDSA P-256 CA created on
// first start, server certificates it issues for the Writer's listeners, and
// the checks a client makes against it (chain + host name, SANs, fingerprint).
//
// Thread-safety: pure functions over PEM text; safe to call concurrently.

#include "core/errc.h"

#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::net {

// A certificate and its private key. key_pem is an unencrypted PKCS#8
// "PRIVATE KEY" PEM: store it with write_secret_file (mode 0600) and never log
// it; cert_pem is public (write_public_file).
struct CertifiedKey {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA: new P-256 key, subject CN = `name` (1-64 bytes of UTF-8,
// e.g. "Event Horizon internal CA"), random 128-bit positive serial, valid from
// now - 1 hour to now + 10 years, basicConstraints critical CA:TRUE pathlen:0,
// keyUsage critical keyCertSign+cRLSign, subjectKeyIdentifier; SHA-256.
// Errors: invalid_argument for a bad name, internal for OpenSSL failures.
[[nodiscard]] Result<CertifiedKey> create_ca(std::string_view name);

// A server certificate signed by `ca` (as returned by create_ca): new P-256
// key, subject CN = `common_name` (1-64 bytes of UTF-8), issuer = the CA's
// subject, valid from now - 1 hour to now + 5 years. Each entry of `hosts`
// that parses as an IPv4 or IPv6 address (inet_pton; no brackets, no zone)
// becomes an IP SAN, any other a DNS SAN, in the given order. basicConstraints
// critical CA:FALSE, keyUsage critical digitalSignature, extendedKeyUsage
// serverAuth, subject and authority key identifiers; SHA-256.
// Errors: invalid_argument when `hosts` is empty, a DNS entry is not 1-253
// characters of [A-Za-z0-9.-] (the message names the entry), the common name
// is bad, or `ca` does not parse / is not a CA / key and certificate do not
// match; internal for OpenSSL failures.
[[nodiscard]] Result<CertifiedKey> issue_server_cert(const CertifiedKey& ca, std::string_view common_name,
                                                     const std::vector<std::string>& hosts);

// The subjectAltName entries of the first certificate in `cert_pem`, in order:
// DNS names as-is, IP addresses in inet_ntop form ("127.0.0.1", "::1"). Other
// kinds (email, URI) are skipped. Empty if the certificate has no SAN.
// Errors: invalid_argument if the PEM does not parse.
[[nodiscard]] Result<std::vector<std::string>> subject_alt_names(std::string_view cert_pem);

// Succeeds iff `cert_pem` chains to `ca_pem` (a store holding only the CA
// certificates of `ca_pem`: one, or a bundle of several;
// X509_V_FLAG_X509_STRICT, purpose TLS server, at time `at`: the current time
// when not given) and matches
// `host`: X509_check_ip_asc when `host` is an IP address, else X509_check_host
// (SANs only, no partial wildcards). Errors: invalid_argument for unparsable
// PEM or an empty host; unauthorized when the chain does not verify (the
// message carries X509_verify_cert_error_string, e.g. "unable to get local
// issuer certificate" for a different CA) or the host does not match (the
// message names the host). Messages never contain key material.
[[nodiscard]] Result<void> verify_server_cert(std::string_view cert_pem, std::string_view ca_pem,
                                              std::string_view host, std::optional<std::time_t> at = std::nullopt);

// The validity period of the first certificate in `cert_pem`, as Unix times
// (seconds, UTC). Errors: invalid_argument if the PEM does not parse.
struct CertificateValidity {
  std::time_t not_before = 0;
  std::time_t not_after = 0;
};
[[nodiscard]] Result<CertificateValidity> certificate_validity(std::string_view cert_pem);

// Lower-case hex (64 characters) of the SHA-256 of the first certificate's DER
// encoding; the same as `openssl x509 -noout -fingerprint -sha256` without the
// colons. Errors: invalid_argument if the PEM does not parse.
[[nodiscard]] Result<std::string> certificate_fingerprint_sha256(std::string_view cert_pem);

// The same for every certificate of a PEM bundle, in order (at least one).
// Errors: invalid_argument if the bundle does not parse (as a whole).
[[nodiscard]] Result<std::vector<std::string>> bundle_fingerprints_sha256(std::string_view pem);

}  // namespace horizon::net
