// The stock invariants under concurrency: many threads, many orders, then the books are checked
// on both sides (no oversell, nothing lost, nothing applied twice, Redis = database).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "servers.hpp"

namespace invsync::testing {
namespace {

using core::Line;
using core::StockStatus;

class ConcurrencyTest : public ServersTest {
 protected:
  // Runs a persister in the background for the whole test, as `invsync serve` does.
  void StartPersister() {
    persister_ = std::make_unique<persister::Persister>(pool(), store(), persister_options);
    persister_thread_ =
        std::jthread([this](const std::stop_token& stop) { persister_->Run(stop); });
  }
  void StopPersister() {
    persister_thread_.request_stop();
    persister_thread_ = {};
  }
  // Watches a SKU's Redis quantity while the test runs and remembers the lowest value seen.
  void WatchForNegative(const std::vector<std::string>& skus) {
    watcher_ = std::jthread([this, skus](const std::stop_token& stop) {
      redis::Connection conn(redis::Endpoint::Parse(TestRedisUrl()), std::chrono::seconds(5));
      while (!stop.stop_requested()) {
        for (const auto& sku : skus) {
          auto value = conn.Command({"HGET", "inventory:" + sku, "quantity"}).AsOptionalInteger();
          if (value && *value < lowest_seen_.load()) {
            lowest_seen_ = *value;
          }
        }
      }
    });
  }
  std::int64_t LowestSeen() {
    watcher_ = {};
    return lowest_seen_.load();
  }

 private:
  std::unique_ptr<persister::Persister> persister_;
  std::jthread persister_thread_;
  std::jthread watcher_;
  std::atomic<std::int64_t> lowest_seen_{std::numeric_limits<std::int64_t>::max()};
};

TEST_F(ConcurrencyTest, FlashSaleSellsExactlyTheStockAndNeverGoesNegative) {
  constexpr std::int64_t kStock = 1000;
  ASSERT_EQ(stock().Set("HOT", kStock, "seed").status, StockStatus::kOk);
  StartPersister();
  WatchForNegative({"HOT"});
  std::atomic<std::int64_t> sold{0};
  std::atomic<int> accepted{0};
  std::atomic<int> refusals{0};
  std::atomic<int> negative_answers{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 32; ++t) {
    buyers.emplace_back([&, t] {
      std::mt19937 random(t);
      for (int n = 0;; ++n) {
        std::int64_t quantity = 1 + static_cast<std::int64_t>(random() % 3);
        auto result =
            stock().Deduct("t" + std::to_string(t) + "-" + std::to_string(n), {{"HOT", quantity}});
        if (result.status == StockStatus::kOk) {
          sold += quantity;
          ++accepted;
          negative_answers += result.lines[0].remaining < 0 ? 1 : 0;
          continue;
        }
        ASSERT_EQ(result.status, StockStatus::kInsufficient);
        ++refusals;
        negative_answers += result.shortage->available < 0 ? 1 : 0;
        if (result.shortage->available == 0) {
          return;  // sold out
        }
      }
    });
  }
  buyers.clear();
  EXPECT_EQ(sold.load(), kStock);
  EXPECT_GE(refusals.load(), 32);
  EXPECT_EQ(negative_answers.load(), 0);
  EXPECT_GE(LowestSeen(), 0);
  Drain();
  StopPersister();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE kind = 'deduct'"), accepted.load());
  EXPECT_EQ(SqlInt("SELECT -sum(delta) FROM invsync_ledger WHERE kind = 'deduct'"), kStock);
  EXPECT_EQ(RedisQuantity("HOT"), 0);
  EXPECT_EQ(DatabaseQuantity("HOT"), 0);
}

TEST_F(ConcurrencyTest, MultiLineOrdersTakeAllLinesOrNoneUnderContention) {
  const std::vector<std::string> skus = {"A", "B", "C", "D", "E"};
  constexpr std::int64_t kStock = 300;
  for (const auto& sku : skus) {
    ASSERT_EQ(stock().Set(sku, kStock, "seed-" + sku).status, StockStatus::kOk);
  }
  StartPersister();
  WatchForNegative(skus);
  std::mutex mutex;
  std::map<std::string, std::vector<Line>> accepted;
  std::vector<std::string> refused;
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 16; ++t) {
    buyers.emplace_back([&, t] {
      std::mt19937 random(100 + t);
      for (int n = 0; n < 150; ++n) {
        std::vector<std::string> pool = skus;
        std::shuffle(pool.begin(), pool.end(), random);
        std::vector<Line> lines;
        for (std::size_t i = 0; i < 2 + random() % 2; ++i) {
          lines.push_back({pool[i], 1 + static_cast<std::int64_t>(random() % 2)});
        }
        std::string order_id = "m" + std::to_string(t) + "-" + std::to_string(n);
        auto result = stock().Deduct(order_id, lines);
        std::lock_guard lock(mutex);
        if (result.status == StockStatus::kOk) {
          accepted.emplace(order_id, lines);
        } else {
          ASSERT_EQ(result.status, StockStatus::kInsufficient);
          refused.push_back(order_id);
        }
      }
    });
  }
  buyers.clear();
  EXPECT_GE(LowestSeen(), 0);
  ASSERT_FALSE(refused.empty()) << "demand must exceed stock for this test to mean anything";
  Drain();
  StopPersister();
  std::map<std::string, std::int64_t> sold;
  for (const auto& [id, lines] : accepted) {
    for (const auto& line : lines) {
      sold[line.sku] += line.quantity;
    }
  }
  for (const auto& sku : skus) {
    SCOPED_TRACE(sku);
    EXPECT_EQ(RedisQuantity(sku), kStock - sold[sku]);
    EXPECT_EQ(DatabaseQuantity(sku), kStock - sold[sku]);
  }
  std::int64_t accepted_lines = 0;
  for (const auto& [id, lines] : accepted) {
    accepted_lines += static_cast<std::int64_t>(lines.size());
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE kind = 'deduct'"), accepted_lines);
  EXPECT_EQ(SqlInt("SELECT count(DISTINCT ref) FROM invsync_ledger WHERE kind = 'deduct'"),
            static_cast<std::int64_t>(accepted.size()));
}

TEST_F(ConcurrencyTest, SameOrderReplayedFromManyThreadsDeductsOnce) {
  ASSERT_EQ(stock().Set("A", 50, "seed").status, StockStatus::kOk);
  std::atomic<int> fresh{0};
  std::atomic<int> replays{0};
  std::atomic<int> wrong_answers{0};
  std::vector<std::jthread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int n = t; n < 100; n += 8) {
        auto result = stock().Deduct("same-order", {{"A", 5}});
        (result.replayed ? replays : fresh) += 1;
        wrong_answers += result.status != StockStatus::kOk || result.lines[0].remaining != 45;
      }
    });
  }
  clients.clear();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(replays.load(), 99);
  EXPECT_EQ(wrong_answers.load(), 0);
  EXPECT_EQ(RedisQuantity("A"), 45);

  std::atomic<int> fresh_cancels{0};
  std::atomic<int> replayed_cancels{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int n = 0; n < 12; ++n) {
        auto result = stock().Cancel("same-order");
        if (result.status == StockStatus::kOk) {
          (result.replayed ? replayed_cancels : fresh_cancels) += 1;
        }
      }
    });
  }
  clients.clear();
  EXPECT_EQ(fresh_cancels.load(), 1);
  EXPECT_EQ(replayed_cancels.load(), 95);
  EXPECT_EQ(RedisQuantity("A"), 50);
  Drain();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'same-order'"), 2);
  EXPECT_EQ(DatabaseQuantity("A"), 50);
}

TEST_F(ConcurrencyTest, ConcurrentRestocksAndSalesKeepTheBooksBalanced) {
  ASSERT_EQ(stock().Set("A", 100, "seed").status, StockStatus::kOk);
  StartPersister();
  std::atomic<std::int64_t> sold{0};
  std::atomic<std::int64_t> restocked{0};
  std::vector<std::jthread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int n = 0; n < 200; ++n) {
        std::string id = std::to_string(t) + "-" + std::to_string(n);
        if (n % 10 == 0) {
          auto result = stock().Restock("A", 7, "r" + id);
          restocked += result.status == StockStatus::kOk ? 7 : 0;
        } else if (stock().Deduct("o" + id, {{"A", 2}}).status == StockStatus::kOk) {
          sold += 2;
        }
      }
    });
  }
  clients.clear();
  Drain();
  StopPersister();
  const std::int64_t expected = 100 + restocked.load() - sold.load();
  EXPECT_GE(expected, 0);
  EXPECT_EQ(RedisQuantity("A"), expected);
  EXPECT_EQ(DatabaseQuantity("A"), expected);
  EXPECT_EQ(SqlInt("SELECT sum(delta) FROM invsync_ledger WHERE sku = 'A'"), expected);
}

}  // namespace
}  // namespace invsync::testing
