#pragma once
// Internals of the s3:// store, exposed for its tests: URL parsing (with the
// credentials), the ListObjectsV2 and error-body XML parsers.
//
// Thread-safety: pure functions.

#include "store/object_store.h"

#include <string>
#include <string_view>
#include <vector>

namespace horizon::store::detail {

struct S3Config {
  std::string access_key_id;      // percent-decoded
  std::string secret_access_key;  // percent-decoded; never in a message
  std::string region;
  std::string bucket;
  std::string endpoint;         // scheme://host[:port], no trailing '/'
  std::string host_header;      // host[:port] as sent in Host and signed
  bool endpoint_given = false;  // false: the AWS default for the region
};

// Parses s3://KEY:SECRET@REGION/BUCKET[?endpoint=URL]. Messages never
// contain the URL or the secret.
[[nodiscard]] Result<S3Config> parse_s3_url(std::string_view url);

// Replaces the five XML entities and &#N; / &#xH; character references;
// false on an unknown or malformed reference.
bool xml_unescape(std::string_view in, std::string& out);

struct ListObjectsResult {
  std::vector<ObjectInfo> objects;  // in document order, ETags unquoted
  bool is_truncated = false;
  std::string next_continuation_token;
};

// Parses a ListObjectsV2 response body (<ListBucketResult>): Contents/Key,
// Size, ETag, IsTruncated, NextContinuationToken. errc::corruption for
// anything that is not well-formed or lacks required fields.
[[nodiscard]] Result<ListObjectsResult> parse_list_objects_v2(std::string_view xml);

struct S3ErrorBody {
  std::string code;  // "NoSuchKey", "AccessDenied", ... ("" if none)
  std::string message;
};
// Best effort: the <Error><Code> and <Message> of an error body.
S3ErrorBody parse_error_body(std::string_view xml);

}  // namespace horizon::store::detail
