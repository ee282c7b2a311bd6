// Change data capture: changes made in the database outside invsync (a back office's plain SQL)
// reach Redis through the outbox and the syncer, exactly once, without clobbering deductions still
// on their way to the database, whatever crashes, and whichever syncer is active.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "core/keys.hpp"
#include "counting_store.hpp"
#include "db/detail/pg.hpp"
#include "persister/persister.hpp"
#include "process.hpp"
#include "servers.hpp"
#include "syncer/syncer.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;
using core::Keys;
using syncer::FaultPoint;
using Clock = std::chrono::steady_clock;

/// Stands for the syncer process dying at a fault point: not an invsync::Error, so Syncer::Run
/// does not catch it.
class SimulatedCrash : public std::runtime_error {
 public:
  SimulatedCrash() : std::runtime_error("simulated syncer crash") {}
};

/// A component's Run loop in a thread, stopped and joined on destruction.
template <typename Part>
class Running {
 public:
  explicit Running(Part& part)
      : thread_([&part](const std::stop_token& stop) { part.Run(stop); }) {}
  void Stop() {
    thread_.request_stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  std::jthread thread_;
};

class CdcTest : public ServersTest {
 protected:
  syncer::SyncerOptions SyncerOptions() {
    return {.batch_size = 100, .poll = 100ms, .max_backoff = 200ms};
  }

  /// Prunes every applied row (retention 0): as if each were older than the retention already.
  syncer::SyncerOptions PruningAtOnce() {
    auto options = SyncerOptions();
    options.retention = 0ms;
    return options;
  }

  /// Quantity as `get` answers it (a cache hit, or a fill from the database).
  std::optional<std::int64_t> Get(const std::string& sku) {
    auto result = stock().Get(sku);
    if (result.status == core::StockStatus::kUnknownSku) {
      return std::nullopt;
    }
    EXPECT_EQ(result.status, core::StockStatus::kOk) << sku;
    return result.quantity;
  }

  /// Waits until `get(sku)` answers `expected`; returns how long that took, or nullopt if it did
  /// not within `limit`.
  std::optional<Clock::duration> TimeUntilVisible(const std::string& sku,
                                                  std::optional<std::int64_t> expected,
                                                  Clock::duration limit = 1s) {
    const auto start = Clock::now();
    if (WaitFor([&] { return Get(sku) == expected; }, limit)) {
      return Clock::now() - start;
    }
    return std::nullopt;
  }

  /// Rows in the outbox the syncer has not passed yet.
  std::int64_t Unapplied() {
    auto conn = pool().Acquire();
    return store().ReadChangeBacklog(syncer::ReadSyncState(*conn).cursor).rows;
  }

  /// Waits until both the stream and the outbox are drained (persister and syncer running).
  void WaitForQuiet(Clock::duration limit = 30s) {
    ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0 && Unapplied() == 0; }, limit))
        << Unpersisted() << " unpersisted events, " << Unapplied() << " unapplied outbox rows";
  }

  /// Every SKU known to either side has the same quantity in Redis and in the database, or is
  /// not cached.
  void ExpectRedisMatchesDatabase() {
    auto conn = pool().Acquire();
    std::set<std::string> skus;
    for (const auto& key : conn->Command({"KEYS", "inventory:*"}).elements) {
      skus.insert(key.AsString().substr(std::string_view("inventory:").size()));
    }
    for (const auto& sku : skus) {
      EXPECT_EQ(RedisQuantity(sku), DatabaseQuantity(sku)) << sku;
    }
  }

  /// A cursor as Redis keeps it after the database was restored to an earlier point in time, or
  /// moved to a new cluster: beyond every transaction id and row id the database has given out.
  std::string CursorAheadOfTheDatabase() {
    if (TestOnSqlite()) {
      return fmt::format(
          "0:{}", SqlInt("SELECT seq FROM sqlite_sequence WHERE name = 'invsync_outbox'") + 1000);
    }
    return fmt::format(
        "{}:{}", SqlInt("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint") + 1000,
        SqlInt("SELECT coalesce(max(id), 0) FROM invsync_outbox") + 1000);
  }

  /// Seeds a SKU the way a back office would: a plain INSERT.
  void Insert(const std::string& sku, std::int64_t quantity) {
    Sql("INSERT INTO inventory (sku, quantity) VALUES ('" + sku + "', " + std::to_string(quantity) +
        ")");
  }
};

TEST_F(CdcTest, BackOfficeUpdateSetInsertAndDeleteAreVisibleWithinOneSecond) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running(syncer);
  ASSERT_EQ(Get("A"), 100);             // cached from here on
  ASSERT_EQ(Get("NEW"), std::nullopt);  // remembered as absent

  Sql("UPDATE inventory SET quantity = quantity + 50 WHERE sku = 'A'");
  auto relative = TimeUntilVisible("A", 150);
  ASSERT_TRUE(relative) << "relative update not visible within 1 s";

  Sql("UPDATE inventory SET quantity = 7 WHERE sku = 'A'");
  auto absolute = TimeUntilVisible("A", 7);
  ASSERT_TRUE(absolute) << "absolute update not visible within 1 s";

  Insert("NEW", 12);
  auto inserted = TimeUntilVisible("NEW", 12);
  ASSERT_TRUE(inserted) << "insert not visible within 1 s";

  Sql("DELETE FROM inventory WHERE sku = 'A'");
  auto deleted = TimeUntilVisible("A", std::nullopt);
  ASSERT_TRUE(deleted) << "delete not visible within 1 s";
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);

  // Redis kept the cached keys in step rather than reloading them.
  EXPECT_GE(syncer.counters().cached_rows.load(), 2);
  running.Stop();
  EXPECT_EQ(Unapplied(), 0);
}

TEST_F(CdcTest, EmptyingTheTableIsCapturedLikeDeletingEveryRow) {
  Insert("A", 10);
  Insert("B", 20);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running(syncer);
  ASSERT_EQ(Get("A"), 10);
  ASSERT_EQ(Get("B"), 20);

  // PostgreSQL fires no row triggers for TRUNCATE (a statement trigger records the deletes);
  // SQLite has no TRUNCATE, and its DELETE without WHERE fires them as long as a trigger exists.
  Sql(TestOnSqlite() ? "DELETE FROM inventory" : "TRUNCATE inventory");
  EXPECT_TRUE(TimeUntilVisible("A", std::nullopt)) << "A still sells after the table was emptied";
  EXPECT_TRUE(TimeUntilVisible("B", std::nullopt)) << "B still sells after the table was emptied";
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  EXPECT_EQ(RedisQuantity("B"), std::nullopt);

  // The table refilled afterwards is seen as usual.
  Insert("A", 5);
  EXPECT_TRUE(TimeUntilVisible("A", 5)) << "a row inserted after the truncation is not visible";
  running.Stop();
  EXPECT_EQ(Unapplied(), 0);
}

TEST_F(CdcTest, PersisterWritesDoNotEchoBackThroughTheOutbox) {
  ASSERT_EQ(stock().Set("A", 100, "seed").status, core::StockStatus::kOk);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(stock().Deduct("o" + std::to_string(i), {{"A", 2}}).status, core::StockStatus::kOk);
  }
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 60);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 0);
  // And what does not come from the persister is captured.
  Sql("UPDATE inventory SET quantity = quantity - 1");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 1);
  EXPECT_EQ(SqlInt("SELECT delta FROM invsync_outbox"), -1);
}

TEST_F(CdcTest, OrdersAndBackOfficeChangesCommute) {
  // Enough that the buyers never sell out, however slow the back office is on a loaded machine: a
  // refusal would count as a failure.
  constexpr std::int64_t kInitial = 100'000'000;
  constexpr int kThreads = 16;
  constexpr int kBackOfficeChanges = 200;
  Insert("HOT", kInitial);
  ASSERT_EQ(Get("HOT"), kInitial);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running_syncer(syncer);
  persister::Persister persister(pool(), store(), persister_options);
  Running running_persister(persister);

  std::atomic<bool> done{false};
  std::atomic<std::int64_t> sold{0};
  std::atomic<std::int64_t> failures{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < kThreads; ++t) {
    buyers.emplace_back([&, t] {
      for (int n = 0; !done.load(); ++n) {
        const std::int64_t quantity = 1 + n % 3;
        try {
          auto result = stock().Deduct(fmt::format("o-{}-{}", t, n), {{"HOT", quantity}});
          if (result.status == core::StockStatus::kOk) {
            sold.fetch_add(quantity);
          } else {
            if (failures.fetch_add(1) < 3) {
              ADD_FAILURE() << "order refused, status " << static_cast<int>(result.status);
            }
          }
        } catch (const Error& error) {
          if (failures.fetch_add(1) < 3) {
            ADD_FAILURE() << "order failed: " << error.what();
          }
        }
      }
    });
  }
  std::mt19937 random(7);
  for (int i = 0; i < kBackOfficeChanges; ++i) {
    if (i % 10 == 9) {
      // An absolute write: its delta is whatever the database held then.
      Sql("UPDATE inventory SET quantity = " + std::to_string(kInitial + i) + " WHERE sku = 'HOT'");
    } else {
      const std::int64_t delta = static_cast<std::int64_t>(random() % 41) - 15;
      Sql("UPDATE inventory SET quantity = quantity + (" + std::to_string(delta) +
          ") WHERE sku = 'HOT'");
    }
    std::this_thread::sleep_for(2ms);
  }
  done = true;
  buyers.clear();
  WaitForQuiet();
  running_persister.Stop();
  running_syncer.Stop();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(sold.load(), 1000) << "too few orders overlapped the back-office changes";
  const std::int64_t back_office =
      SqlInt("SELECT coalesce(sum(delta), 0) FROM invsync_outbox WHERE sku = 'HOT' AND kind = 'U'");
  // One row per change that changed the quantity (a random delta may be 0).
  EXPECT_GE(SqlInt("SELECT count(*) FROM invsync_outbox WHERE kind = 'U'"),
            kBackOfficeChanges * 9 / 10);
  const std::int64_t expected = kInitial + back_office - sold.load();
  EXPECT_EQ(RedisQuantity("HOT"), expected);
  EXPECT_EQ(DatabaseQuantity("HOT"), expected);
  EXPECT_EQ(-SqlInt("SELECT coalesce(sum(delta), 0) FROM invsync_ledger WHERE sku = 'HOT'"),
            sold.load());
}

TEST_F(CdcTest, AReplayedBatchAppliesNothingTwice) {
  for (int i = 0; i < 5; ++i) {
    Insert("S" + std::to_string(i), 100);
    ASSERT_EQ(Get("S" + std::to_string(i)), 100);
  }
  for (int i = 0; i < 5; ++i) {
    Sql(fmt::format("UPDATE inventory SET quantity = quantity + {} WHERE sku = 'S{}'", i + 1, i));
  }
  // The first syncer reads the batch; before it applies it, a second one (another process, or
  // the first one restarted after a crash) applies the same rows.
  syncer::Syncer other(pool(), store(), SyncerOptions());
  bool raced = false;
  syncer::Syncer first(pool(), store(), SyncerOptions(),
                       [&](FaultPoint point, std::span<const db::Change> changes) {
                         if (point == FaultPoint::kAfterRead && !raced) {
                           raced = true;
                           EXPECT_EQ(other.RunOnce().applied, changes.size());
                         }
                       });
  auto outcome = first.RunOnce();
  ASSERT_TRUE(raced);
  EXPECT_EQ(outcome.read, 10U);  // five inserts, five updates
  EXPECT_EQ(outcome.applied, 0U);
  EXPECT_EQ(first.counters().replayed_rows.load(), 10);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(RedisQuantity("S" + std::to_string(i)), 100 + i + 1);
  }
}

TEST_F(CdcTest, ASyncerCrashAfterApplyingIsRecoveredWithoutDoubleCounting) {
  Insert("A", 1000);
  ASSERT_EQ(Get("A"), 1000);
  for (int i = 0; i < 250; ++i) {
    Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  }
  {
    int batches = 0;
    syncer::Syncer crashing(pool(), store(), SyncerOptions(),
                            [&](FaultPoint point, std::span<const db::Change>) {
                              if (point == FaultPoint::kAfterApply && ++batches == 2) {
                                throw SimulatedCrash();
                              }
                            });
    EXPECT_THROW(crashing.Run(std::stop_token()), SimulatedCrash);
  }
  EXPECT_EQ(RedisQuantity("A"), 1199);  // two batches of 100 rows: the insert and 199 updates
  syncer::Syncer restarted(pool(), store(), SyncerOptions());
  while (restarted.RunOnce().read > 0) {
  }
  EXPECT_EQ(RedisQuantity("A"), 1250);
  EXPECT_EQ(restarted.counters().replayed_rows.load(), 0);
  EXPECT_EQ(Unapplied(), 0);
}

TEST_F(CdcTest, AKilledSyncerProcessIsReplacedAndNothingIsLostOrDoubled) {
  constexpr int kSkus = 20;
  for (int i = 0; i < kSkus; ++i) {
    Insert("K" + std::to_string(i), 1000);
    ASSERT_EQ(Get("K" + std::to_string(i)), 1000);
  }
  // Several rounds: start two syncer processes, change stock, kill the active one with SIGKILL
  // while changes flow, check the standby takes over.
  std::map<std::string, std::int64_t> added;
  std::vector<std::unique_ptr<InvsyncProcess>> processes;
  auto start = [&] {
    processes.push_back(std::make_unique<InvsyncProcess>(
        INVSYNC_BINARY,
        std::vector<std::string>{"--syncer-poll-interval", "100ms", "--syncer-batch-size", "50",
                                 "--log-level", "warn", "sync"}));
  };
  auto leader = [&]() -> std::optional<std::string> {
    auto conn = pool().Acquire();
    return syncer::ReadSyncState(*conn).leader;
  };
  start();
  start();
  for (int round = 0; round < 3; ++round) {
    std::optional<std::string> active;
    ASSERT_TRUE(WaitFor([&] { return (active = leader()).has_value(); }, 10s));
    InvsyncProcess* victim = nullptr;
    for (auto& process : processes) {
      if (active->ends_with("-" + std::to_string(process->pid()))) {
        victim = process.get();
      }
    }
    ASSERT_NE(victim, nullptr) << "leader " << *active << " is none of our processes";
    std::jthread back_office([&](const std::stop_token& stop) {
      for (int n = 0; !stop.stop_requested(); ++n) {
        const std::string sku = "K" + std::to_string(n % kSkus);
        Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = '" + sku + "'");
        added[sku] += 1;
      }
    });
    std::this_thread::sleep_for(300ms);
    victim->Signal(SIGKILL);
    ASSERT_TRUE(victim->Wait(5s).has_value());
    Redis({"DEL", "invsync:syncer:leader"});  // the dead leader's announcement
    std::this_thread::sleep_for(300ms);
    back_office.request_stop();
    back_office.join();
    std::optional<std::string> successor;
    ASSERT_TRUE(WaitFor([&] { return (successor = leader()).has_value(); }, 5s))
        << "no syncer took over within 5 s";
    EXPECT_NE(*successor, *active);
    std::erase_if(processes, [&](const auto& process) { return process.get() == victim; });
    start();
  }
  ASSERT_TRUE(WaitFor([&] { return Unapplied() == 0; }, 20s));
  for (int i = 0; i < kSkus; ++i) {
    const std::string sku = "K" + std::to_string(i);
    EXPECT_EQ(RedisQuantity(sku), 1000 + added[sku]) << sku;
    EXPECT_EQ(DatabaseQuantity(sku), 1000 + added[sku]) << sku;
  }
}

TEST_F(CdcTest, OnlyOneOfTwoSyncersIsActive) {
  Insert("A", 0);
  ASSERT_EQ(Get("A"), 0);
  syncer::Syncer one(pool(), store(), SyncerOptions());
  syncer::Syncer two(pool(), store(), SyncerOptions());
  Running running_one(one);
  Running running_two(two);
  ASSERT_TRUE(WaitFor([&] { return one.counters().leader || two.counters().leader; }, 5s));
  for (int i = 0; i < 100; ++i) {
    Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
    EXPECT_FALSE(one.counters().leader && two.counters().leader);
  }
  ASSERT_TRUE(WaitFor([&] { return RedisQuantity("A") == 100; }, 5s)) << *RedisQuantity("A");
  auto& active = one.counters().leader ? one : two;
  auto& standby = one.counters().leader ? two : one;
  // The insert and the updates. The counter moves just after the batch lands in Redis.
  EXPECT_TRUE(WaitFor([&] { return active.counters().rows.load() == 101; }, 5s))
      << active.counters().rows.load();
  EXPECT_EQ(standby.counters().rows.load(), 0);
  (one.counters().leader ? running_one : running_two).Stop();
  ASSERT_TRUE(WaitFor([&] { return standby.counters().leader.load(); }, 5s));
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  ASSERT_TRUE(WaitFor([&] { return RedisQuantity("A") == 105; }, 5s));
}

// The race of ARCHITECTURE.md: a change committed between a fill's database read and its Redis
// write, which the syncer applies while the key is not cached yet.
TEST_F(CdcTest, AChangeAppliedDuringAFillIsNotLost) {
  Insert("A", 100);
  CountingStore counting(store());
  auto service = NewService(counting);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  bool changed = false;
  counting.after_read = [&] {
    if (std::exchange(changed, true)) {
      return;
    }
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
    EXPECT_EQ(syncer.RunOnce().applied, 2U);  // the insert and this; key not cached: remembered
  };
  auto result = service->Get("A");
  ASSERT_TRUE(changed);
  ASSERT_EQ(result.status, core::StockStatus::kOk);
  EXPECT_EQ(result.quantity, 107);
  EXPECT_EQ(RedisQuantity("A"), 107);
}

// A set that creates a SKU, raced by a back office inserting the same SKU: the INSERT commits and
// the syncer applies it (the SKU is not cached: it is only remembered) after a database read that
// found no row, before the set's script runs. The set comes last and means "the stock is now 5":
// Redis and the database end at 5, not at the INSERT's 55 plus the set's 5.
class CdcCreateTest : public CdcTest {
 protected:
  /// Sets "NEW" to 5 with the race above right after the `read`th database read of the set's
  /// service (1: the cache fill's, 2: the read for the creation); checks both sides once drained.
  void SetRacedByABackOfficeInsertAfterRead(int read) {
    CountingStore counting(store());
    auto service = NewService(counting);
    syncer::Syncer syncer(pool(), store(), SyncerOptions());
    bool inserted = false;
    counting.after_read = [&] {
      if (counting.reads.load() == read && !std::exchange(inserted, true)) {
        Insert("NEW", 55);
        EXPECT_EQ(syncer.RunOnce().applied, 1U);
        EXPECT_EQ(RedisQuantity("NEW"), std::nullopt);
      }
    };
    auto result = service->Set("NEW", 5, "set-new");
    ASSERT_TRUE(inserted);
    ASSERT_EQ(result.status, core::StockStatus::kOk);
    EXPECT_EQ(result.quantity, 5);
    Drain();
    syncer.RunOnce();
    EXPECT_EQ(RedisQuantity("NEW"), 5);
    EXPECT_EQ(DatabaseQuantity("NEW"), 5);
    EXPECT_EQ(Unapplied(), 0);
  }
};

TEST_F(CdcCreateTest, ASetDoesNotCreateASkuABackOfficeInsertedAfterItsReadFoundNone) {
  SetRacedByABackOfficeInsertAfterRead(2);
}

TEST_F(CdcCreateTest, ASetDoesNotCreateASkuInsertedAfterItsReadWithNegativeCachingOff) {
  stock_options.fill.absent_ttl = 0ms;  // no absent marker for the INSERT to clear
  SetRacedByABackOfficeInsertAfterRead(2);
}

TEST_F(CdcCreateTest, ASetAppliesToASkuInsertedBetweenTheFillsReadAndItsInstall) {
  SetRacedByABackOfficeInsertAfterRead(1);
}

// A change to a cached SKU goes into its key only. While a fill's database read may be in flight,
// its id is also noted under its SKU (a fill whose read predates it then reads again); otherwise no
// fill can install a read older than the change, and nothing is kept (nor expires later). Changes
// to a SKU that is not cached are remembered with their delta either way.
TEST_F(CdcTest, AnUpdateToACachedSkuIsNotedOnlyWhileAFillsReadMayBeInFlight) {
  Insert("CACHED", 100);
  Insert("COLD", 100);
  ASSERT_EQ(Get("CACHED"), 100);
  EXPECT_GT(Redis({"PTTL", Keys::kFillReadsActive}).AsInteger(), 5'000);  // set by that fill
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  syncer.RunOnce();  // the inserts: remembered (a fill may have read before them)
  Redis({"DEL", Keys::RecentChanges("CACHED"), Keys::RecentChanges("COLD"),
         Keys::kRecentChangesExist, Keys::kFillReadsActive});  // as if a minute had passed
  Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'CACHED'");
  EXPECT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(RedisQuantity("CACHED"), 107);
  EXPECT_EQ(Redis({"EXISTS", Keys::RecentChanges("CACHED"), Keys::kRecentChangesExist,
                   Keys::kCachedChanges, Keys::kCachedChangesTurnKey})
                .AsInteger(),
            0);
  Redis({"SET", Keys::kFillReadsActive, "1", "PX", "60000"});  // a fill is reading somewhere
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'CACHED'");
  EXPECT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(RedisQuantity("CACHED"), 108);
  EXPECT_EQ(Redis({"EXISTS", Keys::RecentChanges("CACHED")}).AsInteger(), 0);
  EXPECT_EQ(Redis({"HGET", Keys::kCachedChanges, "CACHED"}).AsOptionalString(),
            std::to_string(SqlInt("SELECT max(id) FROM invsync_outbox WHERE sku = 'CACHED'")));
  EXPECT_GT(Redis({"PTTL", Keys::kCachedChanges}).AsInteger(),
            2 * Keys::kCachedChangesTurn.count());
  Redis({"DEL", Keys::kFillReadsActive});
  Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'COLD'");
  EXPECT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(Redis({"HLEN", Keys::RecentChanges("COLD")}).AsInteger(), 1);
  EXPECT_EQ(Redis({"EXISTS", Keys::kRecentChangesExist}).AsInteger(), 1);
  EXPECT_EQ(Redis({"HEXISTS", Keys::kCachedChanges, "COLD"}).AsInteger(), 0);
}

// The notes of changes to cached SKUs, through apply_changes.lua itself: the highest id per SKU is
// kept whatever order its rows come in, each note lives at least one turn, and a note two turns old
// is gone. A turn ends when its key expires; the test ends each by deleting the key, so that a slow
// machine cannot end one early.
TEST_F(CdcTest, NotesOfChangesToCachedSkusKeepTheHighestIdForAtLeastOneTurn) {
  constexpr auto kTurn = 60s;
  for (const char* sku : {"A", "B", "C"}) {
    Redis({"HSET", fmt::format("inventory:{}", sku), "product_id", sku, "quantity", "100"});
  }
  Redis({"SET", Keys::kFillReadsActive, "1", "PX", "60000"});
  std::int64_t xid = 0;
  // Applies updates of 1 unit, each row {sku, id}, in the order given, in one call.
  auto apply = [&](const std::vector<std::pair<std::string, int>>& rows) {
    redis::ScriptCall call{
        .keys = {std::string(Keys::kSyncCursor), std::string(Keys::kFillPositions),
                 std::string(Keys::kRecentChangesExist), std::string(Keys::kFillReadsActive),
                 std::string(Keys::kCachedChanges), std::string(Keys::kPreviousCachedChanges),
                 std::string(Keys::kCachedChangesTurnKey)},
        .args = {"60000", "1000", std::to_string(std::chrono::milliseconds(kTurn).count())}};
    for (const auto& [sku, id] : rows) {
      call.keys.insert(call.keys.end(),
                       {"inventory:" + sku, Keys::RecentChanges(sku), Keys::Absent(sku)});
      call.args.insert(call.args.end(), {std::to_string(++xid), std::to_string(id), sku, "U", "1"});
    }
    auto conn = pool().Acquire();
    auto reply = stock().scripts().apply_changes.Run(*conn, call);
    ASSERT_EQ(reply.At(0).AsInteger(), static_cast<std::int64_t>(rows.size()));
  };
  auto end_turn = [&] {
    const auto left = Redis({"PTTL", Keys::kCachedChangesTurnKey}).AsInteger();
    EXPECT_GT(left, 0);
    EXPECT_LE(left, std::chrono::milliseconds(kTurn).count());
    Redis({"DEL", Keys::kCachedChangesTurnKey});
  };
  auto noted = [&](std::string_view hash, const std::string& sku) {
    return Redis({"HGET", hash, sku}).AsOptionalString();
  };
  apply({{"A", 20}, {"A", 15}});  // transaction order need not be id order
  apply({{"A", 12}, {"B", 21}});
  EXPECT_EQ(noted(Keys::kCachedChanges, "A"), "20");
  EXPECT_EQ(noted(Keys::kCachedChanges, "B"), "21");
  EXPECT_EQ(Redis({"EXISTS", Keys::kPreviousCachedChanges}).AsInteger(), 0);
  EXPECT_GT(Redis({"PTTL", Keys::kCachedChanges}).AsInteger(),
            2 * std::chrono::milliseconds(kTurn).count());  // outlives two turns
  end_turn();
  apply({{"C", 30}});  // a turn: A and B move to the previous hash
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "A"), "20");
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "B"), "21");
  EXPECT_EQ(noted(Keys::kCachedChanges, "C"), "30");
  EXPECT_EQ(noted(Keys::kCachedChanges, "A"), std::nullopt);
  apply({{"A", 31}});  // within the turn: no other
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "B"), "21");
  end_turn();
  apply({{"B", 40}});  // another turn: A and B's notes from two turns ago are gone
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "A"), "31");
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "C"), "30");
  EXPECT_EQ(noted(Keys::kPreviousCachedChanges, "B"), std::nullopt);
  EXPECT_EQ(noted(Keys::kCachedChanges, "B"), "40");
  end_turn();
  Redis({"DEL", Keys::kCachedChanges});  // nothing noted for a whole turn
  apply({{"C", 50}});
  EXPECT_EQ(Redis({"EXISTS", Keys::kPreviousCachedChanges}).AsInteger(), 0);
  EXPECT_EQ(noted(Keys::kCachedChanges, "C"), "50");
}

// A fill reads again when an update it did not read was applied to the SKU's key meanwhile,
// whichever of the two hashes notes it, and installs its read when the noted update is included.
TEST_F(CdcTest, AFillReadsAgainWhenANotedUpdateIsNewerThanItsRead) {
  auto fill = [&](std::int64_t seq) {
    redis::ScriptCall call{
        .keys = {std::string(Keys::kInflight), std::string(Keys::kPersisted),
                 std::string(Keys::kFillPositions), std::string(Keys::kRecentChangesExist),
                 std::string(Keys::kAbsentMarkersExist), std::string(Keys::kCachedChanges),
                 std::string(Keys::kPreviousCachedChanges), std::string(Keys::kEpoch),
                 "inventory:A", Keys::Absent("A"), Keys::RecentChanges("A")},
        .args = {"0", "3", Redis({"GET", Keys::kEpoch}).AsOptionalString().value_or(""), "A", "100",
                 "1", "0", std::to_string(seq)}};
    auto conn = pool().Acquire();
    return stock().scripts().fill.Run(*conn, call).At(0).AsString();
  };
  Redis({"HSET", Keys::kCachedChanges, "A", "20"});
  EXPECT_EQ(fill(19), "r");
  Redis({"DEL", Keys::kCachedChanges});
  Redis({"HSET", Keys::kPreviousCachedChanges, "A", "20"});
  EXPECT_EQ(fill(19), "r");
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  EXPECT_EQ(fill(20), "F");
  EXPECT_EQ(RedisQuantity("A"), 100);
}

// A key deleted by hand leaves fills no sign. Between a fill's read and its install: a back office
// adds 7, another process loads the SKU with the change, the syncer finds it cached with the change
// already loaded, and an operator deletes the key. The fill must not install its older read.
class CdcHandDeleteTest : public CdcTest {
 protected:
  /// The race above for SKU "A" (quantity 100), run from a hook after the fill's read. The other
  /// process loads A after the change (the syncer leaves the key alone), or before it (the syncer
  /// adds the change to the key).
  void ChangeLoadApplyAndDelete(syncer::Syncer& syncer, bool loaded_before_change = false) {
    if (loaded_before_change) {
      InstallAsAnotherFill("A", 100);
    }
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
    if (!loaded_before_change) {
      InstallAsAnotherFill("A", 107);
    }
    EXPECT_EQ(syncer.RunOnce().applied, 1U);
    EXPECT_EQ(syncer.counters().cached_rows.load(), loaded_before_change ? 1 : 0);
    EXPECT_EQ(RedisQuantity("A"), 107);
    Redis({"DEL", "inventory:A"});
  }

  /// A single-SKU fill (`Get`) of "A" with the race above after its read: it ends with the change.
  void RaceASingleSkuFill(bool loaded_before_change) {
    Insert("A", 100);
    CountingStore counting(store());
    auto service = NewService(counting);
    syncer::Syncer syncer(pool(), store(), SyncerOptions());
    syncer.RunOnce();  // the insert
    bool changed = false;
    counting.after_read = [&] {
      if (!std::exchange(changed, true)) {
        ChangeLoadApplyAndDelete(syncer, loaded_before_change);
      }
    };
    auto result = service->Get("A");
    ASSERT_TRUE(changed);
    EXPECT_EQ(result.quantity, 107);
    EXPECT_EQ(RedisQuantity("A"), 107);
    EXPECT_EQ(DatabaseQuantity("A"), 107);
  }
};

TEST_F(CdcHandDeleteTest, AKeyDeletedByHandDoesNotLetAFillInstallAReadOlderThanAChange) {
  RaceASingleSkuFill(/*loaded_before_change=*/false);
}

TEST_F(CdcHandDeleteTest,
       AKeyDeletedByHandAfterTheSyncerAddedAChangeDoesNotLetAFillInstallAnOlderRead) {
  RaceASingleSkuFill(/*loaded_before_change=*/true);
}

TEST_F(CdcHandDeleteTest, AKeyDeletedByHandDoesNotLetAManySkuFillInstallAReadOlderThanAChange) {
  Insert("A", 100);
  Insert("B", 50);
  CountingStore counting(store());
  auto service = NewService(counting);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  syncer.RunOnce();  // the inserts
  bool changed = false;
  counting.after_batch_read = [&] {
    if (!std::exchange(changed, true)) {
      ChangeLoadApplyAndDelete(syncer);
    }
  };
  const std::vector<std::string> skus{"A", "B"};
  auto result = service->GetMany(skus);
  ASSERT_TRUE(changed);
  EXPECT_EQ(RedisQuantity("A"), 107);
  EXPECT_EQ(RedisQuantity("B"), 50);
  EXPECT_EQ(DatabaseQuantity("A"), 107);
}

// A cached key that the syncer drops (its update would overflow 64 bits) leaves fills a sign: a
// fill whose read predates the update, finding no key, reads again instead of installing a value
// without it.
TEST_F(CdcTest, AKeyDroppedByAnUpdateMakesAFillThatReadBeforeItReadAgain) {
  constexpr std::int64_t kLarge = std::numeric_limits<std::int64_t>::max() - 1000;
  Insert("A", kLarge);
  CountingStore counting(store());
  auto service = NewService(counting);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  syncer.RunOnce();  // the insert
  Redis({"DEL", Keys::RecentChanges("A"), Keys::kRecentChangesExist});
  bool changed = false;
  counting.after_read = [&] {
    if (std::exchange(changed, true)) {
      return;
    }
    // Another process installs the SKU meanwhile, a value too large to take the update.
    Redis({"HSET", "inventory:A", "product_id", "A", "quantity",
           std::to_string(std::numeric_limits<std::int64_t>::max())});
    Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
    EXPECT_EQ(syncer.RunOnce().applied, 1U);
    EXPECT_EQ(RedisQuantity("A"), std::nullopt);  // dropped
  };
  auto result = service->Get("A");
  ASSERT_TRUE(changed);
  ASSERT_EQ(result.status, core::StockStatus::kOk);
  EXPECT_EQ(result.quantity, kLarge + 7);
  EXPECT_EQ(RedisQuantity("A"), kLarge + 7);
  EXPECT_EQ(syncer.counters().dropped_keys.load(), 1);
}

// The converse: a change the fill's read already included, applied by the syncer afterwards.
TEST_F(CdcTest, AChangeTheFillAlreadyReadIsNotAppliedAgain) {
  Insert("A", 100);
  Sql("UPDATE inventory SET quantity = quantity + 7 WHERE sku = 'A'");
  ASSERT_EQ(Get("A"), 107);  // the syncer has not run: the fill read the change
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  EXPECT_EQ(syncer.RunOnce().read, 2U);  // the insert and the update
  EXPECT_EQ(RedisQuantity("A"), 107);
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  syncer.RunOnce();
  EXPECT_EQ(RedisQuantity("A"), 108);
}

TEST_F(CdcTest, AnInsertAfterANegativeCacheEntryIsVisible) {
  stock_options.fill.absent_ttl = 60s;  // longer than the test: only the syncer can clear it
  ASSERT_EQ(Get("LATE"), std::nullopt);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Insert("LATE", 3);
  syncer.RunOnce();
  EXPECT_EQ(Get("LATE"), 3);
}

TEST_F(CdcTest, ChangesBehindAnOpenPostgresTransactionWaitForIt) {
  Insert("A", 10);
  Insert("B", 10);
  ASSERT_EQ(Get("A"), 10);
  ASSERT_EQ(Get("B"), 10);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  while (syncer.RunOnce().read > 0) {
  }
  // An older transaction takes its outbox id last: a reader going by id alone would skip it.
  db::detail::PgConnection slow(TestDatabaseUrl());
  slow.ExecScript("BEGIN; SELECT pg_current_xact_id()");
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'B'");
  auto held = syncer.RunOnce();
  EXPECT_EQ(held.read, 0U);
  EXPECT_TRUE(held.held_back);
  slow.ExecScript("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'; COMMIT");
  while (syncer.RunOnce().read > 0) {
  }
  EXPECT_EQ(RedisQuantity("A"), 15);
  EXPECT_EQ(RedisQuantity("B"), 11);
}

// Transaction ids compared as numbers, not as text ("10" sorts before "9").
TEST_F(CdcTest, OutboxRowsComeInNumericPostgresTransactionOrder) {
  Sql("INSERT INTO invsync_outbox (xid, sku, kind, delta) VALUES ('10'::xid8, 'A', 'U', 1), "
      "('9'::xid8, 'A', 'U', 2), ('100'::xid8, 'A', 'U', 3)");
  auto batch = store().ReadChanges({}, 10);
  ASSERT_EQ(batch.changes.size(), 3U);
  EXPECT_EQ(batch.changes[0].position.xid, 9);
  EXPECT_EQ(batch.changes[1].position.xid, 10);
  EXPECT_EQ(batch.changes[2].position.xid, 100);
  auto after = store().ReadChanges(batch.changes[0].position, 10);
  ASSERT_EQ(after.changes.size(), 2U);
  EXPECT_EQ(after.changes[0].position.xid, 10);
}

TEST_F(CdcTest, AppliedRowsArePrunedAfterTheRetention) {
  Insert("A", 1);
  for (int i = 0; i < 10; ++i) {
    Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  }
  syncer::Syncer syncer(pool(), store(), PruningAtOnce());
  syncer.RunOnce();
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");  // not applied yet
  EXPECT_EQ(syncer.Prune(), 11);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 1);
  syncer.RunOnce();
  EXPECT_EQ(Get("A"), 12);
}

// A syncer that catches up on changes already older than the retention (it was stopped, or
// Redis was down, for longer) remembers those of SKUs not cached for fills, and prunes them at
// once. A fill reading the database afterwards must still know its read includes them.
TEST_F(CdcTest, AFillAfterPruningDoesNotAddAChangeItsReadIncludes) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), PruningAtOnce());
  syncer.RunOnce();
  Redis({"DEL", "invsync:recent:A"});  // the insert is long past: its note has expired
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  syncer.RunOnce();  // A is not cached: the update is remembered for fills
  EXPECT_EQ(syncer.Prune(), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 1) << "each SKU's newest row stays";
  EXPECT_EQ(Get("A"), 105);
  EXPECT_EQ(RedisQuantity("A"), 105);
}

TEST_F(CdcTest, AFillAfterPruningIsNotHeldBackByAnInsertItsReadIncludes) {
  Insert("A", 7);
  syncer::Syncer syncer(pool(), store(), PruningAtOnce());
  syncer.RunOnce();  // A is not cached: the insert is remembered for fills
  EXPECT_EQ(syncer.Prune(), 0);
  EXPECT_EQ(Get("A"), 7);
}

// After the database is restored to an earlier point in time (or moved to a new cluster), the
// cursor Redis kept lies ahead of every change still to come: used as it is, it skips them all,
// reports none as unapplied and lets pruning delete them. The syncer must apply and prune nothing
// until the cursor is reset, and take the changes made after the reset.
TEST_F(CdcTest, ACursorAheadOfTheDatabaseAppliesAndPrunesNothingUntilItIsReset) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), PruningAtOnce());
  ASSERT_EQ(syncer.RunOnce().applied, 1U);
  ASSERT_EQ(Get("A"), 100);
  Redis({"SET", Keys::kSyncCursor, CursorAheadOfTheDatabase()});
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");

  EXPECT_THROW(syncer.RunOnce(), syncer::CursorMismatchError);
  EXPECT_THROW(syncer.Prune(), syncer::CursorMismatchError);
  EXPECT_THROW((void)syncer.ReadBacklog(), syncer::CursorMismatchError)
      << "a backlog of 0 hides it";
  {
    Running running(syncer);
    EXPECT_TRUE(WaitFor([&] { return syncer.counters().cursor_mismatch.load(); }, 5s));
    running.Stop();
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 3) << "unapplied rows were pruned";
  EXPECT_EQ(RedisQuantity("A"), 100);

  // The way out (cli_test runs it as an operator would, with the repair that brings in the two
  // changes made before the reset): changes from then on reach Redis.
  {
    auto conn = pool().Acquire();
    syncer::ResetCursor(*conn, store());
  }
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  EXPECT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(RedisQuantity("A"), 101);
  EXPECT_EQ(syncer.ReadBacklog().rows, 0);
}

TEST_F(CdcTest, ACursorWrittenForAnotherDatabaseIsNotUsed) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  ASSERT_EQ(syncer.RunOnce().applied, 1U);
  ASSERT_EQ(Get("A"), 100);
  // Redis now works with a database that is not the one its cursor was written for.
  Sql("UPDATE invsync_meta SET value = 'another-database' WHERE key = 'database_id'");
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  try {
    syncer.RunOnce();
    ADD_FAILURE() << "a cursor of another database was used";
  } catch (const syncer::CursorMismatchError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("but the database is another-database"), std::string::npos) << what;
    EXPECT_NE(what.find("invsync reconcile --repair --reset-cursor"), std::string::npos) << what;
  }
  EXPECT_EQ(RedisQuantity("A"), 100);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 2);
}

TEST_F(CdcTest, AFreshRedisAndACursorKeptWithoutIdentityAdoptTheDatabase) {
  const auto database_id = Sql("SELECT value FROM invsync_meta WHERE key = 'database_id'");
  ASSERT_TRUE(database_id.has_value() && database_id->size() >= 16) << "no identity migrated";
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  ASSERT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(Redis({"GET", Keys::kSyncDatabase}).AsOptionalString(), database_id);
  ASSERT_EQ(Get("A"), 100);
  // A cursor written by a version that kept no identity, checked against the history only.
  Redis({"DEL", Keys::kSyncDatabase});
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  EXPECT_EQ(syncer.RunOnce().applied, 1U);
  EXPECT_EQ(RedisQuantity("A"), 105);
  EXPECT_EQ(Redis({"GET", Keys::kSyncDatabase}).AsOptionalString(), database_id);
}

// The wait for changes lasts up to the poll interval (up to minutes); a stop must not wait it out.
TEST_F(CdcTest, StoppingASyncerWithALongPollIntervalTakesLessThanASecond) {
  auto options = SyncerOptions();
  options.poll = 30s;
  syncer::Syncer syncer(pool(), store(), options);
  Running running(syncer);
  ASSERT_TRUE(WaitFor([&] { return syncer.counters().leader.load(); }, 5s));
  std::this_thread::sleep_for(300ms);  // past its first batch, waiting for changes
  const auto start = Clock::now();
  running.Stop();
  EXPECT_LT(Clock::now() - start, 1s);
}

TEST_F(CdcTest, TheSyncerSurvivesAPostgresOutageAndCatchesUp) {
  Insert("A", 100);
  ASSERT_EQ(Get("A"), 100);
  auto options = SyncerOptions();
  options.max_backoff = 300ms;
  syncer::Syncer syncer(pool(), store(), options);
  Running running(syncer);
  ASSERT_TRUE(WaitFor([&] { return syncer.counters().leader.load(); }, 5s));
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  ASSERT_TRUE(TimeUntilVisible("A", 101));
  {
    DatabaseOutage outage;
    outage.Begin();
    std::this_thread::sleep_for(3s);
    EXPECT_FALSE(syncer.counters().leader.load()) << "the syncer did not notice the outage";
    EXPECT_EQ(RedisQuantity("A"), 101);  // Redis keeps serving what it has
    outage.End();
  }
  // The pool's old connections are dead: the first statements may fail and are retried.
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          Sql("UPDATE inventory SET quantity = quantity + 10 WHERE sku = 'A'");
          return true;
        } catch (const Error&) {
          return false;
        }
      },
      20s));
  EXPECT_TRUE(TimeUntilVisible("A", 111, 10s)) << "the syncer did not catch up after the outage";
  EXPECT_GT(syncer.counters().errors.load(), 0);
}

TEST_F(CdcTest, RedisFlushedMidRunRecoversAndConverges) {
  constexpr int kSkus = 8;
  for (int i = 0; i < kSkus; ++i) {
    Insert("F" + std::to_string(i), 100'000);
  }
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running_syncer(syncer);
  persister::Persister persister(pool(), store(), persister_options);
  Running running_persister(persister);
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> answered{0};
  std::atomic<std::int64_t> errors{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 8; ++t) {
    buyers.emplace_back([&, t] {
      for (int n = 0; !done.load(); ++n) {
        try {
          auto result = stock().Deduct(fmt::format("f-{}-{}", t, n),
                                       {{"F" + std::to_string((t + n) % kSkus), 1}});
          EXPECT_EQ(result.status, core::StockStatus::kOk);
          answered.fetch_add(1);
        } catch (const Error&) {
          errors.fetch_add(1);
        }
      }
    });
  }
  std::jthread back_office([&](const std::stop_token& stop) {
    for (int n = 0; !stop.stop_requested(); ++n) {
      Sql(fmt::format("UPDATE inventory SET quantity = quantity + 2 WHERE sku = 'F{}'", n % kSkus));
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  Redis({"FLUSHALL"});
  const auto at_flush = answered.load();
  std::this_thread::sleep_for(1s);
  EXPECT_GT(answered.load(), at_flush + 100) << "orders stopped being answered after FLUSHALL";
  back_office.request_stop();
  back_office.join();
  done = true;
  buyers.clear();
  WaitForQuiet();
  running_persister.Stop();
  running_syncer.Stop();
  ExpectRedisMatchesDatabase();
  for (int i = 0; i < kSkus; ++i) {
    EXPECT_EQ(Get("F" + std::to_string(i)), DatabaseQuantity("F" + std::to_string(i)));
  }
}

TEST_F(CdcTest, AMalformedOutboxRowDropsItsKeyAndDoesNotStopTheSyncer) {
  Insert("A", 100);
  Insert("B", 10);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running(syncer);
  ASSERT_EQ(Get("A"), 100);
  ASSERT_EQ(Get("B"), 10);
  Redis({"HSET", "inventory:A", "quantity", "55"});  // a value the reload must replace
  // A row no trigger writes: an unknown kind, as a hand-written INSERT could leave.
  Sql("INSERT INTO invsync_outbox (sku, kind, delta) VALUES ('A', 'X', 5)");
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'B'");

  ASSERT_TRUE(TimeUntilVisible("B", 15)) << "the syncer stopped at the malformed row";
  EXPECT_EQ(RedisQuantity("A"), std::nullopt) << "the malformed row's key was not dropped";
  EXPECT_EQ(Get("A"), 100);
  EXPECT_EQ(syncer.counters().malformed_rows.load(), 1);
  running.Stop();
  EXPECT_EQ(Unapplied(), 0);
}

// PostgreSQL's bigint column refuses a quantity that is not an integer; SQLite's INTEGER column
// would keep it (and its arithmetic reads 'abc' as 0, so the capture would record a plausible
// delta): a trigger refuses it there too, and the statement changes nothing.
TEST_F(CdcTest, AQuantityThatIsNotAnIntegerIsRefusedByTheDatabase) {
  Insert("A", 100);
  Insert("B", 10);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running(syncer);
  ASSERT_EQ(Get("A"), 100);
  ASSERT_EQ(Get("B"), 10);
  const auto outbox = SqlInt("SELECT count(*) FROM invsync_outbox");
  std::vector<std::string> values = {"'abc'", "'100abc'"};
  if (TestOnSqlite()) {
    values.emplace_back("1.5");  // PostgreSQL rounds it to an integer when it assigns it
  }
  for (const auto& value : values) {
    EXPECT_THROW(Sql("UPDATE inventory SET quantity = " + value + " WHERE sku = 'A'"), Error)
        << value;
    EXPECT_THROW(Sql("INSERT INTO inventory (sku, quantity) VALUES ('C', " + value + ")"), Error)
        << value;
  }
  Sql("UPDATE inventory SET quantity = 9223372036854775807 WHERE sku = 'B'");
  EXPECT_THROW(Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'B'"), Error)
      << "an overflowing sum";
  Sql("UPDATE inventory SET quantity = 15 WHERE sku = 'B'");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), outbox + 2);  // B's two updates
  EXPECT_EQ(DatabaseQuantity("A"), 100);
  EXPECT_EQ(DatabaseQuantity("C"), std::nullopt);
  ASSERT_TRUE(TimeUntilVisible("B", 15));
  EXPECT_EQ(Get("A"), 100);
  EXPECT_EQ(syncer.counters().malformed_rows.load(), 0);
}

TEST_F(CdcTest, AnUpdateRedisCannotAddReloadsTheKeyFromTheDatabase) {
  Insert("A", 100);
  syncer::Syncer syncer(pool(), store(), SyncerOptions());
  Running running(syncer);
  ASSERT_EQ(Get("A"), 100);
  // A cached value near the 64-bit limit (tampered with): adding the delta would overflow.
  Redis({"HSET", "inventory:A", "quantity", "9223372036854775800"});
  Sql("UPDATE inventory SET quantity = quantity + 1000 WHERE sku = 'A'");
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");

  ASSERT_TRUE(TimeUntilVisible("A", 1101)) << "the key was not reloaded from the database";
  // The reload may show both updates before the syncer has passed the second.
  EXPECT_TRUE(WaitFor([&] { return Unapplied() == 0; }, 5s));
  running.Stop();
  EXPECT_EQ(syncer.counters().dropped_keys.load(), 1);
  EXPECT_EQ(RedisQuantity("A"), 1101) << "the second update was applied over the reload";
}

}  // namespace
}  // namespace invsync::testing
