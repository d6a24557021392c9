// sqlite-app: an Event Horizon application that keeps a table of users
// from UserCreated / UserRenamed events, using pushlib's SqliteAdapter.
//
// Events are regular lines holding JSON, e.g.
//   {"type":"UserCreated","id":"u1","name":"Ada"}
//   {"type":"UserRenamed","id":"u1","name":"Ada L."}
// The users table and the stream offsets are written in the same SQLite
// transaction, so every event is applied exactly once even though the Pusher
// may deliver a push more than once. See README.md.

#include "pushlib/pushlib.h"
#include "pushlib/sqlite_adapter.h"

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <sqlite3.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

namespace {

using pushlib::errc;
using pushlib::Error;
using pushlib::Result;

Result<void> run_sql(sqlite3* db, const char* sql, const std::string& a, const std::string& b, int* changes) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    return Error::make(errc::internal, std::string("prepare: ") + sqlite3_errmsg(db));
  }
  sqlite3_bind_text(st, 1, a.data(), static_cast<int>(a.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Error::make(errc::internal, std::string("sqlite: ") + sqlite3_errmsg(db));
  *changes = sqlite3_changes(db);
  return {};
}

std::string string_field(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// Applies one line. Runs inside the push's transaction: returning an error
// rolls back the whole push, and the Pusher retries it. A line this
// application can never apply (not JSON, unknown user) is logged and
// skipped, otherwise the stream would stop there forever.
Result<void> apply_line(sqlite3* db, std::string_view stream, const pushlib::Line& line) {
  if (line.is_meta()) return {};  // Created, Subscribed, SubscriptionActivity, ...
  // Every event is kept in an audit log too (same transaction).
  int logged = 0;
  if (auto r = run_sql(db, "INSERT INTO events(stream, content) VALUES(?1, ?2)", std::string(stream), line.content,
                       &logged);
      !r) {
    return r;
  }
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(line.content, ec);
  if (ec || !v.is_object()) {
    std::fprintf(stderr, "skip %s (not a JSON object)\n", line.ptr_after.c_str());
    return {};
  }
  const auto& o = v.get_object();
  const std::string type = string_field(o, "type");
  const std::string id = string_field(o, "id");
  const std::string name = string_field(o, "name");
  int changes = 0;
  if (type == "UserCreated" && !id.empty()) {
    auto r = run_sql(db, "INSERT INTO users(id, name) VALUES(?1, ?2) ON CONFLICT(id) DO NOTHING", id, name, &changes);
    if (!r) return r;
    if (changes == 0) std::fprintf(stderr, "skip %s: user %s already exists\n", line.ptr_after.c_str(), id.c_str());
  } else if (type == "UserRenamed" && !id.empty()) {
    auto r = run_sql(db, "UPDATE users SET name = ?2 WHERE id = ?1", id, name, &changes);
    if (!r) return r;
    if (changes == 0) std::fprintf(stderr, "skip %s: no user %s\n", line.ptr_after.c_str(), id.c_str());
  } else {
    return {};  // another application's event
  }
  std::printf("%.*s %s %s %s\n", static_cast<int>(stream.size()), stream.data(), type.c_str(), id.c_str(),
              name.c_str());
  std::fflush(stdout);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sqlite-app: keeps a users table from UserCreated/UserRenamed events pushed by `horizon pusher`."};
  std::string db_path = "users.db";
  std::string subscription = "/_sub/users-app";
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string auth;
  bool start_pusher = false;
  std::string horizon_binary;
  app.add_option("--db", db_path, "SQLite database file")->capture_default_str();
  app.add_option("--subscription", subscription, "the subscription stream (under /_sub/)")->capture_default_str();
  app.add_option("--address", address, "loopback address to listen on")->capture_default_str();
  app.add_option("--port", port, "port of the push endpoint (0: any free port)")->capture_default_str();
  app.add_option("--auth", auth, "token the Pusher must send as ?auth=");
  app.add_flag("--start-pusher", start_pusher, "run `horizon pusher` as a child process");
  app.add_option("--horizon", horizon_binary, "path of the horizon binary (default: next to this one, or PATH)");
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals before any thread starts, then wait for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto adapter = pushlib::SqliteAdapter::open(db_path, subscription, apply_line);
  if (!adapter) {
    std::fprintf(stderr, "sqlite-app: %s\n", adapter.error().to_string().c_str());
    return 1;
  }
  if (sqlite3_exec((*adapter)->db(),
                   "CREATE TABLE IF NOT EXISTS users(id TEXT PRIMARY KEY, name TEXT NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, "
                   "content TEXT NOT NULL)",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite-app: create table: %s\n", sqlite3_errmsg((*adapter)->db()));
    return 1;
  }

  pushlib::Receiver receiver(**adapter);
  pushlib::EndpointOptions options;
  options.address = address;
  options.port = port;
  options.auth_token = auth;
  auto endpoint = pushlib::Endpoint::start(receiver, options);
  if (!endpoint) {
    std::fprintf(stderr, "sqlite-app: %s\n", endpoint.error().to_string().c_str());
    return 1;
  }
  std::printf("sqlite-app: serving pushes for %s at %s\n", subscription.c_str(), (*endpoint)->url().c_str());
  std::fflush(stdout);

  std::unique_ptr<pushlib::PusherProcess> pusher;
  if (start_pusher) {
    pushlib::PusherProcessOptions po;
    po.endpoint_url = (*endpoint)->url();
    po.horizon_binary = horizon_binary;
    auto p = pushlib::PusherProcess::start(po);
    if (!p) {
      std::fprintf(stderr, "sqlite-app: %s\n", p.error().to_string().c_str());
      return 1;
    }
    pusher = std::move(*p);
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::printf("sqlite-app: stopping\n");
  if (pusher) (void)pusher->stop();
  (*endpoint)->stop();
  return 0;
}
