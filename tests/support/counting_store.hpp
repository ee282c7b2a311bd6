#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "db/forwarding_store.hpp"

namespace invsync::testing {

/// Forwards to a real store, counting reads; can slow reads down (to widen race windows) and run
/// a hook right after a read returns (to make something happen "between read and install").
class CountingStore final : public db::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  db::StockSnapshot LoadStock(std::string_view sku) override {
    reads.fetch_add(1);
    std::this_thread::sleep_for(read_delay);
    auto snapshot = inner().LoadStock(sku);
    if (after_read) {
      after_read();
    }
    return snapshot;
  }
  std::map<std::string, db::StockSnapshot> LoadStocks(std::span<const std::string> skus) override {
    batch_reads.fetch_add(1);
    auto snapshots = inner().LoadStocks(skus);
    if (after_batch_read) {
      after_batch_read();
    }
    return snapshots;
  }

  std::atomic<int> reads{0};
  std::atomic<int> batch_reads{0};
  std::chrono::milliseconds read_delay{0};
  std::function<void()> after_read;
  std::function<void()> after_batch_read;
};

}  // namespace invsync::testing
