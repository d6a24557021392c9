#include "core/text.h"
#include "store/http_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <curl/curl.h>
#include <mutex>

namespace horizon::store::detail {

std::string curl_failure_text(int curl_code, const char* detail) {
  const char* name = curl_easy_strerror(static_cast<CURLcode>(curl_code));
  std::string_view d = detail == nullptr ? std::string_view() : std::string_view(detail);
  while (!d.empty() && (d.back() == '\n' || d.back() == '\r' || d.back() == ' ')) d.remove_suffix(1);
  if (d.empty() || d == name) return name;
  return fmt::format("{} ({})", name, d);
}
namespace {

// curl_easy_setopt and curl_easy_getinfo are variadic (and macros under
// GCC's type checker); these typed wrappers call the functions directly.
void set_long(CURL* h, CURLoption option, long value) { (curl_easy_setopt)(h, option, value); }
void set_off(CURL* h, CURLoption option, curl_off_t value) { (curl_easy_setopt)(h, option, value); }
void set_str(CURL* h, CURLoption option, const char* value) { (curl_easy_setopt)(h, option, value); }
void set_ptr(CURL* h, CURLoption option, void* value) { (curl_easy_setopt)(h, option, value); }
void set_slist(CURL* h, CURLoption option, curl_slist* value) { (curl_easy_setopt)(h, option, value); }
using DataFn = std::size_t (*)(char*, std::size_t, std::size_t, void*);
void set_data_fn(CURL* h, CURLoption option, DataFn fn) { (curl_easy_setopt)(h, option, fn); }
using SeekFn = int (*)(void*, curl_off_t, int);
void set_seek_fn(CURL* h, CURLoption option, SeekFn fn) { (curl_easy_setopt)(h, option, fn); }
using ProgressFn = int (*)(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
void set_progress_fn(CURL* h, ProgressFn fn) { (curl_easy_setopt)(h, CURLOPT_XFERINFOFUNCTION, fn); }
long get_long(CURL* h, CURLINFO info) {
  long value = 0;
  (curl_easy_getinfo)(h, info, &value);
  return value;
}

constexpr std::size_t kMaxReserve = 256u << 20;  // trust Content-Length this far for reserve()

struct Transfer {
  HttpResponse response;
  long status = 0;  // of the response being received
  std::string_view upload;
  std::size_t upload_pos = 0;
  bool cut_empty = false;  // stopped before the body of an empty object (see on_header)
};

// True for "bytes A-B/0": a range of an object of size 0.
bool is_empty_object_range(std::string_view content_range) { return content_range.ends_with("/0"); }

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->response.body.append(data, size * count);
  return size * count;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {  // a new response (after 100 Continue, say)
    t->response.headers.clear();
    const auto space = line.find(' ');
    t->status = space == std::string_view::npos ? 0 : std::atol(std::string(line.substr(space + 1, 3)).c_str());
    return line.size();
  }
  if (line == "\r\n" || line == "\n") {
    // End of the headers. Some servers (s3rver) answer a range of an empty
    // object with "Content-Range: bytes 0-0/0" and "Content-Length: 1" and
    // then send nothing: there is nothing to wait for, stop here.
    const auto range = t->response.header("content-range");
    const auto length = t->response.header("content-length");
    if (t->status == 206 && range && is_empty_object_range(*range) && length && *length != "0") {
      t->cut_empty = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    return line.size();
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  std::string name = trim(line.substr(0, colon));
  for (auto& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  std::string value = trim(line.substr(colon + 1));
  if (name == "content-length") {
    std::size_t expected = 0;
    if (std::sscanf(value.c_str(), "%zu", &expected) == 1) t->response.body.reserve(std::min(expected, kMaxReserve));
  }
  t->response.headers.emplace_back(std::move(name), std::move(value));
  return line.size();
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = std::min(size * count, t->upload.size() - t->upload_pos);
  std::memcpy(buffer, t->upload.data() + t->upload_pos, n);
  t->upload_pos += n;
  return n;
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > t->upload.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_pos = static_cast<std::size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// Called by curl during a transfer (often while data flows, about once a
// second while it stalls): non-zero aborts it.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

bool is_transient(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
    case CURLE_WEIRD_SERVER_REPLY: return true;
    default: return false;
  }
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return std::nullopt;
}

HttpClient::HttpClient(HttpTimeouts timeouts, std::size_t max_idle) : timeouts_(timeouts), max_idle_(max_idle) {
  global_init();
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::release(void* handle) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

std::size_t HttpClient::connections_opened() const {
  std::lock_guard lock(mu_);
  return connections_opened_;
}

Result<HttpResponse> HttpClient::perform(const HttpRequest& request) {
  if (cancelled()) return Error::make(errc::not_ready, fmt::format("{} {}: cancelled", request.method, request.url));
  auto* h = static_cast<CURL*>(acquire());
  if (h == nullptr) return Error::make(errc::internal, "curl_easy_init failed");
  curl_easy_reset(h);  // options only: kept-alive connections stay

  Transfer t;
  t.upload = request.body;
  char error_buffer[CURL_ERROR_SIZE] = {};

  set_str(h, CURLOPT_URL, request.url.c_str());
  set_str(h, CURLOPT_PROTOCOLS_STR, "http,https");
  set_long(h, CURLOPT_NOSIGNAL, 1L);
  set_long(h, CURLOPT_PATH_AS_IS, 1L);
  set_long(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts_.connect.count()));
  set_long(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts_.total.count()));
  set_long(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  set_long(h, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(timeouts_.stall.count() / 1000)));
  set_long(h, CURLOPT_TCP_KEEPALIVE, 1L);
  set_ptr(h, CURLOPT_ERRORBUFFER, error_buffer);
  set_data_fn(h, CURLOPT_WRITEFUNCTION, &on_body);
  set_ptr(h, CURLOPT_WRITEDATA, &t);
  set_data_fn(h, CURLOPT_HEADERFUNCTION, &on_header);
  set_ptr(h, CURLOPT_HEADERDATA, &t);
  set_long(h, CURLOPT_NOPROGRESS, 0L);
  set_progress_fn(h, &on_progress);
  set_ptr(h, CURLOPT_XFERINFODATA, &cancelled_);

  if (request.method == "HEAD") {
    set_long(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    set_long(h, CURLOPT_UPLOAD, 1L);
    set_data_fn(h, CURLOPT_READFUNCTION, &on_read);
    set_ptr(h, CURLOPT_READDATA, &t);
    set_seek_fn(h, CURLOPT_SEEKFUNCTION, &on_seek);
    set_ptr(h, CURLOPT_SEEKDATA, &t);
    set_off(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    set_str(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  curl_slist* headers = nullptr;
  for (const auto& line : request.headers) headers = curl_slist_append(headers, line.c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  set_slist(h, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(h);
  t.response.status = get_long(h, CURLINFO_RESPONSE_CODE);
  const long new_connections = get_long(h, CURLINFO_NUM_CONNECTS);
  curl_slist_free_all(headers);
  set_slist(h, CURLOPT_HTTPHEADER, nullptr);
  {
    std::lock_guard lock(mu_);
    connections_opened_ += static_cast<std::size_t>(std::max(0L, new_connections));
  }

  if (rc == CURLE_OK) {
    release(h);
    return std::move(t.response);
  }
  if (rc == CURLE_WRITE_ERROR && t.cut_empty) {
    curl_easy_cleanup(h);  // the connection is in an unknown state
    std::erase_if(t.response.headers, [](const auto& kv) { return kv.first == "content-length"; });
    return std::move(t.response);
  }
  // After a failure, drop the handle (and its connection) altogether.
  curl_easy_cleanup(h);
  const std::string what = curl_failure_text(rc, error_buffer);
  const std::string message = fmt::format("{} {}: {}", request.method, request.url, printable_excerpt(what, 200));
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return Error::make(errc::not_ready, fmt::format("{} {}: cancelled", request.method, request.url));
  }
  if (rc == CURLE_PARTIAL_FILE) {
    return Error::make(errc::corruption, fmt::format("{} (the body is shorter than its Content-Length)", message));
  }
  return Error::make(is_transient(rc) ? errc::not_ready : errc::storage_failed, message);
}

}  // namespace horizon::store::detail
