#pragma once
// A ready pushlib Adapter over SQLite: offsets live in the table
//   eventhorizon_offsets(stream TEXT PRIMARY KEY, cursor TEXT NOT NULL)
// and the application writes its own tables in the same transaction from a
// callback, so that its effects and the new offset commit together (which is
// what makes delivery exactly once; see pushlib.h).
//
// Thread-safety: all calls are safe from any thread; transactions are
// serialized by a mutex. Use a separate connection for concurrent reads
// (WAL mode lets readers run beside the push transaction).

#include "pushlib/pushlib.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct sqlite3;

namespace pushlib {

class SqliteAdapter : public Adapter {
 public:
  // Called for every accepted line, inside the push's transaction (the
  // connection is in BEGIN IMMEDIATE). An error rolls the whole push back.
  using LineHandler = std::function<Result<void>(sqlite3* db, std::string_view stream, const Line& line)>;

  // Opens (creating if needed) the database at `path`, sets
  // PRAGMA journal_mode=WAL, PRAGMA synchronous=FULL, a 5 s busy timeout, and
  // creates eventhorizon_offsets. Errors: invalid_argument (subscription_id
  // not a stream under /_sub/), storage_failed / disk_full / corruption /
  // internal from SQLite (the message names the step and SQLite's reason).
  [[nodiscard]] static Result<std::unique_ptr<SqliteAdapter>> open(const std::string& path, std::string subscription_id,
                                                                   LineHandler handler);

  // As open, over a connection the caller already has. The caller keeps
  // ownership and closes `db` after the adapter is destroyed. Same errors.
  [[nodiscard]] static Result<std::unique_ptr<SqliteAdapter>> attach(sqlite3* db, std::string subscription_id,
                                                                     LineHandler handler);

  ~SqliteAdapter() override;
  SqliteAdapter(const SqliteAdapter&) = delete;
  SqliteAdapter& operator=(const SqliteAdapter&) = delete;

  // The connection (for creating the application's tables at start-up; do
  // not use it while a push may be running on another thread).
  sqlite3* db() const;

  // Adapter. run_in_transaction runs BEGIN IMMEDIATE ... COMMIT (ROLLBACK on
  // failure). A failed COMMIT is reported as an error after rolling back
  // what is still open; an I/O error during COMMIT is ambiguous (see Adapter).
  std::string subscription_id() const override;
  Result<void> run_in_transaction(const std::function<Result<void>(Transaction&)>& fn) override;
  Result<std::optional<std::string>> get_offset(Transaction& tx, std::string_view stream) override;
  Result<void> set_offset(Transaction& tx, std::string_view stream, std::string_view cursor) override;
  Result<void> handle_line(Transaction& tx, std::string_view stream, const Line& line) override;

 private:
  struct Impl;
  explicit SqliteAdapter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushlib
