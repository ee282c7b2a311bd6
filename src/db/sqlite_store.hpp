#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/connection_pool.hpp"
#include "db/detail/sqlite.hpp"
#include "db/store.hpp"

namespace invsync::db {

/// The embedded store (libsqlite3, WAL mode, busy timeout): the same tables, ledger and change
/// capture as PostgreSQL's, for a service without a database server. Other processes may use the
/// file at the same time (a back office running `sqlite3 file.db "UPDATE inventory ..."`); their
/// changes are captured by triggers and found by polling `PRAGMA data_version`.
class SqliteStore final : public Store {
 public:
  /// `path` is the file (created if missing); nothing is opened before the first call.
  SqliteStore(std::string path, std::size_t pool_size,
              std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void Migrate() override;
  StockSnapshot LoadStock(std::string_view sku) override;
  std::map<std::string, StockSnapshot> LoadStocks(std::span<const std::string> skus) override;
  ApplyOutcome ApplyEvents(std::span<const StockEvent> events) override;
  std::optional<std::string> ReadStreamHighWater() override;
  ChangeBatch ReadChanges(const OutboxPosition& after, std::size_t limit) override;
  ChangeBacklog ReadChangeBacklog(const OutboxPosition& after) override;
  std::int64_t PruneChanges(const OutboxPosition& upto,
                            std::chrono::milliseconds retention) override;
  std::vector<SkuStock> LoadStockPage(std::string_view after_sku, std::size_t limit) override;
  std::vector<std::string> ListSkus(std::string_view after_sku, std::size_t limit) override;
  std::int64_t CountSkus() override;
  OutboxOrigin ReadOutboxOrigin(const OutboxPosition& cursor) override;
  std::map<std::string, StockAudit> AuditStock(std::span<const std::string> skus,
                                               const OutboxPosition& after) override;
  std::unique_ptr<ChangeFeed> OpenChangeFeed() override;
  bool Ping() override;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds busy_timeout_;
  ConnectionPool<detail::SqliteConnection> pool_;
};

/// The store a database URL names: `postgresql://...` / `postgres://...` or `sqlite:///path`
/// (`sqlite://relative/path` for a path relative to the working directory). Throws
/// `ConfigError` for anything else.
std::unique_ptr<Store> OpenStore(const std::string& url, std::size_t pool_size);

}  // namespace invsync::db
