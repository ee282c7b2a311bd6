// Database rows as libpq and SQLite hand them over → the code that turns them into values:
// outbox changes, change batches, stock snapshots and audits (`db::detail` row decoders), and the
// syncer's stored cursor text (`syncer::ParseCursor`). Cells are arbitrary text or NULL (libpq
// gives every column as text) or, for SQLite, text, integers or NULL. A cell that is not what the
// query promises must be refused with `PermanentError`, except an outbox row's kind or delta, which
// another program may write: such a row becomes a reload naming what is wrong. Cursors survive a
// round trip.
#include <fmt/format.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <libpq-fe.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <tuple>

#include "common/error.hpp"
#include "db/detail/pg.hpp"
#include "db/detail/rows.hpp"
#include "db/detail/sqlite.hpp"
#include "syncer/syncer.hpp"

namespace {

using namespace invsync;
using db::detail::PgResult;

void Require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

// A change the syncer can apply, or a reload that says why the row could not be read.
bool WellFormed(const db::Change& change) {
  if (change.kind == db::ChangeKind::kReload) {
    return !change.malformed.empty();
  }
  return change.malformed.empty() &&
         (change.kind == db::ChangeKind::kUpdate || change.kind == db::ChangeKind::kInsert ||
          change.kind == db::ChangeKind::kDelete);
}

// A result as libpq builds it from the wire: `columns` text columns, up to 4 rows of fuzz cells.
PgResult MakeResult(FuzzedDataProvider& input, int columns) {
  db::detail::PgResultPtr result(PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK));
  std::array<PGresAttDesc, 8> descs{};
  static char name[] = "c";
  for (int i = 0; i < columns; ++i) {
    descs[static_cast<std::size_t>(i)] = {.name = name, .format = 0, .typid = 25, .typlen = -1};
  }
  Require(PQsetResultAttrs(result.get(), columns, descs.data()) != 0);
  const int rows = input.ConsumeIntegralInRange<int>(0, 4);
  for (int row = 0; row < rows; ++row) {
    for (int column = 0; column < columns; ++column) {
      if (input.ConsumeIntegralInRange<int>(0, 7) == 0) {
        Require(PQsetvalue(result.get(), row, column, nullptr, -1) != 0);  // NULL
        continue;
      }
      std::string cell = input.ConsumeRandomLengthString(40);
      Require(PQsetvalue(result.get(), row, column, cell.data(), static_cast<int>(cell.size())) !=
              0);
    }
  }
  return PgResult(std::move(result));
}

void PgRows(FuzzedDataProvider& input, int which) {
  if (which == 0) {
    const auto batch = db::detail::PgChangeBatch(MakeResult(input, 6));
    for (const auto& change : batch.changes) {
      Require(WellFormed(change));
    }
  } else if (which == 1) {
    std::ignore = db::detail::PgSnapshots(MakeResult(input, 3));
  } else {
    for (const auto& [sku, audit] : db::detail::PgAudits(MakeResult(input, 6))) {
      for (const auto& change : audit.pending) {
        Require(WellFormed(change) && change.sku == sku);
      }
    }
  }
}

void SqliteRow(FuzzedDataProvider& input) {
  static db::detail::SqliteConnection connection(":memory:", std::chrono::milliseconds(100));
  static db::detail::SqliteStatement row(connection, "SELECT ?1, ?2, ?3, ?4");
  row.Reset();
  for (int index = 1; index <= 4; ++index) {
    switch (input.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        break;  // unbound: NULL
      case 1:
        row.Bind(index, input.ConsumeIntegral<std::int64_t>());
        break;
      default:
        row.Bind(index, input.ConsumeRandomLengthString(40));
        break;
    }
  }
  Require(row.Step());
  const auto change = db::detail::SqliteChange(row, 0, row.Text(3));
  Require(WellFormed(change));
}

void Cursor(FuzzedDataProvider& input) {
  const std::int64_t xid = input.ConsumeIntegral<std::int64_t>();
  const std::int64_t id = input.ConsumeIntegral<std::int64_t>();
  const db::OutboxPosition written{xid, id};
  Require(syncer::ParseCursor(fmt::format("{}:{}", xid, id)) == written);
  const std::string text = input.ConsumeRemainingBytesAsString();
  std::optional<db::OutboxPosition> parsed;
  try {
    parsed = syncer::ParseCursor(text);
  } catch (const PermanentError&) {
    return;
  }
  Require(syncer::ParseCursor(fmt::format("{}:{}", parsed->xid, parsed->id)) == *parsed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const int which = input.ConsumeIntegralInRange<int>(0, 4);
  try {
    if (which <= 2) {
      PgRows(input, which);
    } else if (which == 3) {
      SqliteRow(input);
    } else {
      Cursor(input);
    }
  } catch (const PermanentError&) {
    // A cell that is not what the query promises: refused, as the stores report it.
  }
  return 0;
}
