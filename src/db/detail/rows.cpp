#include "db/detail/rows.hpp"

#include <optional>
#include <utility>

namespace invsync::db::detail {

Change PgChange(const PgResult& result, int row, int first, std::string sku) {
  return ChangeFromColumns({result.Int64(row, first), result.Int64(row, first + 1)}, std::move(sku),
                           result.Text(row, first + 2), result.Text(row, first + 3));
}

ChangeBatch PgChangeBatch(const PgResult& result) {
  ChangeBatch batch;
  batch.changes.reserve(static_cast<std::size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    if (result.Text(row, 5) != "t") {
      batch.held_back = true;
      break;
    }
    batch.changes.push_back(PgChange(result, row, 0, std::string(result.Text(row, 4))));
  }
  return batch;
}

std::map<std::string, StockSnapshot> PgSnapshots(const PgResult& result) {
  std::map<std::string, StockSnapshot> found;
  for (int row = 0; row < result.rows(); ++row) {
    found[std::string(result.Text(row, 0))] = {
        .quantity = result.IsNull(row, 1) ? std::nullopt : std::optional(result.Int64(row, 1)),
        .change_seq = result.Int64(row, 2)};
  }
  return found;
}

std::map<std::string, StockAudit> PgAudits(const PgResult& result) {
  std::map<std::string, StockAudit> audits;
  for (int row = 0; row < result.rows(); ++row) {
    const std::string sku(result.Text(row, 0));
    auto& audit = audits[sku];
    if (!result.IsNull(row, 1)) {
      audit.quantity = result.Int64(row, 1);
    }
    if (!result.IsNull(row, 3)) {
      audit.pending.push_back(PgChange(result, row, 2, sku));
    }
  }
  return audits;
}

Change SqliteChange(const SqliteStatement& row, int first, std::string sku) {
  // The delta as text: a REAL or TEXT quantity written by another program shows as such and is
  // rejected by the integer parse, where reading it as an integer would truncate it silently.
  return ChangeFromColumns({0, row.Int64(first)}, std::move(sku), row.Text(first + 1),
                           row.Text(first + 2));
}

}  // namespace invsync::db::detail
