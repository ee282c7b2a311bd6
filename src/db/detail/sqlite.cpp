#include "db/detail/sqlite.hpp"

#include <fmt/format.h>

namespace invsync::db::detail {

namespace {

bool IsTransient(int code) {
  switch (code & 0xff) {  // the primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
      return true;
    default:
      return false;
  }
}

// A constraint failed, a value has the wrong type or is too big: the values are wrong.
bool IsRejectedData(int code) {
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return true;
    default:
      return false;
  }
}

}  // namespace

SqliteConnection::SqliteConnection(const std::string& path,
                                   std::chrono::milliseconds busy_timeout) {
  const int code =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
    sqlite3_close(db_);
    db_ = nullptr;
    throw TransientError(fmt::format("cannot open the SQLite database {}: {}", path, message));
  }
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  // WAL: readers never block the writer nor the writer them; FULL: a commit survives power loss,
  // which the persister relies on before it acknowledges events.
  try {
    Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
  } catch (const Error&) {
    sqlite3_close_v2(db_);  // no destructor runs for a constructor that throws
    db_ = nullptr;
    throw;
  }
}

SqliteConnection::~SqliteConnection() { sqlite3_close_v2(db_); }

void SqliteConnection::Fail(int code, std::string_view what) const {
  auto text = fmt::format("database error in \"{}\": {}", what.substr(0, 60), sqlite3_errmsg(db_));
  if (IsTransient(code)) {
    throw TransientError(text);
  }
  if (IsRejectedData(code)) {
    throw RejectedDataError(fmt::format("{} (SQLite code {})", text, code));
  }
  throw PermanentError(fmt::format("{} (SQLite code {})", text, code));
}

void SqliteConnection::Exec(std::string_view sql) {
  const std::string statement(sql);
  const int code = sqlite3_exec(db_, statement.c_str(), nullptr, nullptr, nullptr);
  if (code != SQLITE_OK) {
    Fail(code, sql);
  }
}

std::int64_t SqliteConnection::QueryInt(std::string_view sql) {
  SqliteStatement statement(*this, sql);
  if (!statement.Step()) {
    throw PermanentError(fmt::format("\"{}\" returned no row", sql));
  }
  return statement.Int64(0);
}

std::int64_t SqliteConnection::Changes() const { return sqlite3_changes64(db_); }

SqliteStatement::SqliteStatement(SqliteConnection& connection, std::string_view sql)
    : connection_(connection) {
  const int code = sqlite3_prepare_v2(connection.handle(), sql.data(), static_cast<int>(sql.size()),
                                      &statement_, nullptr);
  if (code != SQLITE_OK) {
    connection.Fail(code, sql);
  }
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(statement_); }

SqliteStatement& SqliteStatement::Bind(int index, std::string_view text) {
  const int code = sqlite3_bind_text64(statement_, index, text.data(), text.size(),
                                       SQLITE_TRANSIENT, SQLITE_UTF8);
  if (code != SQLITE_OK) {
    connection_.Fail(code, sqlite3_sql(statement_));
  }
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::int64_t value) {
  const int code = sqlite3_bind_int64(statement_, index, value);
  if (code != SQLITE_OK) {
    connection_.Fail(code, sqlite3_sql(statement_));
  }
  return *this;
}

bool SqliteStatement::Step() {
  const int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) {
    return true;
  }
  if (code == SQLITE_DONE) {
    return false;
  }
  const int detail = sqlite3_extended_errcode(connection_.handle());
  sqlite3_reset(statement_);
  connection_.Fail(detail, sqlite3_sql(statement_));
}

void SqliteStatement::Run() {
  while (Step()) {
  }
  Reset();
}

void SqliteStatement::Reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

int SqliteStatement::columns() const { return sqlite3_column_count(statement_); }

bool SqliteStatement::IsNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::int64_t SqliteStatement::Int64(int column) const {
  if (sqlite3_column_type(statement_, column) != SQLITE_INTEGER) {
    throw PermanentError(fmt::format("database returned a non-integer in column {} of \"{}\"",
                                     column, sqlite3_sql(statement_)));
  }
  return sqlite3_column_int64(statement_, column);
}

double SqliteStatement::Double(int column) const {
  return sqlite3_column_double(statement_, column);
}

std::string SqliteStatement::Text(int column) const {
  const auto* text = sqlite3_column_text(statement_, column);
  return text == nullptr
             ? std::string()
             : std::string(reinterpret_cast<const char*>(text),
                           static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
}

}  // namespace invsync::db::detail
