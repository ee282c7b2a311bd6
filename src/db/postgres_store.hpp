#pragma once

#include <memory>
#include <string>

#include "common/connection_pool.hpp"
#include "db/detail/pg.hpp"
#include "db/store.hpp"

namespace invsync::db {

/// The PostgreSQL store (libpq), with a small pool of connections created on demand.
class PostgresStore final : public Store {
 public:
  /// Does not connect yet: the first call does, so a service can start while the database is
  /// down and catch up when it returns.
  PostgresStore(std::string url, std::size_t pool_size);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  void Migrate() override;
  StockSnapshot LoadStock(std::string_view sku) override;
  std::map<std::string, StockSnapshot> LoadStocks(std::span<const std::string> skus) override;
  std::vector<SkuStock> LoadStockPage(std::string_view after_sku, std::size_t limit) override;
  std::vector<std::string> ListSkus(std::string_view after_sku, std::size_t limit) override;
  std::int64_t CountSkus() override;
  ApplyOutcome ApplyEvents(std::span<const StockEvent> events) override;
  std::optional<std::string> ReadStreamHighWater() override;
  ChangeBatch ReadChanges(const OutboxPosition& after, std::size_t limit) override;
  ChangeBacklog ReadChangeBacklog(const OutboxPosition& after) override;
  std::int64_t PruneChanges(const OutboxPosition& upto,
                            std::chrono::milliseconds retention) override;
  OutboxOrigin ReadOutboxOrigin(const OutboxPosition& cursor) override;
  std::map<std::string, StockAudit> AuditStock(std::span<const std::string> skus,
                                               const OutboxPosition& after) override;
  std::unique_ptr<ChangeFeed> OpenChangeFeed() override;
  bool Ping() override;

 private:
  using Lease = ConnectionPool<detail::PgConnection>::Lease;
  Lease Acquire();

  std::string url_;
  ConnectionPool<detail::PgConnection> pool_;
};

}  // namespace invsync::db
