#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"

namespace invsync::db::detail {

class SqliteConnection;

/// One prepared statement; parameters are bound by position (1-based), columns read 0-based.
class SqliteStatement {
 public:
  SqliteStatement(SqliteConnection& connection, std::string_view sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& Bind(int index, std::string_view text);
  SqliteStatement& Bind(int index, std::int64_t value);
  /// Advances to the next row: true if there is one, false when done. Errors throw.
  bool Step();
  /// Runs a statement that returns no rows, resetting it for the next run.
  void Run();
  /// Resets for another run with new bindings.
  void Reset();

  /// Columns of the statement's result (0 for one that returns no rows).
  [[nodiscard]] int columns() const;
  [[nodiscard]] bool IsNull(int column) const;
  [[nodiscard]] std::int64_t Int64(int column) const;
  [[nodiscard]] double Double(int column) const;
  [[nodiscard]] std::string Text(int column) const;

 private:
  SqliteConnection& connection_;
  sqlite3_stmt* statement_ = nullptr;
};

/// One SQLite connection in WAL mode with a busy timeout. Errors throw: a busy or locked database
/// and I/O trouble as `TransientError`, everything else as `PermanentError`.
class SqliteConnection {
 public:
  SqliteConnection(const std::string& path, std::chrono::milliseconds busy_timeout);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  /// Runs statements without parameters.
  void Exec(std::string_view sql);
  /// A single integer from a query without parameters (e.g. a PRAGMA).
  std::int64_t QueryInt(std::string_view sql);
  /// Number of rows the last statement changed.
  [[nodiscard]] std::int64_t Changes() const;
  /// SQLite connections do not break the way network ones do.
  [[nodiscard]] static bool broken() { return false; }
  /// True between a BEGIN and its COMMIT or ROLLBACK.
  [[nodiscard]] bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

  [[noreturn]] void Fail(int code, std::string_view what) const;
  [[nodiscard]] sqlite3* handle() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

/// Runs `work` between `begin` and COMMIT; rolls back on any failure and rethrows that failure.
template <typename Work>
void InTransaction(SqliteConnection& connection, std::string_view begin, Work&& work) {
  connection.Exec(begin);
  try {
    work();
    connection.Exec("COMMIT");
  } catch (...) {
    try {
      connection.Exec("ROLLBACK");
    } catch (const Error&) {
      // The original failure is the one worth reporting (SQLite may have rolled back already).
      // A connection left inside the transaction is not lent again (see ConnectionPool).
    }
    throw;
  }
}

/// Runs `work` in a transaction that holds the write lock from its start (BEGIN IMMEDIATE).
template <typename Work>
void InWriteTransaction(SqliteConnection& connection, Work&& work) {
  InTransaction(connection, "BEGIN IMMEDIATE", std::forward<Work>(work));
}

/// Runs `work` in a read transaction: every statement in it reads the same snapshot.
template <typename Work>
void InReadTransaction(SqliteConnection& connection, Work&& work) {
  InTransaction(connection, "BEGIN", std::forward<Work>(work));
}

}  // namespace invsync::db::detail
