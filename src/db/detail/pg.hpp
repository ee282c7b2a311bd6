#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace invsync::db::detail {

struct PgConnDeleter {
  void operator()(PGconn* conn) const noexcept {
    if (conn != nullptr) {
      PQfinish(conn);
    }
  }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept {
    if (result != nullptr) {
      PQclear(result);
    }
  }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

/// SQLSTATE 23505: a row with the same unique key exists (a replayed ledger event).
class UniqueViolation : public RejectedDataError {
 public:
  using RejectedDataError::RejectedDataError;
};

/// A query result; rows and columns are bounds-checked.
class PgResult {
 public:
  explicit PgResult(PgResultPtr result) : result_(std::move(result)) {}
  [[nodiscard]] int rows() const { return PQntuples(result_.get()); }
  [[nodiscard]] int columns() const { return PQnfields(result_.get()); }
  [[nodiscard]] bool IsNull(int row, int column) const;
  [[nodiscard]] std::string_view Text(int row, int column) const;
  [[nodiscard]] std::int64_t Int64(int row, int column) const;
  [[nodiscard]] std::int64_t AffectedRows() const;

 private:
  void Check(int row, int column) const;
  PgResultPtr result_;
};

/// One PostgreSQL connection. Connects fully in the constructor or throws `TransientError`.
class PgConnection {
 public:
  explicit PgConnection(const std::string& url);

  /// Runs one statement with text parameters (nullopt = SQL NULL). Errors throw: connection and
  /// availability problems as `TransientError`, everything else as `PermanentError`.
  PgResult Exec(std::string_view sql, const std::vector<std::optional<std::string>>& params = {});
  /// Runs `COPY ... FROM STDIN` with `data` in COPY's text format; errors as for Exec.
  void CopyIn(std::string_view sql, std::string_view data);
  /// Runs several statements without parameters (migrations).
  void ExecScript(std::string_view sql);
  [[nodiscard]] bool broken() const;
  /// True between a BEGIN and its COMMIT or ROLLBACK (also when a statement in it failed).
  [[nodiscard]] bool in_transaction() const;
  /// Waits until a notification (of a channel this connection LISTENs to) arrives or `timeout`
  /// passes; consumes all that arrived. Returns true if there was one. A lost connection throws
  /// `TransientError`.
  bool WaitForNotification(std::chrono::milliseconds timeout);

 private:
  [[noreturn]] void Fail(const PGresult* result, std::string_view sql);
  PgConnPtr conn_;
};

/// Quotes values as a PostgreSQL array literal: {"a","b\"c"}.
std::string ArrayLiteral(const std::vector<std::string>& values);

}  // namespace invsync::db::detail
