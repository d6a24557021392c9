#include "cli/client.h"

#include "core/wire.h"
#include "net/secrets.h"
#include "server/bootstrap.h"
#include "server/discovery.h"
#include "server/writer_process.h"
#include "store/http_internal.h"
#include "store/object_store.h"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <curl/curl.h>

namespace horizon::cli {

namespace json = boost::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// A request body handed to libcurl piece by piece, so that it can never be
// sent twice. libcurl sends a request again by itself when a reused
// connection closes before any byte of the answer (it takes the close for
// an idle keep-alive connection the server dropped), also after the whole
// request went out, when the Writer may have applied it: an append would
// then be applied twice without the caller knowing. Resending needs the
// body rewound (the seek callback); once any of it was taken, that is
// refused, and the request fails (CURLE_SEND_FAIL_REWIND) for the caller
// to decide.
struct Upload {
  const std::string& body;
  std::size_t taken = 0;
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t n, void* data) {
  auto* u = static_cast<Upload*>(data);
  const std::size_t len = std::min(size * n, u->body.size() - u->taken);
  std::memcpy(buffer, u->body.data() + u->taken, len);
  u->taken += len;
  return len;
}

int rewind_body(void* data, curl_off_t offset, int origin) {
  const auto* u = static_cast<Upload*>(data);
  return u->taken == 0 && offset == 0 && origin == SEEK_SET ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
}

}  // namespace

Result<ClientConfig> resolve_client_config(const ClientFlags& flags) {
  ClientConfig c;
  c.store_url = !flags.store.empty() ? flags.store : env("STORE");
  c.token = !flags.token.empty() ? flags.token : env("HORIZON_TOKEN");
  c.key = env("HORIZON_KEY");
  if (c.store_url.empty() || c.token.empty()) {
    const std::string dir = flags.data.empty() ? server::default_data_dir() : flags.data;
    auto text = net::read_small_file(dir + "/client.env");
    if (!text || !*text) {
      return Error::make(errc::invalid_argument,
                         fmt::format("no STORE/HORIZON_TOKEN given and no {}/client.env readable{} (start a Writer "
                                     "here, or set STORE and HORIZON_TOKEN)",
                                     dir, text ? "" : " (" + text.error().message + ")"));
    }
    for (const auto& [k, v] : server::parse_env_file(**text)) {
      if (k == "STORE" && c.store_url.empty()) c.store_url = v;
      if (k == "HORIZON_TOKEN" && c.token.empty()) c.token = v;
      if (k == "HORIZON_KEY" && c.key.empty()) c.key = v;
    }
  }
  if (c.store_url.empty()) return Error::make(errc::invalid_argument, "no STORE configured");
  if (c.token.empty()) return Error::make(errc::invalid_argument, "no HORIZON_TOKEN configured");
  auto store = store::open_store(c.store_url);
  if (!store) return store.error();
  std::shared_ptr<store::ObjectStore> shared(std::move(*store));
  auto address = read_writer_address(*shared);
  if (!address) return address.error();
  c.api = address->api;
  c.pubsub = address->pubsub;
  c.ca_pem = address->ca_pem;
  c.locator = std::make_shared<WriterLocator>(std::move(shared), std::move(*address));
  return c;
}

Result<WriterAddress> read_writer_address(store::ObjectStore& store) {
  auto disc = store.get(std::string(server::kDiscoveryKey));
  if (!disc) return disc.error();
  if (!*disc) {
    return Error::make(errc::not_ready, fmt::format("store {} has no Writer yet (no discovery record)",
                                                    store.describe()));
  }
  auto record = server::parse_discovery(**disc);
  if (!record) {
    return Error::make(errc::corruption, fmt::format("the store's {}: {}", record.error().message, store.describe()));
  }
  return WriterAddress{"https://" + record->api, record->pubsub, record->ca_pem};
}

WriterLocator::WriterLocator(std::shared_ptr<store::ObjectStore> store, WriterAddress first,
                             std::chrono::milliseconds min_interval)
    : store_(std::move(store)),
      min_interval_(min_interval),
      current_(std::move(first)),
      last_read_(std::chrono::steady_clock::now()) {}

WriterAddress WriterLocator::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::uint64_t WriterLocator::reads() const {
  std::lock_guard lock(mu_);
  return reads_;
}

std::optional<WriterAddress> WriterLocator::moved_from(const WriterAddress& failed) {
  std::lock_guard refresh(refresh_mu_);
  {
    std::lock_guard lock(mu_);
    if (current_ != failed) return current_;  // another caller found the move already
    if (std::chrono::steady_clock::now() - last_read_ < min_interval_) return std::nullopt;
  }
  auto read = read_writer_address(*store_);
  std::lock_guard lock(mu_);
  last_read_ = std::chrono::steady_clock::now();
  ++reads_;
  if (!read) {
    if (read.error().message != last_problem_) {
      last_problem_ = read.error().message;
      spdlog::warn("the Writer at {} is unreachable and its discovery record cannot be read again: {}", failed.api,
                   last_problem_);
    }
    return std::nullopt;
  }
  last_problem_.clear();
  if (*read == current_) return std::nullopt;
  spdlog::info("the store's discovery record names the Writer anew: API {} (was {}), pub/sub {} (was {}), {}",
               read->api, current_.api, read->pubsub.empty() ? "off" : read->pubsub,
               current_.pubsub.empty() ? "off" : current_.pubsub,
               read->ca_pem == current_.ca_pem ? "the same CAs" : "other CA certificates");
  current_ = std::move(*read);
  return current_;
}

LocatorRefresher::LocatorRefresher(std::shared_ptr<WriterLocator> locator)
    : locator_(std::move(locator)), thread_([this] { run(); }) {}

LocatorRefresher::~LocatorRefresher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void LocatorRefresher::poke() {
  {
    std::lock_guard lock(mu_);
    poked_ = true;
  }
  cv_.notify_one();
}

void LocatorRefresher::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return poked_ || stop_; });
    if (stop_) return;
    poked_ = false;
    lock.unlock();
    (void)locator_->moved_from(locator_->current());  // logs a move
    lock.lock();
  }
}

Client::Client(ClientConfig config) : config_(std::move(config)), curl_(curl_easy_init()) {}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<HttpResult> Client::post(const std::string& path, const std::string& json_body) {
  WriterAddress at = config_.locator ? config_.locator->current()
                                     : WriterAddress{config_.api, config_.pubsub, config_.ca_pem};
  bool unreached = false;
  auto r = post_to(at, path, json_body, unreached);
  if (r || !unreached || !config_.locator) return r;
  auto moved = config_.locator->moved_from(at);
  if (!moved) return r;
  return post_to(*moved, path, json_body, unreached);
}

Result<HttpResult> Client::post_to(const WriterAddress& at, const std::string& path, const std::string& json_body,
                                   bool& unreached) {
  unreached = false;
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return Error::make(errc::internal, "libcurl failed to initialize");
  HttpResult out;
  const std::string url = at.api + path;
  const std::string auth = "Authorization: Bearer " + config_.token;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, auth.c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_blob ca{const_cast<char*>(at.ca_pem.data()), at.ca_pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  Upload upload{json_body};
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, rewind_body);
  curl_easy_setopt(c, CURLOPT_SEEKDATA, &upload);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
  // A connection idle for 5 s is not reused: the Writer closes idle ones
  // after 10 s, and one closing just as a request goes out would fail it
  // (it cannot be resent, see Upload).
  curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, 5L);
  curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  char detail[CURL_ERROR_SIZE] = {};  // why, e.g. "SSL certificate problem: certificate has expired"
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    // Failures before the request was sent: no connection, or no verified
    // TLS session; and no byte of the request issued (a timeout or a reused
    // connection could otherwise hide one that was).
    long issued = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &issued);
    unreached = issued == 0 && (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
                                rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                                rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_OPERATION_TIMEDOUT);
    if (rc == CURLE_SEND_FAIL_REWIND) {
      return Error::make(errc::not_ready, fmt::format("the connection to the Writer at {} closed before it answered "
                                                      "(the request may have been applied)",
                                                      at.api));
    }
    if (issued > 0) {
      // The request went out (some of it at least): the Writer may have
      // applied it.
      return Error::make(errc::not_ready, fmt::format("no answer from the Writer at {}: {} (the request may have "
                                                      "been applied)",
                                                      at.api, store::detail::curl_failure_text(rc, detail)));
    }
    return Error::make(errc::not_ready, fmt::format("cannot reach the Writer at {}: {}", at.api,
                                                    store::detail::curl_failure_text(rc, detail)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

Result<std::string> live_read(Client& client, const Cursor& from, std::size_t max_lines) {
  wire::LiveReadRequest req{from, static_cast<std::int64_t>(std::min<std::size_t>(max_lines, wire::kMaxLinesToRead))};
  auto res = client.post("/writer/liveread", wire::to_json(req));
  if (!res) return Error::make(errc::not_ready, res.error().message);
  if (res->status == 200) return std::move(res->body);
  if (res->status == 404 && res->body.find("chunk_not_found") != std::string::npos) {
    return Error::make(errc::chunk_not_found, describe_error(*res));
  }
  if (res->status >= 500) return Error::make(errc::not_ready, describe_error(*res));
  return Error::make(errc::invalid_argument, describe_error(*res));
}

std::string reader_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') return std::string(x) + "/event-horizon";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return std::string(h) + "/.cache/event-horizon";
  return "horizon-cache";
}

std::string describe_error(const HttpResult& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("message") && v.at("message").is_string()) {
    std::string code = v.as_object().contains("error") && v.at("error").is_string()
                           ? std::string(v.at("error").as_string())
                           : "";
    return fmt::format("{} (HTTP {} {})", std::string(v.at("message").as_string()), r.status, code);
  }
  return fmt::format("HTTP {}: {}", r.status, r.body.substr(0, 200));
}

}  // namespace horizon::cli
