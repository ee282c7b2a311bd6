// `invsync warm`: bulk loads from the database into Redis that keep fill.lua's rules while orders
// flow (never overwrite a cached key, skip SKUs with unpersisted events, count each database-side
// change once), and the command line around it.
#include "core/warm.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/keys.hpp"
#include "db/forwarding_store.hpp"
#include "persister/persister.hpp"
#include "process.hpp"
#include "servers.hpp"
#include "syncer/syncer.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;
using core::StockStatus;

/// Runs a hook right after the first page read (to make something happen between read and install).
class PageHookStore final : public db::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::vector<db::SkuStock> LoadStockPage(std::string_view after_sku, std::size_t limit) override {
    auto page = inner().LoadStockPage(after_sku, limit);
    if (after_first_read && !first_read_done_) {
      first_read_done_ = true;  // not by clearing the hook from inside itself: it is running
      after_first_read();
    }
    return page;
  }
  std::function<void()> after_first_read;

 private:
  bool first_read_done_ = false;
};

class WarmTest : public ServersTest {
 protected:
  /// Warms every SKU in process, as `invsync warm --all` does, in small pages.
  /// Its fills' database reads outside the pages are counted in `fill_counters_`.
  core::WarmCounts WarmAll(db::Store& through, std::size_t page_size = 100) {
    core::CacheFiller filler(pool(), through, stock().keys(), stock().scripts(),
                             {.absent_ttl = 0ms}, fill_counters_);
    core::Warmer warmer(pool(), through, filler, {.page_size = page_size});
    return warmer.WarmAll({});
  }
  core::WarmCounts WarmAll() { return WarmAll(store()); }

  Outcome Cli(const std::vector<std::string>& args) { return RunInvsync(INVSYNC_BINARY, args); }

  /// Seeds SKUs the way a back office would: plain SQL, so nothing is cached.
  void Insert(const std::string& sku, std::int64_t quantity) {
    Sql(fmt::format("INSERT INTO inventory (sku, quantity) VALUES ('{}', {})", sku, quantity));
  }

  /// Seeds SKUs L0 ... L<count - 1>, quantity 100 each, with plain SQL: with a count of
  /// CacheFiller::kSkusPerCall or more, a page of them is installed with lean fill calls (only
  /// inventory keys) unless recent changes or absent markers may exist.
  void InsertMany(int count) {
    Sql(
        fmt::format("WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {}) "
                    "INSERT INTO inventory (sku, quantity) SELECT 'L' || n, 100 FROM g",
                    count - 1));
  }

  /// Every database row is cached with the database's quantity, and nothing else is cached.
  void ExpectRedisEqualsDatabase() {
    auto conn = pool().Acquire();
    std::size_t rows = 0;
    std::string after;
    while (true) {
      auto page = store().LoadStockPage(after, 1000);
      std::vector<std::string> keys;
      std::vector<redis::Args> commands;
      for (const auto& row : page) {
        keys.push_back("inventory:" + row.sku);
      }
      for (const auto& key : keys) {
        commands.push_back({"HGET", key, "quantity"});
      }
      auto values = conn->Pipeline(commands);
      for (std::size_t i = 0; i < page.size(); ++i) {
        EXPECT_EQ(values[i].AsOptionalInteger(), page[i].snapshot.quantity) << page[i].sku;
      }
      rows += page.size();
      if (page.size() < 1000) {
        break;
      }
      after = page.back().sku;
    }
    EXPECT_EQ(conn->Command({"KEYS", "inventory:*"}).AsArray().size(), rows);
  }

  core::CacheCounters fill_counters_;
};

TEST_F(WarmTest, WarmAllAfterFlushallRestoresEverySkuEqualToTheDatabase) {
  // Portable SQL (PostgreSQL and SQLite): SKUs W100001 ... W104500 with quantities 1 ... 4500.
  Sql("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 4500) "
      "INSERT INTO inventory (sku, quantity) SELECT 'W' || (100000 + n), n FROM g");
  ASSERT_EQ(stock().Get("W100001").quantity, 1);
  Redis({"FLUSHALL"});
  auto warm = Cli({"--json", "warm", "--all"});
  ASSERT_EQ(warm.code, 0) << warm.err;
  EXPECT_EQ(warm.err, "");  // no progress bar when stderr is not a terminal
  auto summary = nlohmann::json::parse(warm.out);
  EXPECT_EQ(summary["loaded"], 4500);
  EXPECT_EQ(summary["cached"], 0);
  ExpectRedisEqualsDatabase();
}

TEST_F(WarmTest, WarmNeverOverwritesACachedKeyThatDiffersFromTheDatabase) {
  ASSERT_EQ(stock().Set("A", 100, "seed-a").status, StockStatus::kOk);
  ASSERT_EQ(stock().Set("B", 50, "seed-b").status, StockStatus::kOk);
  Drain();
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);  // not persisted yet
  Redis({"HSET", "inventory:B", "quantity", "7"});                        // drift
  Insert("C", 30);
  auto counts = WarmAll();
  EXPECT_EQ(counts.cached, 2);
  EXPECT_EQ(counts.loaded, 1);
  EXPECT_EQ(RedisQuantity("A"), 90);
  EXPECT_EQ(DatabaseQuantity("A"), 100);
  EXPECT_EQ(RedisQuantity("B"), 7);
  EXPECT_EQ(RedisQuantity("C"), 30);
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 90);
}

TEST_F(WarmTest, ASkuWithUnpersistedEventsIsSkippedUntilTheyArePersisted) {
  ASSERT_EQ(stock().Set("A", 100, "seed").status, StockStatus::kOk);
  Drain();
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);
  Redis({"DEL", "inventory:A"});  // the key vanished while its event is still in the stream
  auto counts = WarmAll();
  EXPECT_EQ(counts.skipped, 1);
  EXPECT_EQ(counts.skipped_skus, std::vector<std::string>{"A"});
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  Drain();
  EXPECT_EQ(WarmAll().loaded, 1);
  EXPECT_EQ(RedisQuantity("A"), 90);
  EXPECT_EQ(DatabaseQuantity("A"), 90);
}

TEST_F(WarmTest, SkusWithPersistedEventsAreLoadedFromTheirPageWithoutReadingAgain) {
  // The page's persisted counts are read before the page: each SKU installs on the first try.
  ASSERT_EQ(stock().Set("A", 100, "seed-a").status, StockStatus::kOk);
  ASSERT_EQ(stock().Set("B", 50, "seed-b").status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);
  Drain();
  ASSERT_TRUE(Redis({"HGET", core::Keys::kPersisted, "A"}).AsOptionalString().has_value());
  Redis({"DEL", "inventory:A", "inventory:B"});
  auto counts = WarmAll();
  EXPECT_EQ(counts.loaded, 2);
  EXPECT_EQ(fill_counters_.database_reads.load(), 0);
  EXPECT_EQ(RedisQuantity("A"), 90);
  EXPECT_EQ(RedisQuantity("B"), 50);
}

TEST_F(WarmTest, AWarmIntoAnEmptiedRedisLoadsEverySkuFromItsPage) {
  ASSERT_EQ(stock().Set("A", 100, "seed-a").status, StockStatus::kOk);
  ASSERT_EQ(stock().Set("B", 50, "seed-b").status, StockStatus::kOk);
  Drain();
  Redis({"FLUSHALL"});
  EXPECT_EQ(WarmAll().loaded, 2);
  EXPECT_EQ(fill_counters_.database_reads.load(), 0);
  ExpectRedisEqualsDatabase();
}

TEST_F(WarmTest, AnEventPersistedAfterAPageReadIntoAnEmptiedRedisMakesItsSkuReadAgain) {
  // After a FLUSHALL no SKU has a persisted count, and the warm reads none: the first persisted
  // count to appear after the page's read must still make the read count as stale.
  ASSERT_EQ(stock().Set("A", 100, "seed-a").status, StockStatus::kOk);
  ASSERT_EQ(stock().Set("B", 50, "seed-b").status, StockStatus::kOk);
  Drain();
  Redis({"FLUSHALL"});
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);  // fills A, then 90
  Redis({"DEL", "inventory:A"});  // gone again while its event is still in the stream
  ASSERT_EQ(Redis({"EXISTS", core::Keys::kPersisted}).AsInteger(), 0);
  PageHookStore hooked(store());
  hooked.after_first_read = [&] { Drain(); };  // the page read A at 100
  auto counts = WarmAll(hooked);
  EXPECT_EQ(counts.loaded, 2);
  EXPECT_EQ(fill_counters_.database_reads.load(), 1);  // A, read again
  EXPECT_EQ(RedisQuantity("A"), 90);
  EXPECT_EQ(DatabaseQuantity("A"), 90);
  EXPECT_EQ(RedisQuantity("B"), 50);
}

TEST_F(WarmTest, APageReadFromBeforeRedisLostItsDataIsReadAgain) {
  Insert("A", 100);
  Insert("B", 50);
  ASSERT_EQ(stock().Deduct("o0", {{"A", 1}}).status, StockStatus::kOk);
  Drain();
  Redis({"DEL", "inventory:A"});
  PageHookStore hooked(store());
  hooked.after_first_read = [&] {  // the page read A at 99
    // Another service sells one (its fill is the read the page missed), its persister commits the
    // sale, then Redis loses its data: A's persisted count comes back as the "1" the page saw.
    ASSERT_EQ(stock().Deduct("o1", {{"A", 1}}).status, StockStatus::kOk);
    ASSERT_EQ(PersistThenLoseRedis(), 1U);
    ASSERT_EQ(Redis({"HGET", core::Keys::kPersisted, "A"}).AsString(), "1");
  };
  const auto counts = WarmAll(hooked);
  EXPECT_EQ(counts.loaded, 2);
  EXPECT_EQ(RedisQuantity("A"), 98);
  EXPECT_EQ(DatabaseQuantity("A"), 98);
  EXPECT_EQ(RedisQuantity("B"), 50);
}

TEST_F(WarmTest, AChangeAppliedBetweenTheReadAndTheInstallIsCountedOnce) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), {});
  ASSERT_EQ(syncer.RunOnce().applied, 1);
  PageHookStore hooked(store());
  hooked.after_first_read = [&] {
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
    ASSERT_EQ(syncer.RunOnce().applied, 1);  // A is not cached: only remembered for fills
  };
  EXPECT_EQ(WarmAll(hooked).loaded, 1);
  EXPECT_EQ(RedisQuantity("A"), 107);
  EXPECT_EQ(syncer.RunOnce().applied, 0);
  EXPECT_EQ(RedisQuantity("A"), 107);
  EXPECT_EQ(DatabaseQuantity("A"), 107);
}

TEST_F(WarmTest, AChangeAppliedBetweenTheReadAndAManySkuInstallIsCountedOnce) {
  // No recent changes when the warm starts (the inserts are not applied yet); the syncer applies
  // them and one update after the page's read: the install must look at the SKUs' recent changes.
  InsertMany(300);
  syncer::Syncer syncer(pool(), store(), {});
  PageHookStore hooked(store());
  hooked.after_first_read = [&] {
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'L150'");
    std::size_t applied = 0;
    while (auto batch = syncer.RunOnce().applied) {
      applied += batch;
    }
    ASSERT_EQ(applied, 301u);  // nothing is cached: only remembered for fills
  };
  EXPECT_EQ(WarmAll(hooked, 1000).loaded, 300);
  EXPECT_EQ(RedisQuantity("L150"), 107);
  EXPECT_EQ(RedisQuantity("L149"), 100);
  // The key that says recent changes may exist outlives them.
  EXPECT_GE(Redis({"PTTL", core::Keys::kRecentChangesExist}).AsInteger(),
            Redis({"PTTL", core::Keys::RecentChanges("L150")}).AsInteger());
  EXPECT_EQ(syncer.RunOnce().applied, 0u);
  EXPECT_EQ(RedisQuantity("L150"), 107);
  EXPECT_EQ(DatabaseQuantity("L150"), 107);
}

TEST_F(WarmTest, AKeyDeletedByHandDoesNotLetAPageInstallAReadOlderThanAChange) {
  // The page reads A at 100. Then a back office adds 7, another process loads A at 107, the
  // syncer finds A cached with that change already loaded, and an operator deletes the key. The
  // page's install must not bring back 100.
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), {});
  ASSERT_EQ(syncer.RunOnce().applied, 1);
  PageHookStore hooked(store());
  hooked.after_first_read = [&] {
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
    InstallAsAnotherFill("A", 107);
    EXPECT_EQ(syncer.RunOnce().applied, 1U);  // A is cached with this change: left alone
    Redis({"DEL", "inventory:A"});
  };
  auto counts = WarmAll(hooked);
  EXPECT_EQ(counts.loaded, 1);
  EXPECT_EQ(RedisQuantity("A"), 107);
  EXPECT_EQ(DatabaseQuantity("A"), 107);
}

TEST_F(WarmTest, AManySkuWarmRemovesTheAbsentMarkerOfASkuItLoads) {
  stock_options.fill.absent_ttl = 60s;
  ASSERT_EQ(stock().Get("L150").status, StockStatus::kUnknownSku);  // remembered as absent
  ASSERT_EQ(Redis({"EXISTS", core::Keys::Absent("L150")}).AsInteger(), 1);
  InsertMany(300);  // no syncer runs: only the warm can remove the marker
  EXPECT_EQ(WarmAll(store(), 1000).loaded, 300);
  EXPECT_EQ(Redis({"EXISTS", core::Keys::Absent("L150")}).AsInteger(), 0);
  EXPECT_EQ(stock().Get("L150").quantity, 100);
  ExpectRedisEqualsDatabase();
}

TEST_F(WarmTest, ALeanFillCallChangesNothingWhileRecentChangesMayExist) {
  // fill.lua's own check, for a change the syncer applies after the caller looked.
  redis::ScriptCall lean{
      .keys = {std::string(core::Keys::kInflight), std::string(core::Keys::kPersisted),
               std::string(core::Keys::kFillPositions),
               std::string(core::Keys::kRecentChangesExist),
               std::string(core::Keys::kAbsentMarkersExist),
               std::string(core::Keys::kCachedChanges),
               std::string(core::Keys::kPreviousCachedChanges), std::string(core::Keys::kEpoch),
               "inventory:A"},
      .args = {"0", "1", Redis({"GET", core::Keys::kEpoch}).AsOptionalString().value_or(""), "A",
               "5"}};
  Redis({"SET", core::Keys::kRecentChangesExist, "1", "PX", "60000"});
  auto conn = pool().Acquire();
  auto refused = stock().scripts().fill.Run(*conn, lean);
  ASSERT_EQ(refused.type, redis::Value::Type::kString);
  EXPECT_EQ(refused.str, "full");
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  Redis({"DEL", core::Keys::kRecentChangesExist});
  auto filled = stock().scripts().fill.Run(*conn, lean);
  ASSERT_TRUE(filled.IsArray());
  EXPECT_EQ(filled.AsArray().at(0).AsString(), "F");
  EXPECT_EQ(RedisQuantity("A"), 5);
}

TEST_F(WarmTest, AChangeTheReadIncludedIsNotAppliedAgain) {
  Insert("A", 100);
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  EXPECT_EQ(WarmAll().loaded, 1);
  EXPECT_EQ(RedisQuantity("A"), 105);
  syncer::Syncer syncer(pool(), store(), {});
  EXPECT_EQ(syncer.RunOnce().applied, 2);  // the insert and the update: both already read
  EXPECT_EQ(RedisQuantity("A"), 105);
}

TEST_F(WarmTest, ChangesTheReadsIncludedAreNotAppliedAgainAnywhereInALargeBatch) {
  // One syncer batch of 1,501 rows, each compared with its own SKU's fill position.
  InsertMany(1500);
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'L1400'");
  EXPECT_EQ(WarmAll().loaded, 1500);
  syncer::Syncer syncer(pool(), store(), {});
  const auto batch = syncer.RunOnce();
  EXPECT_EQ(batch.read, 1501u);
  EXPECT_EQ(batch.applied, 1501u);
  EXPECT_EQ(RedisQuantity("L1400"), 105);
  ExpectRedisEqualsDatabase();
}

// A warm into an emptied Redis of SKUs whose changes have left the outbox (pruned after the
// retention), the usual case: lean calls with nothing to look at per SKU. A SKU of the same page
// with a change still in the outbox is installed with its position; a position that an earlier
// fill left for a SKU whose key is gone is dropped.
TEST_F(WarmTest, AWarmOfSkusWithNoChangeInTheOutboxLoadsEachFromItsPage) {
  const int count = static_cast<int>(core::CacheFiller::kSkusPerCall) * 2 + 5;
  InsertMany(count);
  Sql("DELETE FROM invsync_outbox WHERE sku <> 'L7'");
  const auto l7_change = SqlInt("SELECT max(id) FROM invsync_outbox WHERE sku = 'L7'");
  ASSERT_GT(l7_change, 0);
  Redis({"FLUSHALL"});
  Redis({"HSET", core::Keys::kFillPositions, "L9", "999999"});
  const auto counts = WarmAll(store(), /*page_size=*/1000);
  EXPECT_EQ(counts.loaded, count);
  EXPECT_EQ(counts.cached + counts.skipped + counts.absent, 0);
  ExpectRedisEqualsDatabase();
  EXPECT_EQ(Redis({"HGET", core::Keys::kFillPositions, "L7"}).AsOptionalString(),
            std::to_string(l7_change));
  EXPECT_EQ(Redis({"HGET", core::Keys::kFillPositions, "L9"}).AsOptionalString(), std::nullopt);
  EXPECT_EQ(Redis({"HLEN", core::Keys::kFillPositions}).AsInteger(), 1);
}

TEST_F(WarmTest, WarmWhileOrdersFlowKeepsTheBooks) {
  constexpr int kSkus = 40;
  constexpr std::int64_t kStock = 300;
  Sql(
      fmt::format("WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {}) "
                  "INSERT INTO inventory (sku, quantity) SELECT 'S' || n, {} FROM g",
                  kSkus - 1, kStock));
  ASSERT_EQ(stock().Get("S0").quantity, kStock);  // the service exists before the threads start
  persister::Persister persister(pool(), store(), persister_options);
  std::jthread persisting([&](const std::stop_token& stop) { persister.Run(stop); });
  std::atomic<bool> done{false};
  std::mutex mutex;
  std::map<std::string, std::int64_t> sold;
  std::int64_t accepted = 0;
  std::atomic<int> negative_answers{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 8; ++t) {
    buyers.emplace_back([&, t] {
      std::mt19937 random(t);
      for (int n = 0; !done.load(); ++n) {
        const std::string sku = "S" + std::to_string(random() % kSkus);
        const std::int64_t quantity = 1 + static_cast<std::int64_t>(random() % 3);
        core::OrderResult result;
        try {
          result = stock().Deduct(fmt::format("w{}-{}", t, n), {{sku, quantity}});
        } catch (const TransientError&) {
          // The key was deleted again after each of the order's fills ("kept vanishing"): the
          // order was refused, applied nowhere, and the books below say so if it was not.
          continue;
        }
        if (result.status == StockStatus::kOk) {
          negative_answers += result.lines[0].remaining < 0 ? 1 : 0;
          std::lock_guard lock(mutex);
          sold[sku] += quantity;
          ++accepted;
        } else {
          ASSERT_EQ(result.status, StockStatus::kInsufficient);
        }
      }
    });
  }
  // Keys vanish now and then (an operator's DEL) while their events may be in flight; warm runs
  // against the orders' own cache fills.
  std::int64_t loaded = 0;
  std::mt19937 random(99);
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 5; ++i) {
      Redis({"DEL", "inventory:S" + std::to_string(random() % kSkus)});
    }
    loaded += WarmAll(store(), 16).loaded;
  }
  done = true;
  buyers.clear();
  Drain();
  persisting = {};
  EXPECT_GT(loaded, 0);
  WarmAll();
  std::int64_t total_sold = 0;
  for (int i = 0; i < kSkus; ++i) {
    const std::string sku = "S" + std::to_string(i);
    SCOPED_TRACE(sku);
    EXPECT_GE(kStock - sold[sku], 0);
    EXPECT_EQ(DatabaseQuantity(sku), kStock - sold[sku]);
    EXPECT_EQ(RedisQuantity(sku), kStock - sold[sku]);
    total_sold += sold[sku];
  }
  EXPECT_EQ(negative_answers.load(), 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE kind = 'deduct'"), accepted);
  EXPECT_EQ(SqlInt("SELECT coalesce(-sum(delta), 0) FROM invsync_ledger WHERE kind = 'deduct'"),
            total_sold);
}

TEST_F(WarmTest, WarmOfAnUnknownSkuReportsItAbsentAndChangesNothing) {
  Insert("A", 5);
  // Any read for fills announces itself (a bookkeeping key with a time to live); that aside,
  // the warm of an unknown SKU adds no key.
  Redis({"SET", core::Keys::kFillReadsActive, "1", "PX", "60000"});
  const auto keys_before = Redis({"DBSIZE"}).AsInteger();
  auto warm = Cli({"--json", "warm", "NOPE"});
  EXPECT_EQ(warm.code, 1) << warm.err;
  auto summary = nlohmann::json::parse(warm.out);
  EXPECT_EQ(summary["absent"], 1);
  EXPECT_EQ(summary["absent_skus"], nlohmann::json::array({"NOPE"}));
  EXPECT_EQ(summary["loaded"], 0);
  EXPECT_EQ(Redis({"DBSIZE"}).AsInteger(), keys_before);
  auto text = Cli({"warm", "A", "NOPE"});
  EXPECT_EQ(text.code, 1);
  EXPECT_NE(text.out.find("absent: NOPE\n"), std::string::npos) << text.out;
  EXPECT_EQ(RedisQuantity("A"), 5);
  EXPECT_EQ(Redis({"EXISTS", core::Keys::Absent("NOPE")}).AsInteger(), 0);
}

TEST_F(WarmTest, BadArgumentsExitTwoWithOneLineAndChangeNothing) {
  Insert("A", 5);
  for (const std::vector<std::string>& args : {std::vector<std::string>{"warm"},
                                               {"warm", "--all", "A"},
                                               {"warm", "A", "bad sku"},
                                               {"warm", "A", std::string(200, 'x')}}) {
    auto outcome = Cli(args);
    const std::string shown = fmt::format("{}", fmt::join(args, " "));
    EXPECT_EQ(outcome.code, 2) << shown;
    EXPECT_EQ(CountLines(outcome.err), 1) << shown << ": " << outcome.err;
    EXPECT_EQ(outcome.out, "") << shown;
  }
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
}

TEST_F(WarmTest, CliReportsTheSummaryAsOneJsonDocumentOrOneLine) {
  Insert("A", 1);
  Insert("B", 2);
  Insert("C", 3);
  ASSERT_EQ(stock().Get("A").quantity, 1);
  auto warm = Cli({"--json", "warm", "--all"});
  ASSERT_EQ(warm.code, 0) << warm.err;
  EXPECT_EQ(CountLines(warm.out), 1);
  auto summary = nlohmann::json::parse(warm.out);
  std::set<std::string> fields;
  for (const auto& [name, value] : summary.items()) {
    fields.insert(name);
  }
  EXPECT_EQ(fields, (std::set<std::string>{"loaded", "cached", "skipped", "absent", "elapsed_s",
                                           "skus_per_s", "skipped_skus", "absent_skus"}));
  EXPECT_EQ(summary["loaded"], 2);
  EXPECT_EQ(summary["cached"], 1);
  EXPECT_EQ(summary["skipped"], 0);
  EXPECT_EQ(summary["absent"], 0);
  EXPECT_TRUE(summary["elapsed_s"].is_number());
  EXPECT_TRUE(summary["skus_per_s"].is_number());
  EXPECT_EQ(summary["skipped_skus"], nlohmann::json::array());
  Redis({"FLUSHALL"});
  auto text = Cli({"warm", "A", "B", "A"});
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("warmed 2 SKUs in ", 0), 0u) << text.out;
  EXPECT_NE(text.out.find(": 2 loaded, 0 already cached, 0 skipped"), std::string::npos)
      << text.out;
  EXPECT_EQ(CountLines(text.out), 1);
  EXPECT_EQ(RedisQuantity("B"), 2);
}

}  // namespace
}  // namespace invsync::testing
