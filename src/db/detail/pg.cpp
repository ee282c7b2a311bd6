#include "db/detail/pg.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <array>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::db::detail {

namespace {

// SQLSTATE classes and codes that mean "try again later", not "this statement is wrong":
// connection exceptions (08), serialization failure, deadlock and a commit whose outcome is
// unknown (40001, 40P01, 40003), a read-only transaction (25006: connected to a standby, as after
// a failover), a cancelled statement or statement timeout (57014), operator intervention such as
// shutdown (57P01-57P03), insufficient resources (53), a lock not available (55P03).
bool IsTransientState(std::string_view state) {
  static constexpr std::array kCodes = {"40001", "40P01", "40003", "25006", "57014",
                                        "57P01", "57P02", "57P03", "55P03"};
  if (state.starts_with("08") || state.starts_with("53")) {
    return true;
  }
  for (std::string_view code : kCodes) {
    if (state == code) {
      return true;
    }
  }
  return false;
}

// libpq's messages end with a newline and may span lines ("...failed: Connection refused\n\tIs
// the server running..."); errors here are one line each.
std::string OneLine(std::string_view text) {
  std::string line;
  bool gap = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      gap = true;
      continue;
    }
    if (gap && !line.empty()) {
      line += ' ';
    }
    gap = false;
    line += c;
  }
  return line;
}

std::string ConnectionError(const PGconn* conn) { return OneLine(PQerrorMessage(conn)); }

// What the URL does not say: a server that accepts the connection but never answers fails the
// connect after 10 s instead of hanging it (and the command, and a stop waiting for it), and a peer
// that is gone is noticed by TCP keepalives within about a minute. Settings in the URL win (it is
// expanded after these).
PGconn* Connect(const std::string& url) {
  static constexpr std::array<const char*, 6> kKeys = {
      "connect_timeout",  "keepalives_idle", "keepalives_interval",
      "keepalives_count", "dbname",          nullptr};
  const std::array<const char*, 6> values = {"10", "30", "10", "3", url.c_str(), nullptr};
  return PQconnectdbParams(kKeys.data(), values.data(), /*expand_dbname=*/1);
}

std::string_view Clip(std::string_view sql) {
  constexpr std::size_t kMax = 60;
  return sql.size() <= kMax ? sql : sql.substr(0, kMax);
}

}  // namespace

void PgResult::Check(int row, int column) const {
  if (row < 0 || row >= PQntuples(result_.get()) || column < 0 ||
      column >= PQnfields(result_.get())) {
    throw PermanentError(fmt::format("database result has no cell ({}, {})", row, column));
  }
}

bool PgResult::IsNull(int row, int column) const {
  Check(row, column);
  return PQgetisnull(result_.get(), row, column) != 0;
}

std::string_view PgResult::Text(int row, int column) const {
  Check(row, column);
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

std::int64_t PgResult::Int64(int row, int column) const {
  auto value = ParseInt64(Text(row, column));
  if (!value) {
    throw PermanentError(fmt::format("database returned a non-integer \"{}\"", Text(row, column)));
  }
  return *value;
}

std::int64_t PgResult::AffectedRows() const {
  auto value = ParseInt64(PQcmdTuples(result_.get()));
  return value.value_or(0);
}

PgConnection::PgConnection(const std::string& url) : conn_(Connect(url)) {
  if (conn_ == nullptr) {
    throw TransientError("cannot allocate a database connection");
  }
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    std::string message = ConnectionError(conn_.get());
    // Bad credentials or an unknown database will not fix themselves, but at start-up the
    // server may still be coming up; callers decide how long to retry.
    throw TransientError(fmt::format("cannot connect to the database: {}", message));
  }
  // Notices ("relation ... already exists, skipping") are not for the service's log.
  PgResultPtr result(
      PQexec(conn_.get(), "SET application_name = 'invsync'; SET client_min_messages = warning"));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    Fail(result.get(), "SET application_name");
  }
}

bool PgConnection::broken() const { return PQstatus(conn_.get()) != CONNECTION_OK; }

bool PgConnection::in_transaction() const {
  const auto status = PQtransactionStatus(conn_.get());
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

void PgConnection::Fail(const PGresult* result, std::string_view sql) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
  if (message.empty()) {
    message = PQerrorMessage(conn_.get());
  }
  message = OneLine(message);
  auto text = fmt::format("database error in \"{}\": {}", Clip(sql), message);
  if (state == nullptr || broken() || IsTransientState(state)) {
    throw TransientError(text);
  }
  if (std::string_view(state) == "23505") {
    throw UniqueViolation(text);
  }
  // Data exceptions (22) and integrity constraint violations (23): the values are wrong.
  if (std::string_view(state).starts_with("22") || std::string_view(state).starts_with("23")) {
    throw RejectedDataError(fmt::format("{} (SQLSTATE {})", text, state));
  }
  throw PermanentError(fmt::format("{} (SQLSTATE {})", text, state));
}

PgResult PgConnection::Exec(std::string_view sql,
                            const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& param : params) {
    values.push_back(param ? param->c_str() : nullptr);
  }
  std::string statement(sql);
  PgResultPtr result(PQexecParams(conn_.get(), statement.c_str(), static_cast<int>(params.size()),
                                  nullptr, values.data(), nullptr, nullptr, 0));
  auto status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Fail(result.get(), sql);
  }
  return PgResult(std::move(result));
}

void PgConnection::CopyIn(std::string_view sql, std::string_view data) {
  std::string statement(sql);
  PgResultPtr start(PQexec(conn_.get(), statement.c_str()));
  if (start == nullptr || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    Fail(start.get(), sql);
  }
  const bool sent = PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) == 1;
  const bool ended = sent && PQputCopyEnd(conn_.get(), nullptr) == 1;
  PgResultPtr result(PQgetResult(conn_.get()));
  // Drain any further results so the connection is ready for the next statement.
  while (PgResultPtr extra{PQgetResult(conn_.get())}) {
  }
  if (!ended || result == nullptr || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    Fail(result.get(), sql);
  }
}

void PgConnection::ExecScript(std::string_view sql) {
  std::string statement(sql);
  PgResultPtr result(PQexec(conn_.get(), statement.c_str()));
  auto status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Fail(result.get(), sql);
  }
}

bool PgConnection::WaitForNotification(std::chrono::milliseconds timeout) {
  auto drain = [this] {
    bool any = false;
    while (PGnotify* notify = PQnotifies(conn_.get())) {
      PQfreemem(notify);
      any = true;
    }
    return any;
  };
  if (drain()) {
    return true;
  }
  pollfd fd{.fd = PQsocket(conn_.get()), .events = POLLIN, .revents = 0};
  if (fd.fd < 0) {
    throw TransientError("the database connection is closed");
  }
  const int ready = poll(&fd, 1, static_cast<int>(timeout.count()));
  if (ready < 0) {
    return false;  // interrupted by a signal: the caller's loop looks again
  }
  if (ready > 0 && PQconsumeInput(conn_.get()) == 0) {
    throw TransientError(
        fmt::format("lost the database connection: {}", ConnectionError(conn_.get())));
  }
  return drain();
}

std::string ArrayLiteral(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) {
      out += ',';
    }
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace invsync::db::detail
