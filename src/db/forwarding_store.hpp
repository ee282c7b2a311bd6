#pragma once

#include "db/store.hpp"

namespace invsync::db {

/// A store that passes every call to another one. Wrappers that watch or disturb a few calls
/// (tests' counting and fault-injecting stores, benchmarks' timing) derive from it and override
/// only those.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& inner) : inner_(inner) {}

  void Migrate() override { inner_.Migrate(); }
  StockSnapshot LoadStock(std::string_view sku) override { return inner_.LoadStock(sku); }
  std::map<std::string, StockSnapshot> LoadStocks(std::span<const std::string> skus) override {
    return inner_.LoadStocks(skus);
  }
  std::vector<SkuStock> LoadStockPage(std::string_view after_sku, std::size_t limit) override {
    return inner_.LoadStockPage(after_sku, limit);
  }
  std::vector<std::string> ListSkus(std::string_view after_sku, std::size_t limit) override {
    return inner_.ListSkus(after_sku, limit);
  }
  std::int64_t CountSkus() override { return inner_.CountSkus(); }
  ApplyOutcome ApplyEvents(std::span<const StockEvent> events) override {
    return inner_.ApplyEvents(events);
  }
  ChangeBatch ReadChanges(const OutboxPosition& after, std::size_t limit) override {
    return inner_.ReadChanges(after, limit);
  }
  ChangeBacklog ReadChangeBacklog(const OutboxPosition& after) override {
    return inner_.ReadChangeBacklog(after);
  }
  std::int64_t PruneChanges(const OutboxPosition& upto,
                            std::chrono::milliseconds retention) override {
    return inner_.PruneChanges(upto, retention);
  }
  OutboxOrigin ReadOutboxOrigin(const OutboxPosition& cursor) override {
    return inner_.ReadOutboxOrigin(cursor);
  }
  std::map<std::string, StockAudit> AuditStock(std::span<const std::string> skus,
                                               const OutboxPosition& after) override {
    return inner_.AuditStock(skus, after);
  }
  std::unique_ptr<ChangeFeed> OpenChangeFeed() override { return inner_.OpenChangeFeed(); }
  std::optional<std::string> ReadStreamHighWater() override { return inner_.ReadStreamHighWater(); }
  bool Ping() override { return inner_.Ping(); }

 protected:
  Store& inner() { return inner_; }

 private:
  Store& inner_;
};

}  // namespace invsync::db
