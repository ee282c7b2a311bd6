#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "db/store.hpp"

namespace invsync::testing {

/// Forwards to a real store, counting reads; can slow reads down (to widen race windows) and run
/// a hook right after a read returns (to make something happen "between read and install").
class CountingStore final : public db::Store {
 public:
  explicit CountingStore(db::Store& inner) : inner_(inner) {}

  void Migrate() override { inner_.Migrate(); }
  std::optional<std::int64_t> LoadQuantity(std::string_view sku) override {
    reads.fetch_add(1);
    std::this_thread::sleep_for(read_delay);
    auto quantity = inner_.LoadQuantity(sku);
    if (after_read) {
      after_read();
    }
    return quantity;
  }
  std::map<std::string, std::int64_t> LoadQuantities(std::span<const std::string> skus) override {
    batch_reads.fetch_add(1);
    return inner_.LoadQuantities(skus);
  }
  db::ApplyOutcome ApplyEvents(std::span<const db::StockEvent> events) override {
    return inner_.ApplyEvents(events);
  }
  bool Ping() override { return inner_.Ping(); }

  std::atomic<int> reads{0};
  std::atomic<int> batch_reads{0};
  std::chrono::milliseconds read_delay{0};
  std::function<void()> after_read;

 private:
  db::Store& inner_;
};

}  // namespace invsync::testing
