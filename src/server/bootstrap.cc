#include "server/bootstrap.h"

#include "core/store_keys.h"
#include "core/timestamp.h"
#include "net/ca.h"
#include "net/secrets.h"
#include "wal/fs.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

namespace horizon::server {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

Result<std::optional<std::string>> read_file(const fs::path& p) { return net::read_small_file(p.string()); }

Result<std::string> must_read(const fs::path& p) {
  auto r = read_file(p);
  if (!r) return r.error();
  if (!*r) {
    return Error::make(errc::corruption, fmt::format("{} is missing (the data directory was bootstrapped; "
                                                     "restore the file or start with a new data directory)",
                                                     p.string()));
  }
  return std::move(**r);
}

std::string env_value(const std::vector<std::pair<std::string, std::string>>& env, std::string_view key) {
  for (const auto& [k, v] : env) {
    if (k == key) return v;
  }
  return {};
}

std::vector<std::string> cert_hosts(const std::string& advertise) {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  if (!advertise.empty() && std::find(hosts.begin(), hosts.end(), advertise) == hosts.end()) {
    hosts.insert(hosts.begin(), advertise);
  }
  return hosts;
}

Result<std::optional<std::string>> discovery_owner(store::ObjectStore& store) {
  auto d = store.get(std::string(kDiscoveryKey));
  if (!d) return d.error();
  if (!*d) return std::optional<std::string>();
  boost::system::error_code ec;
  auto v = json::parse(**d, ec);
  if (ec || !v.is_object() || !v.as_object().contains("writer_id") || !v.at("writer_id").is_string()) {
    return Error::make(errc::corruption, fmt::format("{} in store {} is not a valid discovery record", kDiscoveryKey,
                                                     store.describe()));
  }
  return std::optional<std::string>(std::string(v.at("writer_id").as_string()));
}

// "2031-11-28": the date part of the timestamp format.
std::string utc_date(std::time_t t) { return Timestamp{static_cast<std::int64_t>(t) * 1000}.to_string().substr(0, 10); }

std::int64_t days_between(std::time_t from, std::time_t to) { return (static_cast<std::int64_t>(to) - from) / 86400; }

// trusted_cas, also written to the data directory's ca.pem when it differs.
Result<std::string> publish_trusted_cas(const std::string& data_dir, std::time_t now) {
  auto bundle = trusted_cas(data_dir, now);
  if (!bundle) return bundle.error();
  const fs::path path = fs::path(data_dir) / "ca.pem";
  auto old = read_file(path);
  if (!old) return old.error();
  if (!*old || **old != *bundle) {
    if (auto r = net::write_public_file(path.string(), *bundle); !r) return r.error();
  }
  return bundle;
}

Result<void> remove_durably(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec) return Error::make(errc::storage_failed, fmt::format("cannot remove {}: {}", p.string(), ec.message()));
  const int fd = ::open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) {
    return Error::make(errc::storage_failed,
                       fmt::format("cannot sync {}: {}", p.parent_path().string(), std::strerror(err)));
  }
  return {};
}

// "CA 3f2a...(16 hex digits of its SHA-256)... valid until 2036-11-28", for the operator.
std::string describe_ca(std::string_view pem) {
  auto v = net::certificate_validity(pem);
  auto fp = net::certificate_fingerprint_sha256(pem);
  return fmt::format("CA {}... valid until {}", fp ? fp->substr(0, 16) : std::string("?"),
                     v ? utc_date(v->not_after) : std::string("?"));
}

// identity.json: the Writer's id and the store its data directory belongs to.
struct IdentityFile {
  std::string writer_id;
  std::string store;
};

Result<IdentityFile> parse_identity(const fs::path& path, std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  const json::string* id = o != nullptr && o->contains("writer_id") ? o->at("writer_id").if_string() : nullptr;
  const json::string* store = o != nullptr && o->contains("store") ? o->at("store").if_string() : nullptr;
  if (id == nullptr || id->empty() || store == nullptr || store->empty()) {
    return Error::make(errc::corruption,
                       fmt::format("{} is damaged (expected a JSON object with the strings \"writer_id\" and "
                                   "\"store\")",
                                   path.string()));
  }
  return IdentityFile{std::string(*id), std::string(*store)};
}

Result<std::string> writer_id_of(const fs::path& dir) {
  auto text = must_read(dir / "identity.json");
  if (!text) return text.error();
  auto identity = parse_identity(dir / "identity.json", *text);
  if (!identity) return identity.error();
  return identity->writer_id;
}

// The first key under chunks/ in the store, if any.
Result<std::optional<std::string>> first_chunk_key(store::ObjectStore& store) {
  std::string token;
  do {  // a page may be empty while more follow
    auto page = store.list(kChunkKeyPrefix, token, 1);
    if (!page) return page.error();
    if (!page->objects.empty()) return std::optional<std::string>(page->objects.front().key);
    token = std::move(page->next_token);
  } while (!token.empty());
  return std::optional<std::string>();
}

}  // namespace

Result<std::string> trusted_cas(const std::string& data_dir, std::time_t now) {
  const fs::path tls = fs::path(data_dir) / "tls";
  auto current = must_read(tls / "ca.pem");
  if (!current) return current.error();
  std::string bundle = *current;
  auto next = read_file(tls / "ca-next.pem");
  if (!next) return next.error();
  if (*next && **next != *current) bundle += **next;
  auto previous = read_file(tls / "ca-previous.pem");
  if (!previous) return previous.error();
  if (*previous && **previous != *current) {
    if (auto v = net::certificate_validity(**previous); v && v->not_after > now) bundle += **previous;
  }
  return bundle;
}

Result<std::string> prepare_ca_rotation(const std::string& data_dir, std::time_t now) {
  const fs::path dir(data_dir);
  const fs::path tls = dir / "tls";
  auto id = writer_id_of(dir);
  if (!id) return id.error();
  auto current = must_read(tls / "ca.pem");
  if (!current) return current.error();
  auto next = read_file(tls / "ca-next.pem");
  if (!next) return next.error();
  std::string summary;
  if (*next && **next == *current) {
    return Error::make(errc::conflict, "a CA rotation was interrupted (tls/ca.pem is already the successor): run "
                                       "`horizon ca-rotate finish` again");
  }
  if (*next) {
    summary = fmt::format("a successor is already prepared: {}", describe_ca(**next));
  } else {
    auto ca = net::create_ca(fmt::format("Event Horizon internal CA {} {}", *id, utc_date(now)));
    if (!ca) return ca.error();
    // The key first, and the certificate only once it is written: a
    // certificate without its key is never a successor.
    if (auto r = net::write_secret_file((tls / "ca-next-key.pem").string(), ca->key_pem); !r) return r.error();
    if (auto r = net::write_public_file((tls / "ca-next.pem").string(), ca->cert_pem); !r) return r.error();
    summary = fmt::format("prepared the successor {}", describe_ca(ca->cert_pem));
  }
  auto trusted = publish_trusted_cas(data_dir, now);
  if (!trusted) return trusted.error();
  return fmt::format("{}. Clients trust it from the Writer's next start (the store's discovery record) and {}/ca.pem "
                     "(now); running Pushers and pubsub-subscribe follow. Replace copies of ca.pem kept elsewhere, "
                     "then run `horizon ca-rotate finish`.",
                     summary, data_dir);
}

Result<std::string> finish_ca_rotation(const std::string& data_dir, std::time_t now) {
  const fs::path tls = fs::path(data_dir) / "tls";
  auto next = read_file(tls / "ca-next.pem");
  if (!next) return next.error();
  if (!*next) {
    return Error::make(errc::invalid_argument,
                       fmt::format("no successor CA is prepared in {} (tls/ca-next.pem): run `horizon ca-rotate "
                                   "prepare` first",
                                   data_dir));
  }
  auto next_key = must_read(tls / "ca-next-key.pem");
  if (!next_key) return next_key.error();
  auto current = must_read(tls / "ca.pem");
  if (!current) return current.error();
  auto server = must_read(tls / "server.pem");
  if (!server) return server.error();
  // The same names as the current certificate (the first one is its CN).
  auto names = net::subject_alt_names(*server);
  if (!names) return names.error();
  if (names->empty()) names->push_back("localhost");
  // Issued before anything changes: a successor that cannot sign (a damaged
  // key) stops here with the current CA untouched.
  auto cert = net::issue_server_cert(net::CertifiedKey{**next, *next_key}, names->front(), *names);
  if (!cert) return cert.error();
  // Crash-safe order; finish runs again from any point while tls/ca-next.pem
  // exists: previous, CA certificate, CA key, server pair, then the
  // successor's files go.
  if (*current != **next) {
    if (auto r = net::write_public_file((tls / "ca-previous.pem").string(), *current); !r) return r.error();
    if (auto r = net::write_public_file((tls / "ca.pem").string(), **next); !r) return r.error();
  }
  // One at a time, stopping at the first failure (a braced list would make
  // every write before looking at any result).
  if (auto r = net::write_secret_file((tls / "ca-key.pem").string(), *next_key); !r) return r.error();
  if (auto r = net::write_secret_file((tls / "server-key.pem").string(), cert->key_pem); !r) return r.error();
  if (auto r = net::write_public_file((tls / "server.pem").string(), cert->cert_pem); !r) return r.error();
  for (const char* f : {"ca-next.pem", "ca-next-key.pem"}) {
    if (auto r = remove_durably(tls / f); !r) return r.error();
  }
  auto trusted = publish_trusted_cas(data_dir, now);
  if (!trusted) return trusted.error();
  return fmt::format("the internal CA is now {}; it signed a new server certificate; the previous CA "
                     "(tls/ca-previous.pem) stays trusted until it expires. Start the Writer: it publishes the new CA "
                     "to the store's discovery record.",
                     describe_ca(**next));
}

Result<void> publish_discovery(store::ObjectStore& store, const WriterIdentity& id, const std::string& api_address,
                               const std::string& pubsub_address) {
  auto fp = net::certificate_fingerprint_sha256(id.ca_pem);
  if (!fp) return fp.error();
  DiscoveryRecord r;
  r.writer_id = id.writer_id;
  r.api = api_address;
  r.pubsub = pubsub_address;
  r.ca_pem = id.trusted_ca_pem.empty() ? id.ca_pem : id.trusted_ca_pem;
  r.ca_sha256 = *fp;
  r.updated = Timestamp::now().to_string();
  return store.put(std::string(kDiscoveryKey), serialize_discovery(r));
}

std::vector<std::pair<std::string, std::string>> parse_env_file(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return out;
}

Result<WriterIdentity> bootstrap_or_load(const BootstrapConfig& c, store::ObjectStore& store) {
  const fs::path dir(c.data_dir);
  auto store_url = store::parse_store_url(c.store_url);
  if (!store_url) return store_url.error();
  auto owner = discovery_owner(store);
  if (!owner) return owner.error();

  auto identity_text = read_file(dir / "identity.json");
  if (!identity_text) return identity_text.error();
  WriterIdentity id;

  if (!*identity_text) {
    if (*owner) {
      return Error::make(errc::conflict,
                         fmt::format("store {} already belongs to Writer {} (bootstrapped from another data "
                                     "directory); refusing to bootstrap a second Writer on it. Nothing was written.",
                                     store_url->canonical, **owner));
    }
    // Chunks without a discovery record: another Writer's data whose record
    // is gone. A new Writer would write chunks under the same keys (the
    // same stream names and numbers) and, not able to decode the old ones
    // with its new key, overwrite them.
    auto chunk = first_chunk_key(store);
    if (!chunk) return chunk.error();
    if (*chunk) {
      return Error::make(errc::conflict,
                         fmt::format("store {} holds chunks ({}) but no discovery record: they are another Writer's, "
                                     "whose record is gone; refusing to bootstrap a new Writer on it (it could "
                                     "overwrite them). Start that Writer's data directory on it (its next start "
                                     "writes the record again), or use an empty store. Nothing was written.",
                                     store_url->canonical, **chunk));
    }
    auto writer_id = net::random_hex(8);
    auto token = net::random_hex(16);
    auto key = net::random_hex(32);
    if (!writer_id || !token || !key) return Error::make(errc::internal, "the OS random generator failed");
    auto ca = net::create_ca("Event Horizon internal CA " + *writer_id);
    if (!ca) return ca.error();
    auto server = net::issue_server_cert(*ca, c.advertise_host.empty() ? "localhost" : c.advertise_host,
                                         cert_hosts(c.advertise_host));
    if (!server) return server.error();
    if (auto made = wal::make_dirs_durably((dir / "tls").string()); !made) {
      return Error::make(errc::storage_failed, fmt::format("cannot create {}: {}", (dir / "tls").string(),
                                                           made.error().message));
    }
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, ec);
    fs::permissions(dir / "tls", fs::perms::owner_all, ec);
    const std::string env =
        fmt::format("STORE={}\nHORIZON_TOKEN={}\nHORIZON_KEY={}\n", c.store_url, *token, *key);
    for (auto r : {net::write_secret_file((dir / "tls" / "ca-key.pem").string(), ca->key_pem),
                   net::write_public_file((dir / "tls" / "ca.pem").string(), ca->cert_pem),
                   net::write_secret_file((dir / "tls" / "server-key.pem").string(), server->key_pem),
                   net::write_public_file((dir / "tls" / "server.pem").string(), server->cert_pem),
                   net::write_public_file((dir / "ca.pem").string(), ca->cert_pem),
                   net::write_secret_file((dir / "client.env").string(), env)}) {
      if (!r) return r.error();
    }
    json::object ident{{"writer_id", *writer_id},
                       {"store", store_url->canonical},
                       {"created", Timestamp::now().to_string()}};
    if (auto r = net::write_public_file((dir / "identity.json").string(), json::serialize(ident) + "\n"); !r) {
      return r.error();
    }
    id = WriterIdentity{*writer_id, *token, *key, ca->cert_pem, ca->cert_pem, server->cert_pem, server->key_pem,
                        true, {}};
  } else {
    auto identity = parse_identity(dir / "identity.json", **identity_text);
    if (!identity) return identity.error();
    id.writer_id = identity->writer_id;
    const std::string& bound_store = identity->store;
    if (bound_store != store_url->canonical) {
      return Error::make(errc::conflict, fmt::format("data directory {} belongs to store {}, not {}; refusing to "
                                                     "start",
                                                     c.data_dir, bound_store, store_url->canonical));
    }
    if (*owner && **owner != id.writer_id) {
      return Error::make(errc::conflict, fmt::format("store {} belongs to Writer {}, not to this data directory's "
                                                     "Writer {}; refusing to start",
                                                     store_url->canonical, **owner, id.writer_id));
    }
    auto env_text = must_read(dir / "client.env");
    if (!env_text) return env_text.error();
    const auto env = parse_env_file(*env_text);
    id.token = env_value(env, "HORIZON_TOKEN");
    id.master_key = env_value(env, "HORIZON_KEY");
    if (id.token.size() != 32 || id.master_key.size() != 64) {
      return Error::make(errc::corruption, fmt::format("{} lacks a valid HORIZON_TOKEN or HORIZON_KEY",
                                                       (dir / "client.env").string()));
    }
    auto ca_pem = must_read(dir / "tls" / "ca.pem");
    auto ca_key = must_read(dir / "tls" / "ca-key.pem");
    auto cert = must_read(dir / "tls" / "server.pem");
    auto key = must_read(dir / "tls" / "server-key.pem");
    for (const auto* r : {&ca_pem, &ca_key, &cert, &key}) {
      if (!*r) return r->error();
    }
    id.ca_pem = *ca_pem;
    id.server_cert_pem = *cert;
    id.server_key_pem = *key;
    const std::time_t now = std::time(nullptr);
    if (auto next = read_file(dir / "tls" / "ca-next.pem"); !next) {
      return next.error();
    } else if (*next && **next == id.ca_pem) {
      return Error::make(errc::conflict,
                         fmt::format("a CA rotation of {} was interrupted (tls/ca.pem is already the successor): run "
                                     "`horizon ca-rotate finish --data {}` again, then start the Writer",
                                     c.data_dir, c.data_dir));
    }
    auto trusted = publish_trusted_cas(c.data_dir, now);
    if (!trusted) return trusted.error();
    id.trusted_ca_pem = *trusted;
    auto renewal = renew_server_cert_if_due(c.data_dir, c.advertise_host, id.ca_pem, id.server_cert_pem, now);
    if (!renewal) return renewal.error();
    if (*renewal) {
      id.server_cert_pem = (*renewal)->cert_pem;
      id.server_key_pem = (*renewal)->key_pem;
      id.renewed = (*renewal)->reason;
    }
  }
  return id;
}

Result<std::optional<Renewal>> renew_server_cert_if_due(const std::string& data_dir, const std::string& advertise_host,
                                                        std::string_view ca_pem, std::string_view cert_pem,
                                                        std::time_t now) {
  const auto window = std::chrono::duration_cast<std::chrono::seconds>(kRenewBefore).count();
  auto cert = net::certificate_validity(cert_pem);
  auto ca = net::certificate_validity(ca_pem);
  if (!ca) return ca.error();
  const std::string host = advertise_host.empty() ? "localhost" : advertise_host;
  // A CA that has expired cannot sign anything clients accept, and a new
  // certificate cannot outlive the CA (ca_expiry_warning says so).
  if (ca->not_after <= now) return std::nullopt;
  std::string reason;
  if (!cert) {
    reason = "the certificate does not parse";
  } else if (cert->not_after - now < window) {
    if (ca->not_after <= cert->not_after) return std::nullopt;  // a new one could not last longer
    reason = cert->not_after <= now ? fmt::format("it expired on {}", utc_date(cert->not_after))
                                    : fmt::format("it expires on {}, in {} days", utc_date(cert->not_after),
                                                  days_between(now, cert->not_after));
  } else if (auto v = net::verify_server_cert(cert_pem, ca_pem, host, now); !v) {
    reason = fmt::format("it does not verify for {}: {}", host, v.error().message);
  } else {
    return std::nullopt;
  }
  const fs::path dir = fs::path(data_dir) / "tls";
  auto ca_key = must_read(dir / "ca-key.pem");
  if (!ca_key) return ca_key.error();
  auto server = net::issue_server_cert(net::CertifiedKey{std::string(ca_pem), *ca_key}, host, cert_hosts(advertise_host));
  if (!server) return server.error();
  if (auto r = net::write_secret_file((dir / "server-key.pem").string(), server->key_pem); !r) return r.error();
  if (auto r = net::write_public_file((dir / "server.pem").string(), server->cert_pem); !r) return r.error();
  return Renewal{server->cert_pem, server->key_pem, reason};
}

std::optional<std::string> ca_expiry_warning(std::string_view ca_pem, std::time_t now) {
  auto ca = net::certificate_validity(ca_pem);
  if (!ca) return fmt::format("the internal CA certificate does not parse: {}", ca.error().message);
  const auto window = std::chrono::duration_cast<std::chrono::seconds>(kCaWarnBefore).count();
  if (ca->not_after - now >= window) return std::nullopt;
  return fmt::format("the internal CA {} on {}: clients verify this Writer against it (ca.pem, the store's "
                     "discovery record) and cannot once it has expired; replace it with `horizon ca-rotate prepare`, then "
                     "`horizon ca-rotate finish` (docs/format/data-dir.md)",
                     ca->not_after <= now ? "expired" : fmt::format("expires in {} days,", days_between(now, ca->not_after)),
                     utc_date(ca->not_after));
}

}  // namespace horizon::server
