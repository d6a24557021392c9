// SqliteAdapter: offsets and the application's effects in one SQLite
// transaction.

#include "pushlib/sqlite_adapter.h"

#include "core/stream_name.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <mutex>
#include <utility>

namespace pushlib {

namespace {

errc code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return errc::disk_full;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM: return errc::storage_failed;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return errc::corruption;
    default: return errc::internal;
  }
}

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error::make(code_for(rc), fmt::format("sqlite: {}: {}", what, msg));
}

Result<void> exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return {};
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Result<void> ok(std::string_view what) const {
    if (rc_ != SQLITE_OK) return sqlite_error(db_, rc_, what);
    return {};
  }
  Result<void> bind(int index, std::string_view text, std::string_view what) {
    const int rc = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, what);
    return {};
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

class SqliteTransaction final : public Transaction {
 public:
  explicit SqliteTransaction(const void* owner) : owner_(owner) {}
  const void* owner() const { return owner_; }

 private:
  const void* owner_;
};

Result<void> check_subscription_id(const std::string& id) {
  auto n = horizon::StreamName::parse(id);
  if (!n || !n->is_subscription()) {
    return Error::make(errc::invalid_argument,
                       fmt::format("subscription id \"{}\" is not a stream under /_sub/", id.substr(0, 200)));
  }
  return {};
}

}  // namespace

struct SqliteAdapter::Impl {
  ~Impl() {
    if (owned && db != nullptr) sqlite3_close_v2(db);
  }

  Result<void> init() {
    if (int rc = sqlite3_busy_timeout(db, 5000); rc != SQLITE_OK) return sqlite_error(db, rc, "busy_timeout");
    {
      // journal_mode answers with the mode in effect; WAL can be refused
      // (e.g. for an in-memory database), which we report.
      Statement st(db, "PRAGMA journal_mode=WAL");
      if (auto ok = st.ok("PRAGMA journal_mode=WAL"); !ok) return ok;
      const int rc = sqlite3_step(st.get());
      if (rc != SQLITE_ROW) return sqlite_error(db, rc, "PRAGMA journal_mode=WAL");
      const auto* mode = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      if (mode == nullptr || std::string_view(mode) != "wal") {
        return Error::make(errc::storage_failed,
                           fmt::format("sqlite: the database refused journal_mode=WAL (mode is {})",
                                       mode != nullptr ? mode : "unknown"));
      }
    }
    if (auto ok = exec(db, "PRAGMA synchronous=FULL"); !ok) return ok;
    return exec(db,
                "CREATE TABLE IF NOT EXISTS eventhorizon_offsets("
                "stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)");
  }

  Result<void> check(const Transaction& tx) const {
    const auto* t = dynamic_cast<const SqliteTransaction*>(&tx);
    if (t == nullptr || t->owner() != this) {
      return Error::make(errc::internal, "a transaction of another adapter was passed to SqliteAdapter");
    }
    return {};
  }

  void rollback() {
    if (sqlite3_get_autocommit(db) == 0) (void)exec(db, "ROLLBACK");
  }

  sqlite3* db = nullptr;
  bool owned = false;
  std::string subscription_id;
  LineHandler handler;
  std::mutex mu;  // one transaction at a time
};

SqliteAdapter::SqliteAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteAdapter::~SqliteAdapter() = default;

Result<std::unique_ptr<SqliteAdapter>> SqliteAdapter::open(const std::string& path, std::string subscription_id,
                                                           LineHandler handler) {
  if (auto ok = check_subscription_id(subscription_id); !ok) return ok.error();
  auto impl = std::make_unique<Impl>();
  impl->owned = true;
  const int rc = sqlite3_open_v2(path.c_str(), &impl->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(impl->db, rc, "open " + path);
  impl->subscription_id = std::move(subscription_id);
  impl->handler = std::move(handler);
  if (auto ok = impl->init(); !ok) return ok.error();
  return std::unique_ptr<SqliteAdapter>(new SqliteAdapter(std::move(impl)));
}

Result<std::unique_ptr<SqliteAdapter>> SqliteAdapter::attach(sqlite3* db, std::string subscription_id,
                                                             LineHandler handler) {
  if (auto ok = check_subscription_id(subscription_id); !ok) return ok.error();
  if (db == nullptr) return Error::make(errc::invalid_argument, "SqliteAdapter::attach needs a connection");
  auto impl = std::make_unique<Impl>();
  impl->db = db;
  impl->subscription_id = std::move(subscription_id);
  impl->handler = std::move(handler);
  if (auto ok = impl->init(); !ok) return ok.error();
  return std::unique_ptr<SqliteAdapter>(new SqliteAdapter(std::move(impl)));
}

sqlite3* SqliteAdapter::db() const { return impl_->db; }

std::string SqliteAdapter::subscription_id() const { return impl_->subscription_id; }

Result<void> SqliteAdapter::run_in_transaction(const std::function<Result<void>(Transaction&)>& fn) {
  std::lock_guard lock(impl_->mu);
  if (auto ok = exec(impl_->db, "BEGIN IMMEDIATE"); !ok) return ok;
  SqliteTransaction tx(impl_.get());
  Result<void> r;
  try {
    r = fn(tx);
  } catch (...) {
    impl_->rollback();
    throw;
  }
  if (!r) {
    impl_->rollback();
    return r;
  }
  if (auto ok = exec(impl_->db, "COMMIT"); !ok) {
    impl_->rollback();
    return ok;
  }
  return {};
}

Result<std::optional<std::string>> SqliteAdapter::get_offset(Transaction& tx, std::string_view stream) {
  if (auto ok = impl_->check(tx); !ok) return ok.error();
  Statement st(impl_->db, "SELECT cursor FROM eventhorizon_offsets WHERE stream = ?1");
  if (auto ok = st.ok("prepare offset query"); !ok) return ok.error();
  if (auto ok = st.bind(1, stream, "bind offset query"); !ok) return ok.error();
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return sqlite_error(impl_->db, rc, "read offset");
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
  const int len = sqlite3_column_bytes(st.get(), 0);
  return std::optional<std::string>(std::string(text != nullptr ? text : "", static_cast<std::size_t>(len)));
}

Result<void> SqliteAdapter::set_offset(Transaction& tx, std::string_view stream, std::string_view cursor) {
  if (auto ok = impl_->check(tx); !ok) return ok.error();
  Statement st(impl_->db,
               "INSERT INTO eventhorizon_offsets(stream, cursor) VALUES(?1, ?2) "
               "ON CONFLICT(stream) DO UPDATE SET cursor = excluded.cursor");
  if (auto ok = st.ok("prepare offset update"); !ok) return ok;
  if (auto ok = st.bind(1, stream, "bind offset update"); !ok) return ok;
  if (auto ok = st.bind(2, cursor, "bind offset update"); !ok) return ok;
  const int rc = sqlite3_step(st.get());
  if (rc != SQLITE_DONE) return sqlite_error(impl_->db, rc, "write offset");
  return {};
}

Result<void> SqliteAdapter::handle_line(Transaction& tx, std::string_view stream, const Line& line) {
  if (auto ok = impl_->check(tx); !ok) return ok.error();
  if (!impl_->handler) return {};
  return impl_->handler(impl_->db, stream, line);
}

}  // namespace pushlib
