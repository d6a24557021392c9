#pragma once
// AWS Signature Version 4 for the s3:// store: the canonical request, the
// string to sign and the signature, built on OpenSSL (SHA-256, HMAC-SHA256),
// plus the digests and encodings the S3 client needs (MD5, base64, hex,
// RFC 3986 percent-encoding). Checked against AWS's published examples in
// sigv4_test.cc.
//
// The secret key goes in and only the signature comes out: no result field
// and no message ever contains the secret.
//
// Thread-safety: pure functions, safe to call concurrently.

#include "core/digest.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace horizon::store::sigv4 {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Hex and digests: core/digest.h, named here too for the signing code.
using horizon::hex;
using horizon::md5;
using horizon::md5_hex;
using horizon::sha256;
using horizon::sha256_hex;
std::string hmac_sha256(std::string_view key, std::string_view data);
// Standard base64 with padding (for Content-MD5).
std::string base64(std::string_view bytes);

// The SHA-256 of the empty string, the payload hash of GET/HEAD/DELETE.
inline constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986: every byte outside A-Z a-z 0-9 - . _ ~ becomes %XX (uppercase);
// '/' is kept when `keep_slash` (URI paths) and encoded otherwise (query).
std::string uri_encode(std::string_view s, bool keep_slash);
// Decodes %XX sequences (anything else is copied); false on a malformed '%'.
bool percent_decode(std::string_view s, std::string& out);

// The canonical query string: each name and value RFC 3986-encoded, sorted
// by encoded name then value, joined as n=v&n=v ("name=" for empty values).
// The same string is used in the URL, so what is signed is what is sent.
std::string canonical_query(const Pairs& raw_params);

struct Request {
  std::string method;          // "GET", "PUT", ...
  std::string canonical_uri;   // already encoded ("/bucket/a%24b/c"), see uri_encode
  Pairs query;                 // raw (unencoded) names and values
  Pairs headers;               // every header to sign, any case, raw values
  std::string payload_sha256;  // lowercase hex, or "UNSIGNED-PAYLOAD"
};

struct Scope {
  std::string amz_date;  // "20150830T123600Z" (UTC)
  std::string region;    // "us-east-1"
  std::string service;   // "s3"
};

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

struct Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-content-sha256;x-amz-date"
  std::string signature;       // lowercase hex
  // "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
  // SignedHeaders=...,Signature=..." (S3's documented form, no spaces).
  std::string authorization;
};

// Signs `request`. Header names are lowercased, values trimmed with inner
// runs of spaces collapsed, repeated names joined with ','; headers are
// sorted by name.
Signed sign(const Request& request, const Scope& scope, const Credentials& credentials);

// The derived signing key (raw 32 bytes), exposed for the tests.
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);

}  // namespace horizon::store::sigv4
