#pragma once

#include <map>
#include <string>

#include "db/detail/pg.hpp"
#include "db/detail/sqlite.hpp"
#include "db/store.hpp"

namespace invsync::db::detail {

// Rows as the stores' queries return them, turned into values. A cell that is not what the query
// promises (a non-integer, a missing column) throws `PermanentError`; an outbox row whose kind or
// delta invsync does not write becomes a `ChangeKind::kReload` change (see `ChangeFromColumns`).

/// An outbox row from PostgreSQL columns xid, id, kind, delta starting at `first` (the SKU is
/// given apart: queries place it differently).
[[nodiscard]] Change PgChange(const PgResult& result, int row, int first, std::string sku);
/// `ReadChanges`' result: xid, id, kind, delta, sku, visible ('t' or 'f'); rows from the first
/// invisible one on are held back.
[[nodiscard]] ChangeBatch PgChangeBatch(const PgResult& result);
/// `LoadStocks`' result: sku, quantity (NULL: no such SKU), change_seq.
[[nodiscard]] std::map<std::string, StockSnapshot> PgSnapshots(const PgResult& result);
/// `AuditStock`' result: sku, quantity (NULL: no such SKU), then an outbox row's xid, id, kind,
/// delta (NULL id: none).
[[nodiscard]] std::map<std::string, StockAudit> PgAudits(const PgResult& result);

/// An outbox row from SQLite columns id, kind, delta starting at `first`.
[[nodiscard]] Change SqliteChange(const SqliteStatement& row, int first, std::string sku);

}  // namespace invsync::db::detail
