#include "store/s3_store.h"

#include "core/text.h"
#include "store/http_internal.h"
#include "store/s3_internal.h"
#include "store/sigv4.h"
#include "store/store_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <mutex>
#include <random>

namespace horizon::store {
namespace detail {
namespace {

constexpr std::string_view kUsage =
    "an s3:// URL is s3://ACCESS_KEY_ID:SECRET@REGION/BUCKET[?endpoint=http://host:port]";

Error bad_url(std::string_view why) {
  return Error::make(errc::invalid_argument, fmt::format("STORE: {} ({})", why, kUsage));
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

Result<void> check_region(std::string_view region) {
  const bool ok = !region.empty() && region.size() <= 32 && is_lower_alnum(region.front()) &&
                  is_lower_alnum(region.back()) &&
                  std::all_of(region.begin(), region.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
  if (ok) return {};
  return bad_url(fmt::format("region \"{}\" is not a region name (lowercase letters, digits and '-', like us-east-1)",
                             printable_excerpt(region, 40)));
}

Result<void> check_bucket(std::string_view bucket) {
  auto bad = [&](std::string_view why) {
    return bad_url(fmt::format("bucket \"{}\": {}", printable_excerpt(bucket, 80), why));
  };
  if (bucket.size() < 3 || bucket.size() > 63) return bad("a bucket name has 3 to 63 characters");
  if (!std::all_of(bucket.begin(), bucket.end(), [](char c) { return is_lower_alnum(c) || c == '.' || c == '-'; })) {
    return bad("only lowercase letters, digits, '.' and '-' are allowed");
  }
  if (!is_lower_alnum(bucket.front()) || !is_lower_alnum(bucket.back())) {
    return bad("must begin and end with a letter or digit");
  }
  if (bucket.find("..") != std::string_view::npos) return bad("must not contain \"..\"");
  if (std::all_of(bucket.begin(), bucket.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    return bad("must not look like an IP address");
  }
  return {};
}

// endpoint=scheme://host[:port][/] with no user info, path or query.
Result<void> parse_endpoint(std::string_view value, S3Config& out) {
  auto bad = [&](std::string_view why) {
    return bad_url(fmt::format("endpoint \"{}\": {}", printable_excerpt(value, 120), why));
  };
  std::string_view scheme;
  std::string_view rest;
  if (value.starts_with("http://")) {
    scheme = "http";
    rest = value.substr(7);
  } else if (value.starts_with("https://")) {
    scheme = "https";
    rest = value.substr(8);
  } else {
    return bad("must start with http:// or https://");
  }
  if (rest.ends_with("/")) rest.remove_suffix(1);
  if (rest.find_first_of("@/?#") != std::string_view::npos) {
    // '@' would mean user info: do not echo it.
    if (rest.find('@') != std::string_view::npos) {
      return bad_url("the endpoint must not contain user info ('@'); put credentials before the region");
    }
    return bad("must be scheme://host[:port] without a path or query");
  }
  std::string_view host = rest;
  std::string_view port;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address needs a closing ']'");
    host = rest.substr(0, close + 1);
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 address");
      port = after.substr(1);
    }
  } else if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  const bool host_ok = !host.empty() && (host.front() == '[' || std::all_of(host.begin(), host.end(), [](char c) {
                                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                                  (c >= '0' && c <= '9') || c == '.' || c == '-';
                                         }));
  if (!host_ok) return bad("not a host name or address");
  unsigned port_number = 0;
  if (!port.empty() || rest.ends_with(":")) {
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number == 0 ||
        port_number > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
  }
  const unsigned default_port = scheme == "http" ? 80 : 443;
  out.endpoint = fmt::format("{}://{}{}", scheme, host, port.empty() ? "" : ":" + std::string(port));
  out.host_header =
      port_number == 0 || port_number == default_port ? std::string(host) : fmt::format("{}:{}", host, port_number);
  out.endpoint_given = true;
  return {};
}

}  // namespace

Result<S3Config> parse_s3_url(std::string_view url) {
  if (!url.starts_with("s3://")) return bad_url("not an s3:// URL");
  const auto rest = url.substr(5);
  const auto at = rest.find('@');
  if (at == std::string_view::npos) return bad_url("the access key id and secret are missing");
  const auto userinfo = rest.substr(0, at);
  const auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) return bad_url("the secret is missing (ACCESS_KEY_ID:SECRET@)");

  S3Config out;
  if (!sigv4::percent_decode(userinfo.substr(0, colon), out.access_key_id)) {
    return bad_url("the access key id has a malformed %-escape");
  }
  if (!sigv4::percent_decode(userinfo.substr(colon + 1), out.secret_access_key)) {
    return bad_url("the secret has a malformed %-escape (encode '%' as %25)");
  }
  if (out.access_key_id.empty()) return bad_url("the access key id is empty");
  if (out.secret_access_key.empty()) return bad_url("the secret is empty");
  auto printable_no_space = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7F; });
  };
  if (!printable_no_space(out.access_key_id) || out.access_key_id.find('/') != std::string::npos ||
      out.access_key_id.size() > 128) {
    return bad_url("the access key id must be printable ASCII without spaces or '/'");
  }
  if (!printable_no_space(out.secret_access_key) || out.secret_access_key.size() > 256) {
    return bad_url("the secret must be printable ASCII without spaces (percent-decoded)");
  }

  auto location = rest.substr(at + 1);
  std::string_view query;
  if (const auto q = location.find('?'); q != std::string_view::npos) {
    query = location.substr(q + 1);
    location = location.substr(0, q);
  }
  const auto slash = location.find('/');
  if (slash == std::string_view::npos) return bad_url("the bucket is missing (REGION/BUCKET)");
  out.region = std::string(location.substr(0, slash));
  auto bucket = location.substr(slash + 1);
  if (bucket.ends_with("/")) bucket.remove_suffix(1);
  out.bucket = std::string(bucket);
  if (auto r = check_region(out.region); !r) return r.error();
  if (auto r = check_bucket(out.bucket); !r) return r.error();

  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    const auto eq = param.find('=');
    const auto name = param.substr(0, eq);
    if (name != "endpoint" || eq == std::string_view::npos) {
      return bad_url(fmt::format("unknown option \"{}\" (only endpoint=)", printable_excerpt(name, 40)));
    }
    std::string value;
    if (!sigv4::percent_decode(param.substr(eq + 1), value)) return bad_url("the endpoint has a malformed %-escape");
    if (auto r = parse_endpoint(value, out); !r) return r.error();
  }
  if (!out.endpoint_given) {
    out.host_header = "s3." + out.region + ".amazonaws.com";
    out.endpoint = "https://" + out.host_header;
  }
  return out;
}

}  // namespace detail

namespace {

using detail::HttpRequest;
using detail::HttpResponse;

bool is_transient_status(long status) { return status >= 500 || status == 429 || status == 408; }

std::string unquote_etag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  std::string out(etag);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_plain_md5(std::string_view etag) {
  return etag.size() == 32 &&
         std::all_of(etag.begin(), etag.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string amz_date_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

class S3Store final : public ObjectStore {
 public:
  S3Store(detail::S3Config config, S3Options options)
      : config_(std::move(config)),
        options_(options),
        http_(detail::HttpTimeouts{options.connect_timeout, options.request_timeout, options.stall_timeout},
              options.max_idle_connections) {
    url_ = "s3://" + config_.region + "/" + config_.bucket;
    if (config_.endpoint_given) url_ += "?endpoint=" + config_.endpoint;
  }

  Result<void> put(const std::string& key, std::string_view bytes) override {
    if (auto v = validate_key(key); !v) return v.error();
    const std::string md5 = sigv4::md5(bytes);
    Call call{"PUT", key,
              {},    {"Content-MD5: " + sigv4::base64(md5), "Content-Type: application/octet-stream"},
              bytes, sigv4::sha256_hex(bytes)};
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status != 200) return error_from(call, *r);
    const auto etag = r->header("etag");
    const std::string want = sigv4::hex(md5);
    if (!etag || unquote_etag(*etag).empty()) return confirm_put(key, want, bytes.size());
    if (unquote_etag(*etag) != want) {
      return Error::make(errc::corruption,
                         redact(fmt::format("{}: PUT {}: the answered ETag \"{}\" is not the MD5 {} of the {} bytes "
                                            "sent; the object may not hold them",
                                            url_, key, printable_excerpt(etag.value_or(""), 80), want, bytes.size())));
    }
    return {};
  }

  Result<std::optional<std::string>> get(const std::string& key) override {
    if (auto v = validate_key(key); !v) return v.error();
    Call call{"GET", key, {}, {}, {}, std::string(sigv4::kEmptySha256)};
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status == 404) return not_found(call, *r);
    if (r->status != 200) return error_from(call, *r);
    if (auto bad = check_length(call, *r); bad) return *bad;
    // S3 answers every GetObject with an ETag; a plain one is the MD5 of
    // the object (single-part uploads), so the bytes can be checked.
    const std::string e = unquote_etag(r->header("etag").value_or(""));
    if (e.empty()) {
      return Error::make(errc::corruption, redact(fmt::format("{}: GET {}: the answer has no ETag ({} bytes)", url_,
                                                              key, r->body.size())));
    }
    if (is_plain_md5(e) && sigv4::md5_hex(r->body) != e) {
      return Error::make(errc::corruption,
                         redact(fmt::format("{}: GET {}: the {} bytes received do not match the ETag {}", url_, key,
                                            r->body.size(), e)));
    }
    return std::optional<std::string>(std::move(r->body));
  }

  Result<std::optional<std::string>> get_range(const std::string& key, std::uint64_t offset,
                                               std::uint64_t length) override {
    if (auto v = validate_key(key); !v) return v.error();
    if (length == 0) {
      auto info = head(key);
      if (!info) return info.error();
      if (!*info) return std::optional<std::string>();
      return std::optional<std::string>(std::string());
    }
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    const std::string range = length > kMax - offset ? fmt::format("Range: bytes={}-", offset)
                                                     : fmt::format("Range: bytes={}-{}", offset, offset + length - 1);
    Call call{"GET", key, {}, {range}, {}, std::string(sigv4::kEmptySha256)};
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status == 404) return not_found(call, *r);
    if (r->status == 416) return std::optional<std::string>(std::string());  // at or past the end
    if (r->status == 200) {  // the server ignored Range: the whole object
      if (auto bad = check_length(call, *r); bad) return *bad;
      return std::optional<std::string>(detail::slice(r->body, offset, length));
    }
    if (r->status != 206) return error_from(call, *r);
    if (auto bad = check_length(call, *r); bad) return *bad;
    // Content-Range: bytes FIRST-LAST/TOTAL must be the range asked for.
    const auto content_range = r->header("content-range").value_or("");
    std::optional<std::uint64_t> first, last, total;
    if (content_range.starts_with("bytes ")) {
      const auto spec = std::string_view(content_range).substr(6);
      const auto dash = spec.find('-');
      const auto slash = spec.find('/');
      if (dash != std::string_view::npos && slash != std::string_view::npos && dash < slash) {
        first = parse_u64(spec.substr(0, dash));
        last = parse_u64(spec.substr(dash + 1, slash - dash - 1));
        total = parse_u64(spec.substr(slash + 1));
      }
    }
    // At or past the end of the object (s3rver answers 206 for an empty one).
    if (total && offset >= *total && r->body.empty()) return std::optional<std::string>(std::string());
    if (!first || !last || *first != offset || *last < *first || *last - *first + 1 != r->body.size() ||
        r->body.size() > length) {
      return Error::make(
          errc::corruption,
          redact(fmt::format("{}: GET {} bytes {}+{}: the answer (Content-Range \"{}\", {} bytes) is "
                             "not the range asked for",
                             url_, key, offset, length, printable_excerpt(content_range, 80), r->body.size())));
    }
    return std::optional<std::string>(std::move(r->body));
  }

  Result<std::optional<ObjectInfo>> head(const std::string& key) override {
    if (auto v = validate_key(key); !v) return v.error();
    Call call{"HEAD", key, {}, {}, {}, std::string(sigv4::kEmptySha256)};
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status == 404) return std::optional<ObjectInfo>();
    if (r->status != 200) return error_from(call, *r);
    const auto size = parse_u64(r->header("content-length").value_or(""));
    if (!size) {
      return Error::make(errc::corruption,
                         redact(fmt::format("{}: HEAD {}: the answer has no valid Content-Length", url_, key)));
    }
    return std::optional<ObjectInfo>(ObjectInfo{key, *size, unquote_etag(r->header("etag").value_or(""))});
  }

  Result<ListPage> list(std::string_view prefix, std::string_view continuation_token, std::size_t max_keys) override {
    auto page_size = detail::check_list_args(prefix, continuation_token, max_keys);
    if (!page_size) return page_size.error();
    Call call{"GET", "", {{"list-type", "2"}, {"max-keys", std::to_string(*page_size)}},
              {},    {}, std::string(sigv4::kEmptySha256)};
    if (!prefix.empty()) call.query.emplace_back("prefix", std::string(prefix));
    if (!continuation_token.empty()) call.query.emplace_back("continuation-token", std::string(continuation_token));
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status != 200) return error_from(call, *r);
    auto parsed = detail::parse_list_objects_v2(r->body);
    if (!parsed) {
      return Error::make(errc::corruption, redact(fmt::format("{}: list \"{}\": {}", url_,
                                                              printable_excerpt(prefix, 120), parsed.error().message)));
    }
    ListPage page;
    page.objects = std::move(parsed->objects);
    for (std::size_t i = 0; i < page.objects.size(); ++i) {
      const auto& k = page.objects[i].key;
      if (!k.starts_with(prefix) || (i > 0 && !(page.objects[i - 1].key < k))) {
        return Error::make(errc::corruption,
                           redact(fmt::format("{}: list \"{}\": the answer is not a sorted page of keys under the "
                                              "prefix (entry {}: \"{}\")",
                                              url_, printable_excerpt(prefix, 120), i, printable_excerpt(k, 120))));
      }
    }
    if (page.objects.size() > *page_size) {
      return Error::make(errc::corruption, redact(fmt::format("{}: list: {} entries in a page of at most {}", url_,
                                                              page.objects.size(), *page_size)));
    }
    if (parsed->is_truncated) page.next_token = std::move(parsed->next_continuation_token);
    return page;
  }

  Result<void> remove(const std::string& key) override {
    if (auto v = validate_key(key); !v) return v.error();
    Call call{"DELETE", key, {}, {}, {}, std::string(sigv4::kEmptySha256)};
    auto r = execute(call);
    if (!r) return r.error();
    if (r->status == 204 || r->status == 200 || r->status == 404) {
      if (r->status == 404) {
        const auto body = detail::parse_error_body(r->body);
        if (body.code == "NoSuchBucket") return error_from(call, *r);
      }
      return {};
    }
    return error_from(call, *r);
  }

  std::string describe() const override { return url_; }

  void cancel() override {
    http_.cancel();
    { std::lock_guard lock(cancel_mu_); }  // a backoff wait sees the flag or the notify
    cancel_cv_.notify_all();
  }

 private:
  struct Call {
    std::string method;
    std::string key;                   // "" for the bucket itself (list)
    sigv4::Pairs query;                // raw names and values
    std::vector<std::string> headers;  // unsigned extras: Range, Content-MD5, ...
    std::string_view body;
    std::string payload_sha256;
  };

  std::string what(const Call& call) const {
    return fmt::format("{}: {} {}", url_, call.method, call.key.empty() ? std::string("(bucket)") : call.key);
  }

  // Defence in depth: no message leaves with the secret in it, whatever a
  // server echoed.
  std::string redact(std::string message) const {
    for (const std::string& secret : {config_.secret_access_key, sigv4::uri_encode(config_.secret_access_key, false)}) {
      if (secret.empty()) continue;
      for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret, pos)) {
        message.replace(pos, secret.size(), "[secret]");
      }
    }
    return message;
  }

  // A non-success answer as an Error: 5xx/429/408 transient, the rest definite.
  Error error_from(const Call& call, const HttpResponse& r, int attempts = 1) const {
    const auto body = detail::parse_error_body(r.body);
    std::string message = fmt::format("{}: HTTP {}", what(call), r.status);
    if (!body.code.empty()) message += " " + printable_excerpt(body.code, 60);
    if (!body.message.empty()) message += " (" + printable_excerpt(body.message, 200) + ")";
    if (body.code == "SignatureDoesNotMatch" || body.code == "InvalidAccessKeyId") {
      message += "; check the access key id and secret in STORE";
    }
    if (attempts > 1) message += fmt::format(", gave up after {} attempts", attempts);
    return Error::make(is_transient_status(r.status) ? errc::not_ready : errc::storage_failed,
                       redact(std::move(message)));
  }

  // 404 on an object: no such object, unless the bucket itself is missing.
  Result<std::optional<std::string>> not_found(const Call& call, const HttpResponse& r) const {
    if (detail::parse_error_body(r.body).code == "NoSuchBucket") return error_from(call, r);
    return std::optional<std::string>();
  }

  // A PUT answered 200 without an ETag. OpenStack Swift's s3api answers so
  // when the object already holds a newer write (Swift's "202 Accepted" to a
  // PUT whose timestamp is older than the stored one: concurrent PUTs of one
  // key); the bytes sent are then not stored. A HEAD tells: the object holds
  // them (success), or not (conflict).
  Result<void> confirm_put(const std::string& key, const std::string& want_md5, std::size_t size) {
    auto info = head(key);
    if (!info) return info.error();
    if (*info && (*info)->etag == want_md5 && (*info)->size == size) return {};
    const std::string now = *info ? fmt::format("holds other bytes (ETag \"{}\", {} bytes)",
                                                printable_excerpt((*info)->etag, 80), (*info)->size)
                                  : std::string("is absent");
    return Error::make(errc::conflict,
                       redact(fmt::format("{}: PUT {}: the answer has no ETag and the object {}: a concurrent write of "
                                          "the key superseded the {} bytes sent, or the server lost them",
                                          url_, key, now, size)));
  }

  std::optional<Error> check_length(const Call& call, const HttpResponse& r) const {
    const auto header = r.header("content-length");
    if (!header) return std::nullopt;
    const auto expected = parse_u64(*header);
    if (expected && *expected == r.body.size()) return std::nullopt;
    return Error::make(errc::corruption,
                       redact(fmt::format("{}: received {} bytes but Content-Length is \"{}\"", what(call),
                                          r.body.size(), printable_excerpt(*header, 40))));
  }

  std::chrono::milliseconds backoff(int attempt) {
    const auto base = options_.backoff_base.count();
    const auto cap = options_.backoff_cap.count();
    long long ceiling = base;
    for (int i = 1; i < attempt && ceiling < cap; ++i) ceiling *= 2;
    ceiling = std::min<long long>(ceiling, cap);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<long long> pick(0, std::max<long long>(0, ceiling));
    return std::chrono::milliseconds(pick(rng));
  }

  // Signs (afresh for every attempt) and sends `call`, retrying transient
  // failures. A transient failure on the last attempt becomes not_ready
  // (or corruption for a short body); other answers are returned as they are.
  Result<HttpResponse> execute(const Call& call) {
    const std::string canonical_uri =
        "/" + config_.bucket + (call.key.empty() ? std::string() : "/" + sigv4::uri_encode(call.key, true));
    const std::string query = sigv4::canonical_query(call.query);
    const std::string url = config_.endpoint + canonical_uri + (query.empty() ? "" : "?" + query);
    const int max_attempts = std::max(1, options_.max_attempts);
    for (int attempt = 1;; ++attempt) {
      const std::string amz_date = amz_date_now();
      sigv4::Request to_sign{
          call.method,
          canonical_uri,
          call.query,
          {{"host", config_.host_header}, {"x-amz-content-sha256", call.payload_sha256}, {"x-amz-date", amz_date}},
          call.payload_sha256};
      const auto signed_request = sigv4::sign(to_sign, sigv4::Scope{amz_date, config_.region, "s3"},
                                              sigv4::Credentials{config_.access_key_id, config_.secret_access_key});
      HttpRequest request{call.method, url, {}, call.body};
      request.headers = {"Host: " + config_.host_header, "x-amz-date: " + amz_date,
                         "x-amz-content-sha256: " + call.payload_sha256,
                         "Authorization: " + signed_request.authorization};
      request.headers.insert(request.headers.end(), call.headers.begin(), call.headers.end());

      auto r = http_.perform(request);
      if (http_.cancelled()) {
        return Error::make(errc::not_ready, redact(fmt::format("{}: {} {}: cancelled (the process is stopping)", url_,
                                                               call.method, call.key)));
      }
      const bool transient = r ? is_transient_status(r->status)
                               : (r.error().code == errc::not_ready || r.error().code == errc::corruption);
      if (!transient) {
        if (!r) return Error::make(r.error().code, redact(fmt::format("{}: {}", url_, r.error().message)));
        return r;
      }
      if (attempt >= max_attempts) {
        if (r) return error_from(call, *r, attempt);
        return Error::make(r.error().code,
                           redact(fmt::format("{}: {}, gave up after {} attempts", url_, r.error().message, attempt)));
      }
      std::unique_lock lock(cancel_mu_);
      cancel_cv_.wait_for(lock, backoff(attempt), [this] { return http_.cancelled(); });
    }
  }

  detail::S3Config config_;
  S3Options options_;
  std::string url_;
  detail::HttpClient http_;
  std::mutex cancel_mu_;  // for cancel_cv_ (the backoff waits)
  std::condition_variable cancel_cv_;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> open_s3_store(std::string_view url, const S3Options& options) {
  auto config = detail::parse_s3_url(url);
  if (!config) return config.error();
  return std::unique_ptr<ObjectStore>(std::make_unique<S3Store>(std::move(*config), options));
}

}  // namespace horizon::store
