// Endpoint: a Receiver served over plain HTTP on loopback (net::HttpServer).

#include "net/http_server.h"
#include "net/secrets.h"
#include "pushlib/pushlib.h"
#include "pushlib/pushlib_internal.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <utility>

namespace pushlib {

namespace net = horizon::net;

namespace detail {

bool is_loopback_address(std::string_view address) {
  const std::string a(address);
  in_addr v4{};
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6) != 0;
  return false;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    return percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
  }
  return std::nullopt;
}

}  // namespace detail

struct Endpoint::Impl {
  Impl(Receiver& r, EndpointOptions o) : receiver(r), options(std::move(o)) {}

  net::HttpResponse serve(const net::HttpRequest& req) {
    net::HttpResponse resp;
    if (!options.auth_token.empty()) {
      auto given = detail::query_parameter(req.target, "auth");
      if (!given || !net::constant_time_equal(*given, options.auth_token)) {
        const Error e = Error::make(errc::unauthorized, "missing or wrong auth query parameter");
        resp.status = e.http_status();
        resp.body = e.to_json_body();
        return resp;
      }
    }
    if (req.method != "POST") {
      const Error e = Error::make(errc::method_not_allowed, "the push endpoint accepts only POST");
      resp.status = e.http_status();
      resp.body = e.to_json_body();
      resp.headers.emplace_back("Allow", "POST");
      return resp;
    }
    PushResult r = receiver.handle(req.body);
    resp.status = r.http_status;
    resp.body = std::move(r.body);
    return resp;
  }

  Receiver& receiver;
  EndpointOptions options;
  std::unique_ptr<net::HttpServer> server;  // last: stopped before the rest is destroyed
};

Endpoint::Endpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Endpoint::~Endpoint() { stop(); }

Result<std::unique_ptr<Endpoint>> Endpoint::start(Receiver& receiver, EndpointOptions options) {
  if (options.address == "localhost") options.address = "127.0.0.1";
  if (!detail::is_loopback_address(options.address)) {
    return Error::make(errc::invalid_argument,
                       fmt::format("the push endpoint serves plain HTTP and listens only on a loopback address, "
                                   "not \"{}\"",
                                   options.address));
  }
  auto impl = std::make_unique<Impl>(receiver, std::move(options));
  net::HttpServerOptions o;
  o.address = impl->options.address;
  o.port = impl->options.port;
  o.tls = false;
  o.max_body_bytes = impl->options.max_body_bytes;
  o.threads = impl->options.threads;
  o.name = "pushlib";
  Impl* self = impl.get();
  auto server =
      net::HttpServer::start(o, [self](net::HttpRequest req, net::Responder respond) { respond(self->serve(req)); });
  if (!server) return server.error();
  impl->server = std::move(*server);
  return std::unique_ptr<Endpoint>(new Endpoint(std::move(impl)));
}

std::uint16_t Endpoint::port() const { return impl_->server->port(); }

std::string Endpoint::url() const {
  const std::string& a = impl_->options.address;
  const std::string host = a.find(':') != std::string::npos ? "[" + a + "]" : a;
  std::string out = fmt::format("http://{}:{}/_eventhorizon_push", host, port());
  if (!impl_->options.auth_token.empty()) out += "?auth=" + detail::percent_encode(impl_->options.auth_token);
  return out;
}

void Endpoint::stop() {
  if (impl_ && impl_->server) impl_->server->stop();
}

}  // namespace pushlib
