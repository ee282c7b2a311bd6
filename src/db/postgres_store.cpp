#include "db/postgres_store.hpp"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "db/detail/pg.hpp"
#include "db/detail/rows.hpp"
#include "invsync_sql.hpp"

namespace invsync::db {

namespace {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Versioned migrations, applied in order, each once. Append; never edit a released one.
const std::array kMigrations = {
    Migration{1, "init", sql::k001Init},
    Migration{2, "inventory_fillfactor", sql::k002InventoryFillfactor},
    Migration{3, "outbox", sql::k003Outbox},
    Migration{4, "truncate_capture", sql::k004TruncateCapture},
    Migration{5, "capture_condition", sql::k005CaptureCondition},
    Migration{6, "database_id", sql::k006DatabaseId},
};

// Any fixed number shared by all invsync processes; serialises concurrent migrators.
constexpr std::string_view kMigrationLockKey = "7242021337";

// How long a caller waits for a pooled connection when all are in use.
constexpr std::chrono::seconds kPoolWait{10};

// Any fixed number shared by all invsync processes; held by the one active syncer.
constexpr std::string_view kSyncerLockKey = "7242021338";

// Stock and change position of SKUs in one statement, hence one snapshot (sql/003_outbox.sql
// explains why the highest id of a SKU tells which of its changes the snapshot includes).
constexpr std::string_view kLoadStocksSql = R"sql(
SELECT s.sku, i.quantity,
       coalesce((SELECT max(o.id) FROM invsync_outbox o WHERE o.sku = s.sku), 0)
FROM unnest($1::text[]) AS s(sku) LEFT JOIN inventory i ON i.sku = s.sku
)sql";

// A page of stock in SKU order (keyset pagination on the primary key), one snapshot.
constexpr std::string_view kLoadStockPageSql = R"sql(
SELECT i.sku, i.quantity,
       coalesce((SELECT max(o.id) FROM invsync_outbox o WHERE o.sku = i.sku), 0)
FROM inventory i WHERE i.sku > $1 ORDER BY i.sku LIMIT $2
)sql";

constexpr std::string_view kListSkusSql =
    "SELECT sku FROM inventory WHERE sku > $1 ORDER BY sku LIMIT $2";

// Rows in (xid, id) order; `ready` is false from the first row whose transaction is not older
// than every transaction still running (sql/003_outbox.sql).
constexpr std::string_view kReadChangesSql = R"sql(
SELECT o.xid::text, o.id, o.kind, o.delta, o.sku,
       o.xid < pg_snapshot_xmin(pg_current_snapshot())
FROM invsync_outbox o
WHERE (o.xid, o.id) > ($1::text::xid8, $2::bigint)
ORDER BY o.xid, o.id  -- the table's xid8, not the text column of the same name
LIMIT $3
)sql";

constexpr std::string_view kChangeBacklogSql = R"sql(
SELECT count(*),
       (extract(epoch FROM clock_timestamp() - min(changed_at)) * 1000)::bigint,
       (SELECT (extract(epoch FROM clock_timestamp() - min(xact_start)) * 1000)::bigint
          FROM pg_stat_activity WHERE backend_xid IS NOT NULL)
FROM invsync_outbox WHERE (xid, id) > ($1::text::xid8, $2::bigint)
)sql";

// Each SKU's newest row stays: a fill's read learns from it which of the SKU's changes it
// includes (kLoadStocksSql), and that must never go back to an older row while Redis may still
// remember a later change for fills (sql/003_outbox.sql).
constexpr std::string_view kPruneChangesSql = R"sql(
DELETE FROM invsync_outbox o
WHERE (o.xid, o.id) <= ($1::text::xid8, $2::bigint)
  AND o.changed_at < clock_timestamp() - $3::bigint * interval '1 millisecond'
  AND EXISTS (SELECT 1 FROM invsync_outbox n WHERE n.sku = o.sku AND n.id > o.id)
)sql";

// A cursor's transaction id below the snapshot's xmax was given out by this database; at or above
// it, the cursor comes from another history (a restore to an earlier point, another cluster).
// Every transaction older than the oldest still running has ended, so a cursor after all of them
// (the largest row id) skips none still to commit.
constexpr std::string_view kOutboxOriginSql = R"sql(
SELECT (SELECT value FROM invsync_meta WHERE key = $1),
       $2::text::xid8 < pg_snapshot_xmax(pg_current_snapshot()),
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1
)sql";

// Each SKU's quantity and its outbox rows after a position, in one snapshot. Rows are few: only
// those the syncer has not passed.
constexpr std::string_view kAuditStockSql = R"sql(
SELECT s.sku, i.quantity, o.xid::text, o.id, o.kind, o.delta
FROM unnest($1::text[]) AS s(sku)
LEFT JOIN inventory i ON i.sku = s.sku
LEFT JOIN invsync_outbox o ON o.sku = s.sku AND (o.xid, o.id) > ($2::text::xid8, $3::bigint)
ORDER BY s.sku, o.xid, o.id
)sql";

// Applies a batch of events in one statement: new ledger rows, then the quantity change of
// exactly those rows, aggregated per SKU and taken in SKU order so that concurrent persisters
// lock inventory rows in the same order and cannot deadlock each other.
constexpr std::string_view kApplyEventsSql = R"sql(
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
    AS t(event_id, sku, delta, kind, ref, stream_id)
), inserted AS (
  INSERT INTO invsync_ledger (event_id, sku, delta, kind, ref, stream_id)
  SELECT event_id, sku, delta, kind, ref, stream_id FROM input
  ON CONFLICT (event_id, sku) DO NOTHING
  RETURNING sku, delta
), totals AS (
  SELECT sku, sum(delta)::bigint AS delta FROM inserted GROUP BY sku
), applied AS (
  INSERT INTO inventory AS i (sku, quantity)
  SELECT sku, delta FROM totals ORDER BY sku
  ON CONFLICT (sku) DO UPDATE SET quantity = i.quantity + EXCLUDED.quantity, updated_at = now()
  RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM input), (SELECT count(*) FROM applied)
)sql";

// The common case, no event seen before: the ledger rows by COPY (cheaper than an INSERT, let
// alone ON CONFLICT, which inserts speculatively) followed by the stock change of each SKU, summed
// by the caller. A replayed event makes the insert fail with a unique violation, and the batch is
// redone with kApplyEventsSql.
constexpr std::string_view kCopyLedgerSql =
    "COPY invsync_ledger (event_id, sku, delta, kind, ref, stream_id) FROM STDIN";

// Rows in SKU order, so concurrent persisters lock inventory rows in the same order.
constexpr std::string_view kAddStockSql = R"sql(
INSERT INTO inventory AS i (sku, quantity)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (sku) DO UPDATE SET quantity = i.quantity + EXCLUDED.quantity, updated_at = now()
)sql";

// Last in each batch's transaction, so the one row is locked only until the commit.
constexpr std::string_view kRaiseHighWaterSql = R"sql(
INSERT INTO invsync_meta AS m (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = greatest(m.value COLLATE "C", EXCLUDED.value COLLATE "C")
)sql";

constexpr std::string_view kReadHighWaterSql = "SELECT value FROM invsync_meta WHERE key = $1";

// Duplicates whose ledger row came from another stream entry (see LateReplay). Run in the same
// transaction after the insert, so this batch's own rows match their stream ids and drop out.
constexpr std::string_view kLateReplaysSql = R"sql(
SELECT i.stream_id, i.sku, i.delta
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS i(event_id, sku, delta, stream_id)
JOIN invsync_ledger l ON l.event_id = i.event_id AND l.sku = i.sku
WHERE l.stream_id <> i.stream_id
)sql";

// Runs `begin` (statements starting with BEGIN), then `work`, then COMMIT; rolls back on any
// failure, the beginning's included, and rethrows that failure.
template <typename Work>
void InTransaction(detail::PgConnection& conn, std::string_view begin, Work&& work) {
  try {
    conn.ExecScript(begin);
    work();
    conn.ExecScript("COMMIT");
  } catch (...) {
    if (!conn.broken()) {
      try {
        conn.ExecScript("ROLLBACK");
      } catch (const Error&) {
        // The original failure is the one worth reporting. A connection left inside the
        // transaction is not lent again (see ConnectionPool).
      }
    }
    throw;
  }
}

}  // namespace

PostgresStore::PostgresStore(std::string url, std::size_t pool_size)
    : url_(std::move(url)),
      pool_([this] { return std::make_unique<detail::PgConnection>(url_); }, pool_size, kPoolWait,
            "database") {}

PostgresStore::~PostgresStore() = default;

PostgresStore::Lease PostgresStore::Acquire() { return pool_.Acquire(); }

void PostgresStore::Migrate() {
  auto conn = Acquire();
  const auto begin = fmt::format(
      "BEGIN; SELECT pg_advisory_xact_lock({}); "
      "CREATE TABLE IF NOT EXISTS invsync_migrations (version int PRIMARY KEY, name text NOT "
      "NULL, applied_at timestamptz NOT NULL DEFAULT now());",
      kMigrationLockKey);
  InTransaction(*conn, begin, [&] {
    for (const auto& migration : kMigrations) {
      auto done = conn->Exec("SELECT 1 FROM invsync_migrations WHERE version = $1",
                             {std::to_string(migration.version)});
      if (done.rows() > 0) {
        continue;
      }
      conn->ExecScript(migration.sql);
      conn->Exec("INSERT INTO invsync_migrations (version, name) VALUES ($1, $2)",
                 {std::to_string(migration.version), std::string(migration.name)});
    }
  });
}

StockSnapshot PostgresStore::LoadStock(std::string_view sku) {
  const std::string one(sku);
  return LoadStocks(std::span(&one, 1)).at(one);
}

std::map<std::string, StockSnapshot> PostgresStore::LoadStocks(std::span<const std::string> skus) {
  if (skus.empty()) {
    return {};
  }
  auto conn = Acquire();
  auto result = conn->Exec(kLoadStocksSql, {detail::ArrayLiteral({skus.begin(), skus.end()})});
  return detail::PgSnapshots(result);
}

std::vector<SkuStock> PostgresStore::LoadStockPage(std::string_view after_sku, std::size_t limit) {
  auto conn = Acquire();
  auto result = conn->Exec(kLoadStockPageSql, {std::string(after_sku), std::to_string(limit)});
  std::vector<SkuStock> page;
  page.reserve(static_cast<std::size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    page.push_back(
        {.sku = std::string(result.Text(row, 0)),
         .snapshot = {.quantity = result.Int64(row, 1), .change_seq = result.Int64(row, 2)}});
  }
  return page;
}

std::vector<std::string> PostgresStore::ListSkus(std::string_view after_sku, std::size_t limit) {
  auto conn = Acquire();
  auto result = conn->Exec(kListSkusSql, {std::string(after_sku), std::to_string(limit)});
  std::vector<std::string> skus;
  skus.reserve(static_cast<std::size_t>(result.rows()));
  for (int row = 0; row < result.rows(); ++row) {
    skus.emplace_back(result.Text(row, 0));
  }
  return skus;
}

std::int64_t PostgresStore::CountSkus() {
  auto conn = Acquire();
  return conn->Exec("SELECT count(*) FROM inventory").Int64(0, 0);
}

namespace {

// The batch as the parallel arrays the statements take, plus each SKU's total (sorted by SKU).
struct BatchArrays {
  std::vector<std::string> event_ids, skus, deltas, kinds, refs, stream_ids;
  std::vector<std::string> total_skus, totals;

  explicit BatchArrays(std::span<const StockEvent> events) {
    std::map<std::string, std::int64_t> per_sku;
    for (const auto& event : events) {
      std::string event_id = event.EventId();
      for (const auto& line : event.deltas) {
        event_ids.push_back(event_id);
        skus.push_back(line.sku);
        deltas.push_back(std::to_string(line.delta));
        kinds.push_back(event.kind);
        refs.push_back(event.ref);
        stream_ids.push_back(event.stream_id);
        AddToSkuTotal(per_sku[line.sku], line.delta, event);
      }
    }
    for (const auto& [sku, total] : per_sku) {
      total_skus.push_back(sku);
      totals.push_back(std::to_string(total));
    }
  }
  /// The ledger rows in COPY's text format. Identifiers are visible ASCII, so of COPY's special
  /// characters only the backslash can occur.
  [[nodiscard]] std::string CopyText() const {
    std::string text;
    text.reserve(event_ids.size() * 64);
    auto field = [&text](const std::string& value, char end) {
      for (char c : value) {
        if (c == '\\') {
          text += '\\';
        }
        text += c;
      }
      text += end;
    };
    for (std::size_t i = 0; i < event_ids.size(); ++i) {
      field(event_ids[i], '\t');
      field(skus[i], '\t');
      field(deltas[i], '\t');
      field(kinds[i], '\t');
      field(refs[i], '\t');
      field(stream_ids[i], '\n');
    }
    return text;
  }
  [[nodiscard]] std::vector<std::optional<std::string>> Ledger() const {
    return {detail::ArrayLiteral(event_ids), detail::ArrayLiteral(skus),
            detail::ArrayLiteral(deltas),    detail::ArrayLiteral(kinds),
            detail::ArrayLiteral(refs),      detail::ArrayLiteral(stream_ids)};
  }
};

// Runs `work` in a transaction whose writes are marked as coming from Redis, so change capture
// skips them; rolls back on any failure.
template <typename Work>
void InRedisTransaction(detail::PgConnection& conn, Work&& work) {
  InTransaction(conn, "BEGIN; SELECT set_config('invsync.origin', 'redis', true)",
                std::forward<Work>(work));
}

}  // namespace

ApplyOutcome PostgresStore::ApplyEvents(std::span<const StockEvent> events) {
  const BatchArrays batch(events);
  ApplyOutcome outcome;
  if (batch.event_ids.empty()) {
    return outcome;
  }
  const std::string high_water = HighestStreamPosition(events);
  auto conn = Acquire();
  auto raise_high_water = [&] {
    if (!high_water.empty()) {
      conn->Exec(kRaiseHighWaterSql, {std::string(kStreamHighWaterKey), high_water});
    }
  };
  try {
    InRedisTransaction(*conn, [&] {
      conn->CopyIn(kCopyLedgerSql, batch.CopyText());
      conn->Exec(kAddStockSql,
                 {detail::ArrayLiteral(batch.total_skus), detail::ArrayLiteral(batch.totals)});
      raise_high_water();
    });
    outcome.applied_rows = batch.event_ids.size();
    return outcome;
  } catch (const detail::UniqueViolation&) {
    // Some events were applied before (a re-delivery after a crash): take the careful path.
  }
  const auto ledger = batch.Ledger();
  InRedisTransaction(*conn, [&] {
    auto result = conn->Exec(kApplyEventsSql, ledger);
    outcome.applied_rows = static_cast<std::size_t>(result.Int64(0, 0));
    outcome.duplicate_rows = static_cast<std::size_t>(result.Int64(0, 1)) - outcome.applied_rows;
    if (outcome.duplicate_rows > 0) {
      auto late = conn->Exec(kLateReplaysSql, {ledger[0], ledger[1], ledger[2], ledger[5]});
      for (int row = 0; row < late.rows(); ++row) {
        outcome.late_replays.push_back(
            {std::string(late.Text(row, 0)), std::string(late.Text(row, 1)), late.Int64(row, 2)});
      }
    }
    raise_high_water();
  });
  return outcome;
}

std::optional<std::string> PostgresStore::ReadStreamHighWater() {
  auto conn = Acquire();
  auto result = conn->Exec(kReadHighWaterSql, {std::string(kStreamHighWaterKey)});
  if (result.rows() == 0) {
    return std::nullopt;
  }
  return std::string(result.Text(0, 0));
}

ChangeBatch PostgresStore::ReadChanges(const OutboxPosition& after, std::size_t limit) {
  auto conn = Acquire();
  auto result = conn->Exec(kReadChangesSql, {std::to_string(after.xid), std::to_string(after.id),
                                             std::to_string(limit)});
  return detail::PgChangeBatch(result);
}

ChangeBacklog PostgresStore::ReadChangeBacklog(const OutboxPosition& after) {
  auto conn = Acquire();
  auto result =
      conn->Exec(kChangeBacklogSql, {std::to_string(after.xid), std::to_string(after.id)});
  auto age = [&](int column) -> std::optional<std::chrono::milliseconds> {
    if (result.IsNull(0, column)) {
      return std::nullopt;
    }
    return std::chrono::milliseconds(result.Int64(0, column));
  };
  return {.rows = result.Int64(0, 0), .oldest_age = age(1), .oldest_transaction_age = age(2)};
}

std::int64_t PostgresStore::PruneChanges(const OutboxPosition& upto,
                                         std::chrono::milliseconds retention) {
  auto conn = Acquire();
  return conn
      ->Exec(kPruneChangesSql,
             {std::to_string(upto.xid), std::to_string(upto.id), std::to_string(retention.count())})
      .AffectedRows();
}

OutboxOrigin PostgresStore::ReadOutboxOrigin(const OutboxPosition& cursor) {
  auto conn = Acquire();
  auto result =
      conn->Exec(kOutboxOriginSql, {std::string(kDatabaseIdKey), std::to_string(cursor.xid)});
  return {.database_id = result.IsNull(0, 0) ? std::string() : std::string(result.Text(0, 0)),
          .holds_cursor = result.Text(0, 1) == "t",
          .now = {result.Int64(0, 2), std::numeric_limits<std::int64_t>::max()}};
}

std::map<std::string, StockAudit> PostgresStore::AuditStock(std::span<const std::string> skus,
                                                            const OutboxPosition& after) {
  if (skus.empty()) {
    return {};
  }
  auto conn = Acquire();
  auto result = conn->Exec(kAuditStockSql, {detail::ArrayLiteral({skus.begin(), skus.end()}),
                                            std::to_string(after.xid), std::to_string(after.id)});
  return detail::PgAudits(result);
}

namespace {

// Leadership is a session-level advisory lock on the feed's own connection: it is released when
// the connection ends, however the process dies, and another syncer takes it on its next try.
class PostgresChangeFeed final : public ChangeFeed {
 public:
  explicit PostgresChangeFeed(const std::string& url) : conn_(url) {}

  bool TryLead() override {
    if (!leading_) {
      auto result = conn_.Exec(fmt::format("SELECT pg_try_advisory_lock({})", kSyncerLockKey));
      leading_ = result.Text(0, 0) == "t";
      if (leading_) {
        // Only the leader listens: a listener that does not read holds back the server's
        // notification queue.
        conn_.ExecScript("LISTEN invsync_outbox");
      }
    } else if (conn_.broken()) {
      throw TransientError("lost the database connection that held the syncer lock");
    }
    return leading_;
  }

  bool Wait(std::chrono::milliseconds timeout) override {
    return conn_.WaitForNotification(timeout);
  }

 private:
  detail::PgConnection conn_;
  bool leading_ = false;
};

}  // namespace

std::unique_ptr<ChangeFeed> PostgresStore::OpenChangeFeed() {
  return std::make_unique<PostgresChangeFeed>(url_);
}

bool PostgresStore::Ping() {
  try {
    auto conn = Acquire();
    conn->Exec("SELECT 1");
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace invsync::db
