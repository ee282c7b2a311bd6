// Reconcile: silent on a busy healthy system, finds injected drift, negative stock and keys of
// SKUs the database does not have, and repairs Redis without losing a deduction racing with it.
#include "reconcile/reconcile.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "persister/persister.hpp"
#include "process.hpp"
#include "servers.hpp"
#include "syncer/syncer.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kSkus = 50;
constexpr std::int64_t kMaxBacklog = 200;  ///< unpersisted events the busy run's buyers allow

std::string Sku(int i) { return fmt::format("R{:02}", i); }

class ReconcileTest : public ServersTest {
 protected:
  void SetUp() override {
    ServersTest::SetUp();
    for (int i = 0; i < kSkus; ++i) {
      Sql(fmt::format("INSERT INTO inventory (sku, quantity) VALUES ('{}', 100000)", Sku(i)));
    }
    std::vector<std::string> skus;
    for (int i = 0; i < kSkus; ++i) {
      skus.push_back(Sku(i));
    }
    ASSERT_EQ(stock().GetMany(skus).items.size(), static_cast<std::size_t>(kSkus));
    CatchUpSyncer();
  }

  reconcile::Report Reconcile(bool repair = false,
                              std::function<void(const reconcile::Drift&)> before_repair = {}) {
    reconcile::Reconciler reconciler(
        pool(), store(),
        {.repair = repair, .busy_pause = 50ms, .before_repair = std::move(before_repair)});
    return reconciler.Run();
  }

  void CatchUpSyncer() {
    syncer::Syncer syncer(pool(), store(), {});
    while (syncer.RunOnce().read > 0) {
    }
  }
};

TEST_F(ReconcileTest, ReportsNothingDuringAndAfterABusyRun) {
  syncer::Syncer syncer(pool(), store(), {.poll = 50ms});
  std::jthread syncing([&](const std::stop_token& stop) { syncer.Run(stop); });
  persister::Persister persister(pool(), store(), persister_options);
  std::jthread persisting([&](const std::stop_token& stop) { persister.Run(stop); });
  std::atomic<std::int64_t> orders{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 6; ++t) {
    buyers.emplace_back([&, t](const std::stop_token& stop) {
      for (int n = 0; !stop.stop_requested(); ++n) {
        // No faster than the persister drains: with events of every SKU in flight the reconciler
        // judges none (seen in the slow sanitizer builds, on SQLite).
        while (n % 20 == 0 && Unpersisted() > kMaxBacklog && !stop.stop_requested()) {
          std::this_thread::sleep_for(1ms);
        }
        try {
          if (stock()
                  .Deduct(fmt::format("b-{}-{}", t, n), {{Sku((t * 7 + n) % kSkus), 1}})
                  .status == core::StockStatus::kOk) {
            orders.fetch_add(1);
          }
        } catch (const Error&) {
          // counted by the absence of orders; the reconcile runs are what this test checks
        }
      }
    });
  }
  std::jthread back_office([&](const std::stop_token& stop) {
    for (int n = 0; !stop.stop_requested(); ++n) {
      Sql(fmt::format("UPDATE inventory SET quantity = quantity + 3 WHERE sku = '{}'",
                      Sku(n % kSkus)));
      std::this_thread::sleep_for(2ms);
    }
  });
  std::int64_t judged_under_load = 0;
  const auto busy_until = std::chrono::steady_clock::now() + 1500ms;
  for (int run = 0; run < 5 || std::chrono::steady_clock::now() < busy_until; ++run) {
    auto report = Reconcile();
    EXPECT_TRUE(report.drifted.empty()) << report.Json().dump(1);
    EXPECT_TRUE(report.oversold.empty()) << report.Json().dump(1);
    judged_under_load += report.checked;
  }
  EXPECT_GT(judged_under_load, 0);
  back_office.request_stop();
  back_office.join();
  buyers.clear();
  EXPECT_GT(orders.load(), 500);
  ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto conn = pool().Acquire();
        return store().ReadChangeBacklog(syncer::ReadSyncState(*conn).cursor).rows == 0;
      },
      30s));
  auto after = Reconcile();
  EXPECT_TRUE(after.clean()) << after.Json().dump(1);
  EXPECT_TRUE(after.drifted.empty());
  EXPECT_TRUE(after.busy.empty());
  EXPECT_EQ(after.checked, kSkus);
  EXPECT_EQ(after.not_cached, 0);
}

TEST_F(ReconcileTest, InjectedDriftIsReportedAndRepaired) {
  Redis({"HSET", "inventory:R07", "quantity", "999"});
  auto report = Reconcile();
  ASSERT_EQ(report.drifted.size(), 1U) << report.Json().dump(1);
  EXPECT_EQ(report.drifted[0].sku, "R07");
  EXPECT_EQ(report.drifted[0].redis, "999");
  EXPECT_EQ(report.drifted[0].database, 100000);
  EXPECT_EQ(report.drifted[0].expected, 100000);
  EXPECT_FALSE(report.clean());
  EXPECT_EQ(RedisQuantity("R07"), 999);  // reporting changes nothing

  auto repaired = Reconcile(/*repair=*/true);
  ASSERT_EQ(repaired.drifted.size(), 1U);
  EXPECT_TRUE(repaired.drifted[0].repaired);
  EXPECT_TRUE(repaired.clean());
  EXPECT_EQ(RedisQuantity("R07"), 100000);
  EXPECT_TRUE(Reconcile().drifted.empty());
}

TEST_F(ReconcileTest, UnappliedDatabaseChangesAreNotDrift) {
  // The syncer has not run: Redis lacks the change, and reconcile knows it is on its way.
  Sql("UPDATE inventory SET quantity = quantity + 40 WHERE sku = 'R01'");
  auto report = Reconcile();
  EXPECT_TRUE(report.drifted.empty()) << report.Json().dump(1);
  // A drift on top of it is measured against what Redis should hold now.
  Redis({"HINCRBY", "inventory:R01", "quantity", "-5"});
  report = Reconcile(/*repair=*/true);
  ASSERT_EQ(report.drifted.size(), 1U);
  EXPECT_EQ(report.drifted[0].database, 100040);
  EXPECT_EQ(report.drifted[0].expected, 100000);
  CatchUpSyncer();
  EXPECT_EQ(RedisQuantity("R01"), 100040);
}

TEST_F(ReconcileTest, ADeductionRacingWithTheRepairIsNotLost) {
  Redis({"HSET", "inventory:R03", "quantity", "500"});
  auto report = Reconcile(/*repair=*/true, [&](const reconcile::Drift&) {
    ASSERT_EQ(stock().Deduct("racing", {{"R03", 2}}).status, core::StockStatus::kOk);
  });
  ASSERT_EQ(report.drifted.size(), 1U);
  EXPECT_FALSE(report.drifted[0].repaired);
  EXPECT_EQ(RedisQuantity("R03"), 498);  // the deduction stands; the repair stood back
  Drain();
  auto second = Reconcile(/*repair=*/true);
  ASSERT_EQ(second.drifted.size(), 1U);
  EXPECT_TRUE(second.drifted[0].repaired);
  EXPECT_EQ(RedisQuantity("R03"), 99998);
  EXPECT_EQ(DatabaseQuantity("R03"), 99998);
}

TEST_F(ReconcileTest, OversoldStockAndKeysWithoutADatabaseRowAreReported) {
  Sql("UPDATE inventory SET quantity = -5 WHERE sku = 'R09'");
  CatchUpSyncer();
  Redis({"HSET", "inventory:GHOST", "product_id", "GHOST", "quantity", "5"});
  auto report = Reconcile();
  EXPECT_FALSE(report.clean());
  ASSERT_EQ(report.oversold.size(), 2U) << report.Json().dump(1);
  EXPECT_EQ(report.oversold[0].sku, "R09");
  EXPECT_EQ(report.oversold[0].quantity, -5);
  ASSERT_EQ(report.drifted.size(), 1U);
  EXPECT_EQ(report.drifted[0].sku, "GHOST");
  EXPECT_EQ(report.drifted[0].database, std::nullopt);
  EXPECT_EQ(report.drifted[0].expected, std::nullopt);
  Reconcile(/*repair=*/true);
  EXPECT_EQ(RedisQuantity("GHOST"), std::nullopt);
}

// Keys under the inventory prefix that invsync did not write (another tool's string, a name that
// is not UTF-8, which PostgreSQL cannot hold): reported and, with --repair, removed; the rest of
// the run goes on.
TEST_F(ReconcileTest, KeysInvsyncCannotReadAreReportedAndRemoved) {
  Redis({"SET", "inventory:R04", "12"});                  // a SKU the database has, not a hash
  Redis({"SET", "inventory:LEGACY", "7"});                // not a hash, no database row
  Redis({"HSET", "inventory:caf\xe9", "quantity", "3"});  // not UTF-8
  Redis({"HSET", "inventory:R05", "quantity", "1"});      // ordinary drift beside them
  auto report = Reconcile();
  ASSERT_EQ(report.drifted.size(), 4U) << report.Json().dump(1);
  std::map<std::string, reconcile::Drift> by_sku;
  for (const auto& drift : report.drifted) {
    by_sku[drift.sku] = drift;
  }
  EXPECT_EQ(by_sku.at("R04").redis, "(string, not a hash)");
  EXPECT_EQ(by_sku.at("R04").expected, 100000);
  EXPECT_EQ(by_sku.at("LEGACY").database, std::nullopt);
  EXPECT_EQ(by_sku.at("caf\xe9").database, std::nullopt);
  EXPECT_EQ(by_sku.at("R05").expected, 100000);

  auto repaired = Reconcile(/*repair=*/true);
  EXPECT_EQ(repaired.repaired, 4) << repaired.Json().dump(1);
  EXPECT_EQ(Redis({"EXISTS", "inventory:LEGACY", "inventory:caf\xe9"}).AsInteger(), 0);
  EXPECT_EQ(RedisQuantity("R05"), 100000);
  EXPECT_EQ(stock().Get("R04").quantity, 100000);  // dropped, then filled from the database
  EXPECT_TRUE(Reconcile().clean());
}

TEST_F(ReconcileTest, UncachedSkusAreCountedNotDrift) {
  Redis({"DEL", "inventory:R00", "inventory:R01"});
  auto report = Reconcile();
  EXPECT_TRUE(report.clean());
  EXPECT_EQ(report.not_cached, 2);
  EXPECT_EQ(report.checked, kSkus);
}

TEST_F(ReconcileTest, TheLastRunIsKeptForStatus) {
  Reconcile();
  auto last = Redis({"GET", "invsync:reconcile:last"}).AsOptionalString();
  ASSERT_TRUE(last.has_value());
  auto summary = nlohmann::json::parse(*last);
  EXPECT_EQ(summary["checked"], kSkus);
  EXPECT_EQ(summary["clean"], true);
}

}  // namespace
}  // namespace invsync::testing
