#include "db/sqlite_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <thread>

#include "db/detail/rows.hpp"
#include "db/postgres_store.hpp"
#include "invsync_sqlite_sql.hpp"

namespace invsync::db {

namespace {

using detail::SqliteConnection;
using detail::SqliteStatement;

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Versioned like PostgreSQL's; append, never edit a released one.
const std::array kMigrations = {
    Migration{1, "init", sqlite_sql::k001Init},
    Migration{2, "database_id", sqlite_sql::k002DatabaseId},
    Migration{3, "integer_quantity", sqlite_sql::k003IntegerQuantity},
};

std::chrono::milliseconds AgeOf(double julian_day, double now_julian_day) {
  constexpr double kMillisPerDay = 86'400'000.0;
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(std::max(0.0, (now_julian_day - julian_day) * kMillisPerDay)));
}

// Leadership is an exclusive lock on a file beside the database: released when the process
// ends, however it ends. New changes show as a new `PRAGMA data_version`, which SQLite bumps when
// another connection commits; polling it is one cheap call.
class SqliteChangeFeed final : public ChangeFeed {
 public:
  SqliteChangeFeed(const std::string& path, std::chrono::milliseconds busy_timeout)
      : connection_(path, busy_timeout), lock_path_(path + ".syncer-lock") {}
  ~SqliteChangeFeed() override {
    if (lock_fd_ >= 0) {
      close(lock_fd_);
    }
  }
  SqliteChangeFeed(const SqliteChangeFeed&) = delete;
  SqliteChangeFeed& operator=(const SqliteChangeFeed&) = delete;

  bool TryLead() override {
    if (lock_fd_ < 0) {
      lock_fd_ = open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (lock_fd_ < 0) {
        throw TransientError(fmt::format("cannot open the syncer lock file {}", lock_path_));
      }
    }
    if (!leading_) {
      leading_ = flock(lock_fd_, LOCK_EX | LOCK_NB) == 0;
    }
    return leading_;
  }

  bool Wait(std::chrono::milliseconds timeout) override {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      const auto version = connection_.QueryInt("PRAGMA data_version");
      if (version != last_version_) {
        last_version_ = version;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  SqliteConnection connection_;
  std::string lock_path_;
  int lock_fd_ = -1;
  bool leading_ = false;
  std::int64_t last_version_ = -1;
};

}  // namespace

SqliteStore::SqliteStore(std::string path, std::size_t pool_size,
                         std::chrono::milliseconds busy_timeout)
    : path_(std::move(path)),
      busy_timeout_(busy_timeout),
      pool_([this] { return std::make_unique<SqliteConnection>(path_, busy_timeout_); }, pool_size,
            std::max<std::chrono::milliseconds>(busy_timeout, std::chrono::seconds(10)),
            "database") {}

SqliteStore::~SqliteStore() = default;

void SqliteStore::Migrate() {
  auto conn = pool_.Acquire();
  detail::InWriteTransaction(*conn, [&] {
    conn->Exec(
        "CREATE TABLE IF NOT EXISTS invsync_migrations (version INTEGER PRIMARY KEY, name TEXT "
        "NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
    for (const auto& migration : kMigrations) {
      SqliteStatement done(*conn, "SELECT 1 FROM invsync_migrations WHERE version = ?");
      if (done.Bind(1, std::int64_t{migration.version}).Step()) {
        continue;
      }
      conn->Exec(migration.sql);
      SqliteStatement record(*conn, "INSERT INTO invsync_migrations (version, name) VALUES (?, ?)");
      record.Bind(1, std::int64_t{migration.version}).Bind(2, migration.name).Run();
    }
  });
}

StockSnapshot SqliteStore::LoadStock(std::string_view sku) {
  const std::string one(sku);
  return LoadStocks(std::span(&one, 1)).at(one);
}

std::map<std::string, StockSnapshot> SqliteStore::LoadStocks(std::span<const std::string> skus) {
  std::map<std::string, StockSnapshot> found;
  if (skus.empty()) {
    return found;
  }
  auto conn = pool_.Acquire();
  // One statement per SKU, each its own snapshot of the row and of the SKU's change position.
  SqliteStatement query(*conn,
                        "SELECT (SELECT quantity FROM inventory WHERE sku = ?1), "
                        "(SELECT coalesce(max(id), 0) FROM invsync_outbox WHERE sku = ?1)");
  for (const auto& sku : skus) {
    query.Bind(1, sku);
    query.Step();
    found[sku] = {.quantity = query.IsNull(0) ? std::nullopt : std::optional(query.Int64(0)),
                  .change_seq = query.Int64(1)};
    query.Reset();
  }
  return found;
}

ApplyOutcome SqliteStore::ApplyEvents(std::span<const StockEvent> events) {
  ApplyOutcome outcome;
  auto conn = pool_.Acquire();
  detail::InWriteTransaction(*conn, [&] {
    // Writers take turns (BEGIN IMMEDIATE), so every outbox row above this one is ours.
    const std::int64_t before = conn->QueryInt("SELECT coalesce(max(id), 0) FROM invsync_outbox");
    SqliteStatement insert(*conn,
                           "INSERT OR IGNORE INTO invsync_ledger (event_id, sku, delta, kind, ref, "
                           "stream_id) VALUES (?, ?, ?, ?, ?, ?)");
    SqliteStatement first(*conn,
                          "SELECT stream_id FROM invsync_ledger WHERE event_id = ? AND sku = ?");
    std::map<std::string, std::int64_t> totals;
    for (const auto& event : events) {
      const std::string event_id = event.EventId();
      for (const auto& line : event.deltas) {
        insert.Bind(1, event_id)
            .Bind(2, line.sku)
            .Bind(3, line.delta)
            .Bind(4, event.kind)
            .Bind(5, event.ref)
            .Bind(6, event.stream_id)
            .Run();
        if (conn->Changes() == 1) {
          outcome.applied_rows += 1;
          AddToSkuTotal(totals[line.sku], line.delta, event);
          continue;
        }
        outcome.duplicate_rows += 1;
        first.Bind(1, event_id).Bind(2, line.sku);
        if (first.Step() && first.Text(0) != event.stream_id) {
          outcome.late_replays.push_back({event.stream_id, line.sku, line.delta});
        }
        first.Reset();
      }
    }
    SqliteStatement add(*conn,
                        "INSERT INTO inventory (sku, quantity) VALUES (?, ?) ON CONFLICT (sku) DO "
                        "UPDATE SET quantity = quantity + excluded.quantity, updated_at = "
                        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')");
    for (const auto& [sku, total] : totals) {
      add.Bind(1, sku).Bind(2, total).Run();
    }
    // These changes came from Redis: no echo (see sql/sqlite/001_init.sql).
    SqliteStatement echo(*conn, "DELETE FROM invsync_outbox WHERE id > ?");
    echo.Bind(1, before).Run();
    if (const auto high_water = HighestStreamPosition(events); !high_water.empty()) {
      SqliteStatement raise(*conn,
                            "INSERT INTO invsync_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                            "DO UPDATE SET value = max(value, excluded.value)");
      raise.Bind(1, kStreamHighWaterKey).Bind(2, high_water).Run();
    }
  });
  return outcome;
}

std::optional<std::string> SqliteStore::ReadStreamHighWater() {
  auto conn = pool_.Acquire();
  SqliteStatement query(*conn, "SELECT value FROM invsync_meta WHERE key = ?");
  query.Bind(1, kStreamHighWaterKey);
  if (!query.Step()) {
    return std::nullopt;
  }
  return query.Text(0);
}

ChangeBatch SqliteStore::ReadChanges(const OutboxPosition& after, std::size_t limit) {
  auto conn = pool_.Acquire();
  SqliteStatement query(
      *conn, "SELECT id, kind, delta, sku FROM invsync_outbox WHERE id > ? ORDER BY id LIMIT ?");
  query.Bind(1, after.id).Bind(2, static_cast<std::int64_t>(limit));
  ChangeBatch batch;
  while (query.Step()) {
    batch.changes.push_back(detail::SqliteChange(query, 0, query.Text(3)));
  }
  return batch;
}

ChangeBacklog SqliteStore::ReadChangeBacklog(const OutboxPosition& after) {
  auto conn = pool_.Acquire();
  SqliteStatement query(*conn,
                        "SELECT count(*), min(changed_at), julianday('now') FROM invsync_outbox "
                        "WHERE id > ?");
  query.Bind(1, after.id).Step();
  ChangeBacklog backlog{.rows = query.Int64(0)};
  if (!query.IsNull(1)) {
    backlog.oldest_age = AgeOf(query.Double(1), query.Double(2));
  }
  return backlog;
}

std::int64_t SqliteStore::PruneChanges(const OutboxPosition& upto,
                                       std::chrono::milliseconds retention) {
  auto conn = pool_.Acquire();
  // Each SKU's newest row stays (postgres_store.cpp, kPruneChangesSql, says why).
  SqliteStatement prune(*conn,
                        "DELETE FROM invsync_outbox AS o WHERE id <= ? AND changed_at < "
                        "julianday('now') - ? / 86400000.0 AND EXISTS (SELECT 1 FROM "
                        "invsync_outbox n WHERE n.sku = o.sku AND n.id > o.id)");
  prune.Bind(1, upto.id).Bind(2, static_cast<std::int64_t>(retention.count())).Run();
  return conn->Changes();
}

OutboxOrigin SqliteStore::ReadOutboxOrigin(const OutboxPosition& cursor) {
  auto conn = pool_.Acquire();
  // AUTOINCREMENT never gives out an id twice, and sqlite_sequence keeps the highest it gave out
  // (rows deleted or not): a cursor above it comes from another file, or from this one before it
  // was restored from an older copy. One statement: one snapshot.
  SqliteStatement query(*conn,
                        "SELECT (SELECT value FROM invsync_meta WHERE key = ?), coalesce((SELECT "
                        "seq FROM sqlite_sequence WHERE name = 'invsync_outbox'), 0)");
  query.Bind(1, kDatabaseIdKey);
  query.Step();
  const std::int64_t highest = query.Int64(1);
  return {.database_id = query.IsNull(0) ? std::string() : query.Text(0),
          .holds_cursor = cursor.xid == 0 && cursor.id <= highest,
          .now = {0, highest}};
}

std::int64_t SqliteStore::CountSkus() {
  auto conn = pool_.Acquire();
  return conn->QueryInt("SELECT count(*) FROM inventory");
}

std::vector<SkuStock> SqliteStore::LoadStockPage(std::string_view after_sku, std::size_t limit) {
  auto conn = pool_.Acquire();
  // One statement: one snapshot of the rows and of their change positions.
  SqliteStatement query(*conn,
                        "SELECT i.sku, i.quantity, (SELECT coalesce(max(o.id), 0) FROM "
                        "invsync_outbox o WHERE o.sku = i.sku) FROM inventory i WHERE i.sku > ? "
                        "ORDER BY i.sku LIMIT ?");
  query.Bind(1, after_sku).Bind(2, static_cast<std::int64_t>(limit));
  std::vector<SkuStock> page;
  while (query.Step()) {
    page.push_back({.sku = query.Text(0),
                    .snapshot = {.quantity = query.Int64(1), .change_seq = query.Int64(2)}});
  }
  return page;
}

std::vector<std::string> SqliteStore::ListSkus(std::string_view after_sku, std::size_t limit) {
  auto conn = pool_.Acquire();
  SqliteStatement query(*conn, "SELECT sku FROM inventory WHERE sku > ? ORDER BY sku LIMIT ?");
  query.Bind(1, after_sku).Bind(2, static_cast<std::int64_t>(limit));
  std::vector<std::string> skus;
  while (query.Step()) {
    skus.push_back(query.Text(0));
  }
  return skus;
}

std::map<std::string, StockAudit> SqliteStore::AuditStock(std::span<const std::string> skus,
                                                          const OutboxPosition& after) {
  std::map<std::string, StockAudit> audits;
  if (skus.empty()) {
    return audits;
  }
  auto conn = pool_.Acquire();
  // One read transaction: the quantities and the outbox rows come from one snapshot.
  detail::InReadTransaction(*conn, [&] {
    SqliteStatement quantity(*conn, "SELECT quantity FROM inventory WHERE sku = ?");
    SqliteStatement pending(*conn,
                            "SELECT id, kind, delta FROM invsync_outbox WHERE sku = ? AND id > ? "
                            "ORDER BY id");
    for (const auto& sku : skus) {
      auto& audit = audits[sku];
      if (quantity.Bind(1, sku).Step()) {
        audit.quantity = quantity.Int64(0);
      }
      quantity.Reset();
      pending.Bind(1, sku).Bind(2, after.id);
      while (pending.Step()) {
        audit.pending.push_back(detail::SqliteChange(pending, 0, sku));
      }
      pending.Reset();
    }
  });
  return audits;
}

std::unique_ptr<ChangeFeed> SqliteStore::OpenChangeFeed() {
  return std::make_unique<SqliteChangeFeed>(path_, busy_timeout_);
}

bool SqliteStore::Ping() {
  try {
    auto conn = pool_.Acquire();
    conn->QueryInt("SELECT 1");
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<Store> OpenStore(const std::string& url, std::size_t pool_size) {
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return std::make_unique<PostgresStore>(url, pool_size);
  }
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.starts_with(kSqlite) && url.size() > kSqlite.size()) {
    return std::make_unique<SqliteStore>(url.substr(kSqlite.size()), pool_size);
  }
  throw ConfigError(fmt::format(
      "database.url: expected postgresql://... or sqlite:///path/to/file.db, got \"{}\"", url));
}

}  // namespace invsync::db
