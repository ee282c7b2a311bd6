// The persister under failure: a crash between reading, committing and acknowledging a batch, a
// killed persister process, a database outage or restart, a malformed stream entry, a replayed
// event. Each must end with every accepted change in the database exactly once, Redis and the
// database equal, and nothing left in the stream.
#include "persister/persister.hpp"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/connection_pool.hpp"
#include "common/error.hpp"
#include "core/keys.hpp"
#include "db/detail/pg.hpp"
#include "db/store.hpp"
#include "persister/persister_threads.hpp"
#include "process.hpp"
#include "servers.hpp"

// POSIX: unistd.h declares it only under _GNU_SOURCE.

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;
using core::Keys;
using persister::FaultPoint;
using Clock = std::chrono::steady_clock;

/// SKUs the orders spread over; each starts at kInitialStock through one `set` event.
const std::vector<std::string> kSkus = {"sku-a", "sku-b", "sku-c", "sku-d"};
constexpr std::int64_t kInitialStock = 1'000'000;
const auto kSeedEvents = static_cast<std::int64_t>(kSkus.size());

/// Stands for the persister process dying at a fault point. Deliberately not an invsync::Error:
/// Persister::Run does not catch it, so it unwinds out of Run with the batch in hand, as a crash.
class SimulatedCrash : public std::runtime_error {
 public:
  SimulatedCrash() : std::runtime_error("simulated persister crash") {}
};

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.

/// What the accepted orders sold: what Redis and the database must show once all is persisted.
struct Sales {
  std::map<std::string, std::int64_t> units;   ///< per SKU
  std::map<std::string, std::int64_t> orders;  ///< per SKU; every order has one line
  std::int64_t accepted = 0;
  std::int64_t failed = 0;  ///< refused or thrown; with ample stock there must be none

  void Add(const Sales& other) {
    for (const auto& [sku, units_sold] : other.units) {
      units[sku] += units_sold;
    }
    for (const auto& [sku, count] : other.orders) {
      orders[sku] += count;
    }
    accepted += other.accepted;
    failed += other.failed;
  }
};

/// Places order number `n` (one line, SKU and quantity derived from `n`) and records the outcome.
/// Returns whether it was accepted.
bool PlaceOrder(core::StockService& stock, const std::string& prefix, std::int64_t n,
                Sales& sales) {
  const std::string& sku = kSkus[static_cast<std::size_t>(n) % kSkus.size()];
  const std::int64_t quantity = 1 + (n / kSeedEvents) % 3;
  try {
    auto result = stock.Deduct(prefix + "-" + std::to_string(n), {{sku, quantity}});
    if (result.status == core::StockStatus::kOk && !result.replayed) {
      sales.units[sku] += quantity;
      sales.orders[sku] += 1;
      sales.accepted += 1;
      return true;
    }
  } catch (const Error&) {
    // Counted below: a deduction must not fail for any infrastructure reason here.
  }
  sales.failed += 1;
  return false;
}

/// Places orders `prefix`-0 … `prefix`-(count-1) from `threads` threads.
Sales PlaceOrders(core::StockService& stock, const std::string& prefix, std::int64_t count,
                  int threads) {
  Sales total;
  std::mutex mutex;
  {
    std::vector<std::jthread> workers;
    workers.reserve(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        Sales mine;
        for (std::int64_t n = t; n < count; n += threads) {
          PlaceOrder(stock, prefix, n, mine);
        }
        std::lock_guard lock(mutex);
        total.Add(mine);
      });
    }
  }
  return total;
}

/// Orders placed continuously from several threads until Stop().
class OrderTraffic {
 public:
  OrderTraffic(core::StockService& stock, const std::string& prefix, int threads) {
    workers_.reserve(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, &stock, prefix, t, threads](const std::stop_token& stop) {
        Sales mine;
        for (std::int64_t n = t; !stop.stop_requested(); n += threads) {
          if (PlaceOrder(stock, prefix, n, mine)) {
            accepted_.fetch_add(1);
          } else {
            failed_.fetch_add(1);
          }
        }
        std::lock_guard lock(mutex_);
        total_.Add(mine);
      });
    }
  }

  [[nodiscard]] std::int64_t accepted() const { return accepted_.load(); }
  [[nodiscard]] std::int64_t failed() const { return failed_.load(); }

  Sales Stop() {
    for (auto& worker : workers_) {
      worker.request_stop();
    }
    workers_.clear();  // joins
    return total_;
  }

 private:
  std::atomic<std::int64_t> accepted_{0};
  std::atomic<std::int64_t> failed_{0};
  std::mutex mutex_;
  Sales total_;
  std::vector<std::jthread> workers_;  // last: stopped and joined before the rest goes
};

/// What a persister that crashed at a fault point left behind.
struct Crash {
  bool happened = false;
  std::vector<std::string> batch_event_ids;  ///< events of the batch in hand when it crashed
  std::int64_t committed_events = 0;         ///< events of all batches that reached the commit
};

/// What a recovering persister did.
struct Recovery {
  std::int64_t events = 0;
  std::int64_t duplicate_rows = 0;
  std::int64_t dead_letters = 0;
};

class PersisterTest : public ServersTest {
 protected:
  /// Redis restarted from an append-only file that lacks its last writes (appendfsync everysec
  /// and an operating-system crash), simulated by restoring a dump of every key taken earlier:
  /// A is back at 1000 in Redis while the database holds the 50 orders since (950).
  void LoseFiftyPersistedOrders() {
    ASSERT_EQ(stock().Set("A", 1000, "seed").status, core::StockStatus::kOk);
    Drain();
    std::vector<std::pair<std::string, std::string>> snapshot;  // key, DUMP
    for (const auto& key : Redis({"KEYS", "*"}).elements) {
      snapshot.emplace_back(key.AsString(), Redis({"DUMP", key.AsString()}).AsString());
    }
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(stock().Deduct("lost-" + std::to_string(i), {{"A", 1}}).status,
                core::StockStatus::kOk);
    }
    Drain();
    ASSERT_EQ(DatabaseQuantity("A"), 950);
    Redis({"FLUSHALL"});
    for (const auto& [key, dump] : snapshot) {
      Redis({"RESTORE", key, "0", dump, "REPLACE"});
    }
    ASSERT_EQ(RedisQuantity("A"), 1000) << "the simulated loss did not take";
  }

  void SeedSkus() {
    for (const auto& sku : kSkus) {
      auto result = stock().Set(sku, kInitialStock, "seed-" + sku);
      ASSERT_EQ(result.status, core::StockStatus::kOk) << sku;
    }
  }

  std::int64_t LedgerRows() { return SqlInt("SELECT count(*) FROM invsync_ledger"); }

  /// Ledger rows of the given events.
  std::int64_t LedgerRowsOf(const std::vector<std::string>& event_ids) {
    std::string list;
    for (const auto& id : event_ids) {
      list += (list.empty() ? "'" : ",'") + id + "'";  // ids are visible ASCII without quotes
    }
    return list.empty()
               ? 0
               : SqlInt("SELECT count(*) FROM invsync_ledger WHERE event_id IN (" + list + ")");
  }

  /// Runs `persister` until no event is unpersisted or counted in flight; whether that happened.
  bool RunUntilSettled(persister::Persister& persister) {
    std::jthread running([&](const std::stop_token& stop) { persister.Run(stop); });
    return WaitFor(
        [&] {
          return Unpersisted() == 0 && Redis({"HLEN", Keys::kInflight}).AsInteger() == 0;
        },
        30s);
  }

  persister::StreamLag Lag() {
    auto conn = pool().Acquire();
    return persister::ReadLag(*conn, stock().scripts());
  }

  /// Runs a persister with a hook that throws SimulatedCrash at `point` of batch `crash_batch`.
  Crash RunPersisterUntilCrash(FaultPoint point, int crash_batch) {
    Crash crash;
    int batches = 0;  // the hook runs on the persister's thread only
    auto hook = [&](FaultPoint at, std::span<const db::StockEvent> events) {
      if (at == FaultPoint::kAfterCommit) {
        crash.committed_events += static_cast<std::int64_t>(events.size());
      }
      if (at != point || ++batches < crash_batch) {
        return;
      }
      for (const auto& event : events) {
        crash.batch_event_ids.push_back(event.EventId());
      }
      throw SimulatedCrash();
    };
    persister::Persister persister(pool(), store(), persister_options, hook);
    std::stop_source stop;
    std::atomic<bool> ended{false};
    std::thread thread([&] {
      try {
        persister.Run(stop.get_token());
      } catch (const SimulatedCrash&) {
        crash.happened = true;
      }
      ended = true;
    });
    const bool ended_in_time = WaitFor([&] { return ended.load(); }, 30s);
    stop.request_stop();
    thread.join();
    EXPECT_TRUE(ended_in_time) << "the persister never reached batch " << crash_batch;
    return crash;
  }

  /// A new persister (another consumer) runs until nothing is left unpersisted.
  Recovery RecoverWithNewPersister(Clock::duration limit = 30s) {
    persister::Persister persister(pool(), store(), persister_options);
    const auto deadline = Clock::now() + limit;
    while (Unpersisted() > 0) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "the recovering persister did not drain the stream in time";
        break;
      }
      try {
        static_cast<void>(persister.RunOnce(50ms));
      } catch (const TransientError&) {
        std::this_thread::sleep_for(50ms);
      }
    }
    const auto& counters = persister.counters();
    return {counters.events.load(), counters.duplicate_rows.load(), counters.dead_letters.load()};
  }

  /// One batch run by a persister that stalls after its commit until the batch has been idle for
  /// longer than the claim time, calls `meanwhile` with the batch's size, then acknowledges late.
  struct StalledRun {
    std::size_t batch = 0;    ///< events in the stalled batch
    std::int64_t events = 0;  ///< events the stalled persister counted as persisted
  };
  StalledRun RunBatchStalledAfterCommit(const std::function<void(std::size_t batch)>& meanwhile) {
    persister_options.claim_idle = 200ms;
    StalledRun run;
    auto stall = [&](FaultPoint at, std::span<const db::StockEvent> events) {
      if (at != FaultPoint::kAfterCommit || run.batch > 0) {
        return;
      }
      run.batch = events.size();
      std::this_thread::sleep_for(300ms);  // the batch is now idle for longer than claim_idle
      meanwhile(run.batch);
    };
    persister::Persister stalled(pool(), store(), persister_options, stall);
    static_cast<void>(stalled.RunOnce(50ms));
    run.events = stalled.counters().events.load();
    return run;
  }

  /// The outcome after everything is persisted: one ledger row per accepted order and seed,
  /// sums matching the sales, both sides equal, and nothing left in flight.
  void ExpectPersistedExactlyOnce(const Sales& sales, std::int64_t dead_letters = 0) {
    EXPECT_EQ(Unpersisted(), 0);
    EXPECT_EQ(Redis({"HLEN", Keys::kInflight}).AsInteger(), 0);
    EXPECT_EQ(Redis({"XLEN", Keys::kDeadLetters}).AsInteger(), dead_letters);
    EXPECT_EQ(LedgerRows(), sales.accepted + kSeedEvents);
    EXPECT_EQ(SqlInt("SELECT count(DISTINCT event_id) FROM invsync_ledger"),
              sales.accepted + kSeedEvents);
    for (const auto& sku : kSkus) {
      SCOPED_TRACE(sku);
      const std::string where = " FROM invsync_ledger WHERE sku = '" + sku + "'";
      const std::int64_t units = sales.units.contains(sku) ? sales.units.at(sku) : 0;
      const std::int64_t orders = sales.orders.contains(sku) ? sales.orders.at(sku) : 0;
      EXPECT_EQ(SqlInt("SELECT count(*)" + where + " AND kind = 'deduct'"), orders);
      EXPECT_EQ(SqlInt("SELECT sum(delta)" + where + " AND kind = 'deduct'"), -units);
      // The SKU was created by its seed event, so its whole ledger sums to its stock.
      EXPECT_EQ(SqlInt("SELECT sum(delta)" + where), kInitialStock - units);
      EXPECT_EQ(DatabaseQuantity(sku), kInitialStock - units);
      EXPECT_EQ(RedisQuantity(sku), kInitialStock - units);
    }
  }
};

TEST_F(PersisterTest, PersisterCrashBetweenCommitAndAckAppliesEachEventOnce) {
  SeedSkus();
  const Sales sales = PlaceOrders(stock(), "o", 2000, 4);
  ASSERT_EQ(sales.failed, 0);

  const Crash crash = RunPersisterUntilCrash(FaultPoint::kAfterCommit, 3);
  ASSERT_TRUE(crash.happened);
  const auto batch = static_cast<std::int64_t>(crash.batch_event_ids.size());
  ASSERT_GT(batch, 0);
  // The crashed batch is committed but still pending in the stream: it will be delivered again.
  EXPECT_EQ(LedgerRows(), crash.committed_events);
  EXPECT_EQ(LedgerRowsOf(crash.batch_event_ids), batch);
  EXPECT_EQ(Lag().pending, batch);

  const Recovery recovery = RecoverWithNewPersister();
  EXPECT_EQ(recovery.duplicate_rows, batch) << "the redelivered batch must change nothing";
  ExpectPersistedExactlyOnce(sales);
}

TEST_F(PersisterTest, PersisterCrashBetweenReadAndCommitLosesNothing) {
  SeedSkus();
  const Sales sales = PlaceOrders(stock(), "o", 2000, 4);
  ASSERT_EQ(sales.failed, 0);

  const Crash crash = RunPersisterUntilCrash(FaultPoint::kAfterRead, 3);
  ASSERT_TRUE(crash.happened);
  const auto batch = static_cast<std::int64_t>(crash.batch_event_ids.size());
  ASSERT_GT(batch, 0);
  // The crashed batch was read (pending) but never written.
  EXPECT_EQ(LedgerRows(), crash.committed_events);
  EXPECT_EQ(LedgerRowsOf(crash.batch_event_ids), 0);
  EXPECT_EQ(Lag().pending, batch);

  const Recovery recovery = RecoverWithNewPersister();
  EXPECT_EQ(recovery.duplicate_rows, 0);
  EXPECT_EQ(recovery.events, sales.accepted + kSeedEvents - crash.committed_events);
  ExpectPersistedExactlyOnce(sales);
}

TEST_F(PersisterTest, KilledPersisterProcessMidBatchIsRecovered) {
  SeedSkus();
  const Sales sales = PlaceOrders(stock(), "k", 50'000, 8);
  ASSERT_EQ(sales.failed, 0);
  const std::int64_t events = sales.accepted + kSeedEvents;
  ASSERT_EQ(Unpersisted(), events);

  // Kill a persister while it holds a batch: some rows written, entries delivered to it and not
  // acknowledged. Between acknowledging one batch and reading the next it holds none, so a kill
  // that lands there is tried again with another process.
  bool killed_holding_batch = false;
  for (int attempt = 0; attempt < 3 && !killed_holding_batch; ++attempt) {
    const std::int64_t rows_before = LedgerRows();
    const std::int64_t pending_before = Lag().pending;
    InvsyncProcess victim(INVSYNC_BINARY, {"persist", "--persister-batch-size", "500"});
    ASSERT_TRUE(
        WaitFor([&] { return LedgerRows() > rows_before && Lag().pending > pending_before; }, 30s))
        << "the persister process wrote nothing";
    victim.Signal(SIGKILL);
    auto status = victim.Wait(10s);
    ASSERT_TRUE(status.has_value());
    ASSERT_TRUE(WIFSIGNALED(*status));
    const auto lag = Lag();
    ASSERT_LT(LedgerRows(), events) << "the persister finished before it could be killed";
    ASSERT_GT(lag.unpersisted(), 0);
    killed_holding_batch = lag.pending > pending_before;
  }
  ASSERT_TRUE(killed_holding_batch) << "every kill landed between two batches";

  InvsyncProcess rescuer(INVSYNC_BINARY, {"persist", "--persister-claim-idle", "500ms",
                                          "--persister-batch-size", "500"});
  EXPECT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 120s))
      << Unpersisted() << " events still unpersisted";
  rescuer.Signal(SIGTERM);
  auto status = rescuer.Wait(20s);
  ASSERT_TRUE(status.has_value()) << "invsync persist did not stop on SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  ExpectPersistedExactlyOnce(sales);
}

// A persister stalled after its commit for longer than the claim time has its batch claimed,
// persisted again (duplicates) and acknowledged by another. Its own late acknowledgement must then
// count nothing: each event lowers its SKU's in-flight count and raises its persisted count once.
TEST_F(PersisterTest, LateAcknowledgementOfABatchAnotherPersisterTookOverCountsNothingTwice) {
  SeedSkus();
  const Sales sales = PlaceOrders(stock(), "o", 400, 4);
  ASSERT_EQ(sales.failed, 0);
  Recovery takeover;
  const StalledRun stalled =
      RunBatchStalledAfterCommit([&](std::size_t) { takeover = RecoverWithNewPersister(); });

  ASSERT_EQ(stalled.batch, static_cast<std::size_t>(sales.accepted + kSeedEvents));
  EXPECT_EQ(takeover.duplicate_rows, sales.accepted + kSeedEvents)
      << "the other persister took the whole committed batch over";
  EXPECT_EQ(stalled.events, sales.accepted + kSeedEvents);
  ExpectPersistedExactlyOnce(sales);
  for (const auto& sku : kSkus) {
    const std::int64_t events = sales.orders.contains(sku) ? sales.orders.at(sku) + 1 : 1;
    EXPECT_EQ(Redis({"HGET", Keys::kPersisted, sku}).AsString(), std::to_string(events)) << sku;
  }
}

// The same, with only the first part of the stalled batch taken over, and orders of one SKU, of
// another and of two SKUs mixed (ack.lua acknowledges entries of the same SKUs together): the late
// acknowledgement counts exactly the entries nobody acknowledged before.
TEST_F(PersisterTest, LateAcknowledgementOfABatchPartlyTakenOverCountsEachEventOnce) {
  SeedSkus();
  std::map<std::string, std::int64_t> events_of;  // per SKU, seeds included
  for (const auto& sku : kSkus) {
    events_of[sku] = 1;
  }
  const std::vector<std::vector<std::string>> shapes = {
      {"sku-a"}, {"sku-b"}, {"sku-a", "sku-b"}, {"sku-a"}, {"sku-c", "sku-a"}, {"sku-a", "sku-b"}};
  constexpr int kOrders = 300;
  for (int n = 0; n < kOrders; ++n) {
    std::vector<core::Line> lines;
    for (const auto& sku : shapes[static_cast<std::size_t>(n) % shapes.size()]) {
      lines.push_back({sku, 1});
      events_of[sku] += 1;
    }
    ASSERT_EQ(stock().Deduct("mix-" + std::to_string(n), lines).status, core::StockStatus::kOk);
  }
  std::size_t taken_over = 0;
  const StalledRun stalled = RunBatchStalledAfterCommit([&](std::size_t batch) {
    auto options = persister_options;
    options.batch_size = static_cast<int>(batch / 3);
    persister::Persister takeover(pool(), store(), options);
    taken_over = takeover.RunOnce(50ms);  // claims, persists and acknowledges the first third
  });

  ASSERT_EQ(stalled.batch, static_cast<std::size_t>(kOrders) + kSkus.size());
  ASSERT_GT(taken_over, 0U);
  ASSERT_LT(taken_over, stalled.batch);
  EXPECT_EQ(Unpersisted(), 0);
  EXPECT_EQ(Redis({"HLEN", Keys::kInflight}).AsInteger(), 0)
      << "an in-flight count was lowered too little";
  for (const auto& [sku, events] : events_of) {
    SCOPED_TRACE(sku);
    EXPECT_EQ(Redis({"HGET", Keys::kPersisted, sku}).AsString(), std::to_string(events));
    EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE sku = '" + sku + "'"), events);
    EXPECT_EQ(DatabaseQuantity(sku), kInitialStock - (events - 1));  // one unit per order line
    EXPECT_EQ(RedisQuantity(sku), kInitialStock - (events - 1));
  }
}

TEST_F(PersisterTest, PostgresOutageKeepsOrdersFlowingAndPersistsEverythingOnce) {
  SeedSkus();
  DatabaseOutage outage;
  persister::Persister persister(pool(), store(), persister_options);
  std::jthread runner([&](const std::stop_token& stop) { persister.Run(stop); });
  OrderTraffic traffic(stock(), "out", 4);
  ASSERT_TRUE(WaitFor([&] { return LedgerRows() > 1000; }, 30s)) << "nothing persisted";

  outage.Begin();
  EXPECT_FALSE(store().Ping()) << "the database is still reachable";
  const std::int64_t accepted_at_stop = traffic.accepted();
  const std::int64_t unpersisted_at_stop = Unpersisted();
  std::this_thread::sleep_for(5s);
  const std::int64_t accepted_during = traffic.accepted() - accepted_at_stop;
  const std::int64_t unpersisted_at_start = Unpersisted();
  const std::int64_t failed_during = traffic.failed();
  outage.End();

  ASSERT_TRUE(WaitFor([&] { return traffic.accepted() > accepted_at_stop + accepted_during; }, 10s))
      << "orders stopped after the database came back";
  const Sales sales = traffic.Stop();
  EXPECT_GT(accepted_during, 1000) << "orders stalled while the database was down";
  EXPECT_EQ(failed_during, 0);
  EXPECT_EQ(sales.failed, 0);
  EXPECT_GT(unpersisted_at_start, unpersisted_at_stop);
  EXPECT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 60s))
      << Unpersisted() << " events still unpersisted";
  runner.request_stop();
  runner.join();
  EXPECT_GT(persister.counters().database_errors.load(), 0);
  EXPECT_EQ(persister.counters().dead_letters.load(), 0);
  ExpectPersistedExactlyOnce(sales);
}

TEST_F(PersisterTest, PostgresRestartMidBatchIsRetried) {
  SeedSkus();
  const Sales sales = PlaceOrders(stock(), "r", 2000, 4);
  ASSERT_EQ(sales.failed, 0);

  DatabaseOutage outage;
  std::vector<std::string> batch_event_ids;  // written by the hook, read after `down`
  std::atomic<bool> stopping{false};
  auto hook = [&](FaultPoint at, std::span<const db::StockEvent> events) {
    if (at == FaultPoint::kAfterRead && !stopping.exchange(true)) {
      for (const auto& event : events) {
        batch_event_ids.push_back(event.EventId());
      }
      outage.Begin();
    }
  };
  persister::Persister persister(pool(), store(), persister_options, hook);
  std::jthread runner([&](const std::stop_token& stop) { persister.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return outage.down(); }, 20s)) << "the hook never stopped the database";
  const auto down_at = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return persister.counters().database_errors.load() >= 2; }, 10s))
      << "the batch's commit did not fail and retry";
  std::this_thread::sleep_until(down_at + 2s);
  EXPECT_EQ(persister.counters().batches.load(), 0)
      << "a batch committed while the database was down";
  outage.End();

  EXPECT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s))
      << Unpersisted() << " events still unpersisted";
  runner.request_stop();
  runner.join();
  ASSERT_FALSE(batch_event_ids.empty());
  EXPECT_EQ(LedgerRowsOf(batch_event_ids), static_cast<std::int64_t>(batch_event_ids.size()));
  EXPECT_EQ(persister.counters().duplicate_rows.load(), 0);
  EXPECT_EQ(persister.counters().dead_letters.load(), 0);
  ExpectPersistedExactlyOnce(sales);
}

TEST_F(PersisterTest, MalformedStreamEntryIsDeadLetteredNotFatal) {
  SeedSkus();
  Sales sales = PlaceOrders(stock(), "before", 100, 2);
  const std::string garbage_id =
      Redis({"XADD", Keys::kEvents, "*", "kind", "bogus", "ref", "junk-1", "deltas", "sku-a -5"})
          .AsString();
  sales.Add(PlaceOrders(stock(), "after", 100, 2));
  ASSERT_EQ(sales.failed, 0);

  Drain(30s);

  auto dead = Redis({"XRANGE", Keys::kDeadLetters, "-", "+"});
  ASSERT_EQ(dead.AsArray().size(), 1U);
  const auto& fields = dead.At(0).At(1).AsArray();
  ASSERT_GE(fields.size(), 2U);
  EXPECT_EQ(fields[0].AsString(), "entry");
  EXPECT_EQ(fields[1].AsString(), garbage_id);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'junk-1'"), 0);
  ExpectPersistedExactlyOnce(sales, /*dead_letters=*/1);
}

/// Makes PostgreSQL refuse every ledger insert with SQLSTATE `state` (a trigger raising it) until
/// Lift() or the end of the scope: a database that is up but will not take the persister's writes.
class LedgerRefusal {
 public:
  LedgerRefusal(SqlSession& sql, const std::string& state) : sql_(sql) {
    sql_.Query(
        "CREATE OR REPLACE FUNCTION invsync_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '" +
        state + "'; END$$");
    sql_.Query(
        "CREATE TRIGGER invsync_test_refuse BEFORE INSERT ON invsync_ledger FOR EACH ROW "
        "EXECUTE FUNCTION invsync_test_refuse()");
  }
  ~LedgerRefusal() { Lift(); }
  LedgerRefusal(const LedgerRefusal&) = delete;
  LedgerRefusal& operator=(const LedgerRefusal&) = delete;

  void Lift() {
    if (!lifted_) {
      lifted_ = true;
      sql_.Query("DROP TRIGGER IF EXISTS invsync_test_refuse ON invsync_ledger");
    }
  }

 private:
  SqlSession& sql_;
  bool lifted_ = false;
};

// Neither a lost connection nor bad data: a standby's read-only transaction after a failover, a
// statement timeout, a serialization failure, a revoked privilege, an I/O error, an internal
// error. Before, each of them dead-lettered every event of the batch: deductions Redis had made
// that never reached the database.
TEST_F(PersisterTest, PostgresRefusingWritesForAReasonNotAboutTheDataDeadLettersNothing) {
  SeedSkus();
  Drain();
  SqlSession sql;
  persister::Persister persister(pool(), store(), persister_options);
  std::jthread runner([&](const std::stop_token& stop) { persister.Run(stop); });
  Sales sales;
  for (const std::string state : {"25006", "57014", "40003", "42501", "58030", "XX000"}) {
    SCOPED_TRACE(state);
    LedgerRefusal refusal(sql, state);
    const auto errors_before = persister.counters().database_errors.load();
    const Sales placed = PlaceOrders(stock(), "refused-" + state, 200, 2);
    ASSERT_EQ(placed.failed, 0);
    sales.Add(placed);
    ASSERT_TRUE(WaitFor(
        [&] { return persister.counters().database_errors.load() >= errors_before + 3; }, 20s))
        << "the persister did not retry the refused batch";
    EXPECT_EQ(Redis({"XLEN", Keys::kDeadLetters}).AsInteger(), 0);
    EXPECT_GE(Unpersisted(), placed.accepted) << "refused events left the stream";
    refusal.Lift();
    EXPECT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s))
        << Unpersisted() << " events still unpersisted";
  }
  runner.request_stop();
  runner.join();
  EXPECT_EQ(persister.counters().dead_letters.load(), 0);
  EXPECT_GT(persister.counters().database_refusals.load(), 0);
  ExpectPersistedExactlyOnce(sales);
}

// The realistic form of the above: the database turns read-only (a failover onto a standby that
// is not promoted yet) and the persister's sessions are cut, while orders keep coming.
TEST_F(PersisterTest, PostgresTurningReadOnlyWhileOrdersArePendingLosesNone) {
  SeedSkus();
  Drain();
  SqlSession admin;
  admin.Query("SET default_transaction_read_only = off");
  auto read_only = [&](bool on) {
    admin.Query(std::string("DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET "
                            "default_transaction_read_only = ") +
                (on ? "on" : "off") + "', current_database()); END$$");
    admin.Query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid()");
  };
  struct Writable {
    std::function<void(bool)> set;
    ~Writable() { set(false); }
  } writable{read_only};
  read_only(true);

  persister::Persister persister(pool(), store(), persister_options);
  std::jthread runner([&](const std::stop_token& stop) { persister.Run(stop); });
  const Sales sales = PlaceOrders(stock(), "standby", 500, 4);
  ASSERT_EQ(sales.failed, 0);
  ASSERT_TRUE(WaitFor([&] { return persister.counters().database_errors.load() >= 3; }, 20s))
      << "the persister did not retry against the read-only database";
  EXPECT_EQ(Redis({"XLEN", Keys::kDeadLetters}).AsInteger(), 0);
  EXPECT_EQ(LedgerRows(), kSeedEvents) << "a read-only database took writes";
  read_only(false);

  EXPECT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s))
      << Unpersisted() << " events still unpersisted";
  runner.request_stop();
  runner.join();
  EXPECT_EQ(persister.counters().dead_letters.load(), 0);
  ExpectPersistedExactlyOnce(sales);
}

// A value the database cannot hold (a stock past bigint) is about the data: that one event is set
// aside, the others of its batch are persisted. (A delta that large is refused before the
// database: see the next test. Here the row is what is near the limit.)
TEST_F(PersisterTest, PostgresEventWhoseValuesTheDatabaseRejectsIsDeadLetteredAlone) {
  SeedSkus();
  Sales sales = PlaceOrders(stock(), "before", 100, 2);
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('huge', 9223372036854775000)");
  const std::string overflow_id = Redis({"XADD", Keys::kEvents, "*", "kind", "restock", "ref",
                                         "too-much-1", "deltas", "huge 1000"})
                                      .AsString();
  sales.Add(PlaceOrders(stock(), "after", 100, 2));
  ASSERT_EQ(sales.failed, 0);

  Drain(30s);

  auto dead = Redis({"XRANGE", Keys::kDeadLetters, "-", "+"});
  ASSERT_EQ(dead.AsArray().size(), 1U);
  EXPECT_EQ(dead.At(0).At(1).At(1).AsString(), overflow_id);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'too-much-1'"), 0);
  EXPECT_EQ(DatabaseQuantity("huge"), 9223372036854775000);
  ExpectPersistedExactlyOnce(sales, /*dead_letters=*/1);
}

// No invsync script writes a delta that large. Before, it was added to the other deltas of its SKU
// in the batch past 64 bits (undefined behaviour; in practice a wrong sum the database took).
TEST_F(PersisterTest, ForeignEntryWithADeltaNear64BitsIsDeadLetteredAndTheRestPersisted) {
  SeedSkus();
  Drain();
  constexpr std::int64_t kRestocked = 10'000;
  ASSERT_EQ(stock().Restock("sku-a", kRestocked, "restock-a").status, core::StockStatus::kOk);
  Sales sales = PlaceOrders(stock(), "before", 100, 2);
  const std::string foreign_id = Redis({"XADD", Keys::kEvents, "*", "kind", "restock", "ref",
                                        "foreign-1", "deltas", "sku-a 9223372036854775000"})
                                     .AsString();
  sales.Add(PlaceOrders(stock(), "after", 100, 2));
  ASSERT_EQ(sales.failed, 0);

  Drain(30s);  // one batch: the restock, the orders and the foreign entry

  auto dead = Redis({"XRANGE", Keys::kDeadLetters, "-", "+"});
  ASSERT_EQ(dead.AsArray().size(), 1U);
  const auto& fields = dead.At(0).At(1).AsArray();
  ASSERT_GE(fields.size(), 4U);
  EXPECT_EQ(fields[1].AsString(), foreign_id);
  EXPECT_NE(fields[3].AsString().find("out of range"), std::string::npos) << fields[3].AsString();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'foreign-1'"), 0);
  EXPECT_EQ(LedgerRows(), kSeedEvents + 1 + sales.accepted);
  EXPECT_EQ(Unpersisted(), 0);
  for (const auto& sku : kSkus) {
    SCOPED_TRACE(sku);
    const std::int64_t units = sales.units.contains(sku) ? sales.units.at(sku) : 0;
    const std::int64_t expected = kInitialStock + (sku == "sku-a" ? kRestocked : 0) - units;
    EXPECT_EQ(DatabaseQuantity(sku), expected);
    EXPECT_EQ(RedisQuantity(sku), expected);
  }
}

/// Two SKUs set to 100 and 50, then two orders: five ledger rows, stock 96 and 48.
std::vector<db::StockEvent> SampleEvents() {
  return {
      {.stream_id = "1-0", .kind = "set", .ref = "seed-a", .deltas = {{"sku-a", 100}}},
      {.stream_id = "1-1", .kind = "set", .ref = "seed-b", .deltas = {{"sku-b", 50}}},
      {.stream_id = "2-0",
       .kind = "deduct",
       .ref = "o-1",
       .deltas = {{"sku-a", -3}, {"sku-b", -2}}},
      {.stream_id = "3-0", .kind = "deduct", .ref = "o-2", .deltas = {{"sku-a", -1}}},
  };
}

TEST_F(PersisterTest, ReplayedEventIsANoOpInTheDatabase) {
  const auto events = SampleEvents();
  const auto first = store().ApplyEvents(events);
  EXPECT_EQ(first.applied_rows, 5U);
  EXPECT_EQ(first.duplicate_rows, 0U);

  const auto replay = store().ApplyEvents(events);
  EXPECT_EQ(replay.applied_rows, 0U);
  EXPECT_EQ(replay.duplicate_rows, 5U);
  EXPECT_EQ(DatabaseQuantity("sku-a"), 96);
  EXPECT_EQ(DatabaseQuantity("sku-b"), 48);
  EXPECT_EQ(LedgerRows(), 5);
}

// Persisters commit their batches in any order: two sets of a new SKU (the first creates it,
// the second a delta relative to it) and an order must reach the same row whatever the order of
// their commits, since they are deltas. An absolute "created with the quantity set" would count
// the first set again when it commits last (150 where Redis holds 50).
TEST_F(PersisterTest, EventsOfANewSkuCommittedInAnyOrderSumToTheSameStock) {
  const std::vector<db::StockEvent> events = {
      {.stream_id = "1-0", .kind = "set", .ref = "s1", .deltas = {{"X", 100}}},
      {.stream_id = "2-0", .kind = "set", .ref = "s2", .deltas = {{"X", -50}}},
      {.stream_id = "3-0", .kind = "deduct", .ref = "o1", .deltas = {{"X", -2}}},
  };
  for (const std::size_t first : {2U, 1U, 0U}) {
    ASSERT_EQ(store().ApplyEvents(std::span(&events[first], 1)).applied_rows, 1U);
  }
  EXPECT_EQ(DatabaseQuantity("X"), 48);
}

TEST_F(PersisterTest, BatchMixingReplayedAndNewEventsAppliesOnlyTheNewOnes) {
  auto events = SampleEvents();
  static_cast<void>(store().ApplyEvents(events));
  events.push_back({.stream_id = "4-0", .kind = "deduct", .ref = "o-3", .deltas = {{"sku-b", -7}}});

  const auto outcome = store().ApplyEvents(events);
  EXPECT_EQ(outcome.applied_rows, 1U);
  EXPECT_EQ(outcome.duplicate_rows, 5U);
  EXPECT_EQ(DatabaseQuantity("sku-a"), 96);
  EXPECT_EQ(DatabaseQuantity("sku-b"), 41);
  EXPECT_EQ(LedgerRows(), 6);
}

TEST_F(PersisterTest, SameEventTwiceInOneBatchIsAppliedOnce) {
  // A batch can carry an entry twice, e.g. claimed back while its first delivery is in hand.
  auto events = SampleEvents();
  events.push_back(events.back());

  const auto outcome = store().ApplyEvents(events);
  EXPECT_EQ(outcome.applied_rows, 5U);
  EXPECT_EQ(outcome.duplicate_rows, 1U);
  EXPECT_EQ(DatabaseQuantity("sku-a"), 96);
  EXPECT_EQ(DatabaseQuantity("sku-b"), 48);
  EXPECT_EQ(LedgerRows(), 5);
}

// Redis does not roll a script back when a command in it fails. A compensation the
// acknowledgement cannot apply (a stock quantity set by hand to something that is not an integer)
// must not leave the entry acknowledged with its SKU's counts never moved: counted in flight for
// ever, the SKU could never be loaded again.
TEST_F(PersisterTest, ALateReplayOwedToACorruptStockKeyIsAcknowledgedWholeAndTheKeyReloaded) {
  ASSERT_EQ(stock().Set("A", 10, "seed").status, core::StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 3}}).status, core::StockStatus::kOk);
  Drain();
  Redis({"DEL", Keys::Order("o1")});  // what expiry of the idempotency record does
  ASSERT_EQ(stock().Deduct("o1", {{"A", 3}}).status, core::StockStatus::kOk);  // owed back
  Redis({"HSET", "inventory:A", "quantity", "abc"});

  persister::Persister persister(pool(), store(), persister_options);
  ASSERT_TRUE(RunUntilSettled(persister))
      << "A in flight: " << Redis({"HGET", Keys::kInflight, "A"}).Describe();
  EXPECT_EQ(Redis({"HGET", Keys::kPersisted, "A"}).AsString(), "3");  // set, o1, its replay
  EXPECT_EQ(persister.counters().redis_repairs.load(), 1);
  EXPECT_EQ(stock().Get("A").quantity, 7);
  EXPECT_EQ(RedisQuantity("A"), 7);
  EXPECT_EQ(DatabaseQuantity("A"), 7);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'o1'"), 1);
}

// The same for the SKU's own counts: an in-flight count that is not an integer is removed, and a
// persisted count restarts at a value no fill can have read before.
TEST_F(PersisterTest, CorruptCountsOfASkuAreReplacedWhenItsEventsAreAcknowledged) {
  ASSERT_EQ(stock().Set("A", 10, "seed").status, core::StockStatus::kOk);
  Redis({"HSET", Keys::kInflight, "A", "x"});
  Redis({"HSET", Keys::kPersisted, "A", "y"});

  persister::Persister persister(pool(), store(), persister_options);
  ASSERT_TRUE(RunUntilSettled(persister))
      << "A in flight: " << Redis({"HGET", Keys::kInflight, "A"}).Describe();
  EXPECT_EQ(persister.counters().redis_repairs.load(), 2);
  const auto persisted = Redis({"HGET", Keys::kPersisted, "A"}).AsOptionalInteger();
  ASSERT_TRUE(persisted.has_value());
  EXPECT_GT(*persisted, 1'000'000'000'000'000);  // Redis's clock in microseconds
  Redis({"DEL", "inventory:A"});
  EXPECT_EQ(stock().Get("A").quantity, 10);
  EXPECT_EQ(DatabaseQuantity("A"), 10);
}

TEST_F(PersisterTest, ConsumersOfGoneProcessesAreForgottenButNotThoseWithPendingEvents) {
  ASSERT_EQ(stock().Set("A", 10, "seed").status, core::StockStatus::kOk);
  persister::Persister setup(pool(), store(), persister_options);
  setup.RunOnce(std::chrono::milliseconds(50));  // creates the group
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}}).status, core::StockStatus::kOk);
  // "holder" takes the new event and never acknowledges it; "gone" reads nothing.
  Redis({"XREADGROUP", "GROUP", "persister", "holder", "COUNT", "1", "STREAMS", "invsync:events",
         ">"});
  Redis({"XGROUP", "CREATECONSUMER", "invsync:events", "persister", "gone"});
  auto consumer_names = [this] {
    std::set<std::string> names;
    const redis::Value consumers = Redis({"XINFO", "CONSUMERS", "invsync:events", "persister"});
    for (const auto& consumer : consumers.AsArray()) {
      names.insert(consumer.At(1).AsString());
    }
    return names;
  };
  ASSERT_EQ(consumer_names().count("gone"), 1U);
  std::this_thread::sleep_for(300ms);
  auto options = persister_options;
  options.forget_idle = 200ms;
  options.claim_idle = 10min;  // so the held event stays with "holder"
  persister::Persister persister(pool(), store(), options);
  persister.RunOnce(std::chrono::milliseconds(50));
  auto names = consumer_names();
  EXPECT_EQ(names.count("gone"), 0U);
  EXPECT_EQ(names.count("holder"), 1U);
  EXPECT_EQ(Lag().pending, 1);
}

/// Batches committed by the persisters of `threads` (all of them, or the i-th).
std::int64_t Batches(const persister::PersisterThreads& threads) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < threads.size(); ++i) {
    total += threads.at(i).counters().batches.load();
  }
  return total;
}
std::int64_t Batches(const persister::PersisterThreads& threads, std::size_t i) {
  return threads.at(i).counters().batches.load();
}

// Under a steady flow each persister would otherwise close a batch every batch_wait: four of
// them made four transactions where one would do, and their fixed cost was most of the
// database's CPU. Taking turns to gather, the group closes about one batch per batch_wait.
TEST_F(PersisterTest, PersistersTakingTurnsToGatherCloseAboutOneBatchPerBatchWait) {
  SeedSkus();
  auto options = persister_options;
  options.batch_wait = 200ms;
  options.batch_size = 100'000;  // never full: every batch ends by its wait
  const auto start = Clock::now();
  persister::PersisterThreads group(pool(), store(), options, 4);
  Sales sales;
  {
    OrderTraffic traffic(stock(), "t", 2);
    std::this_thread::sleep_for(3s);
    sales = traffic.Stop();
  }
  ASSERT_EQ(sales.failed, 0);
  ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s));
  const auto elapsed = Clock::now() - start;
  group.Stop();
  // Each gathering lasts batch_wait once its first event is in; one more per persister for the
  // batches that closed early when the traffic stopped. Gathering on their own, the four would
  // have closed about four per batch_wait.
  const auto waits = elapsed / options.batch_wait;
  EXPECT_LE(Batches(group), waits + 4) << "in " << waits << " batch waits";
  EXPECT_GE(Batches(group), waits / 2);
  ExpectPersistedExactlyOnce(sales);
}

// The turn is passed on once a batch is gathered: a persister whose write is stuck (a slow or
// unreachable database) does not keep the others from gathering and writing theirs.
TEST_F(PersisterTest, APersisterStuckWithItsBatchDoesNotHoldUpTheOthers) {
  SeedSkus();
  std::atomic<bool> release{false};
  std::atomic<bool> stuck{false};
  auto stick = [&](FaultPoint at, std::span<const db::StockEvent>) {
    if (at == FaultPoint::kAfterRead && !stuck.exchange(true)) {
      WaitFor([&] { return release.load(); }, 30s);
    }
  };
  auto options = persister_options;
  options.batch_wait = 20ms;
  persister::PersisterThreads group(pool(), store(), options, 2, {stick});
  OrderTraffic traffic(stock(), "s", 2);
  ASSERT_TRUE(WaitFor([&] { return stuck.load(); }, 10s));
  const std::int64_t before = Batches(group, 1);
  const bool others_went_on = WaitFor([&] { return Batches(group, 1) >= before + 5; }, 10s);
  release = true;
  const Sales sales = traffic.Stop();
  EXPECT_TRUE(others_went_on) << "the second persister committed " << Batches(group, 1) - before
                              << " batches while the first was stuck";
  ASSERT_EQ(sales.failed, 0);
  ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 30s));
  group.Stop();
  ExpectPersistedExactlyOnce(sales);
}

TEST(GatherTurn, AStopRequestedWhileWaitingEndsTheWaitWithoutTheTurn) {
  persister::GatherTurn turn;
  std::stop_source holder;
  ASSERT_TRUE(turn.Take(holder.get_token()));
  std::stop_source waiter;
  std::atomic<int> outcome{-1};
  std::jthread thread([&] { outcome = turn.Take(waiter.get_token()) ? 1 : 0; });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(outcome.load(), -1) << "the turn was taken twice";
  waiter.request_stop();
  EXPECT_TRUE(WaitFor([&] { return outcome.load() != -1; }, 5s));
  EXPECT_EQ(outcome.load(), 0);
  turn.Pass();
  EXPECT_TRUE(turn.Take(holder.get_token())) << "the stopped waiter must not hold the turn";
}

// Redis restarted from an append-only file that lacks its last writes (appendfsync everysec and
// an operating-system crash): simulated by restoring a dump of every key taken earlier. The
// persister had already written the lost orders to the database.
TEST_F(PersisterTest, RedisThatLostWritesTheDatabaseHasIsDetectedAndConverges) {
  LoseFiftyPersistedOrders();
  if (HasFatalFailure()) {
    return;
  }

  persister::Persister persister(pool(), store(), persister_options);
  std::jthread running([&](const std::stop_token& stop) { persister.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return RedisQuantity("A") != 1000; }, 10s))
      << "the stale key survived: Redis would sell 50 units that are gone";
  EXPECT_EQ(stock().Get("A").quantity, 950);
  EXPECT_EQ(persister.counters().lost_redis_writes.load(), 1);

  // A client retrying a lost order is deducted again (Redis forgot it); the database keeps the
  // first and Redis gets the second back.
  ASSERT_EQ(stock().Deduct("lost-7", {{"A", 1}}).status, core::StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("after-1", {{"A", 2}}).status, core::StockStatus::kOk);
  ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0 && RedisQuantity("A") == 948; }, 10s))
      << RedisQuantity("A").value_or(-1);
  running.request_stop();
  running.join();
  EXPECT_EQ(DatabaseQuantity("A"), 948);
  EXPECT_EQ(persister.counters().lost_redis_writes.load(), 1) << "one loss handled once";
}

// As above, but an order arrives before any persister looks: its stream id, a time, is past every
// event the database has, so the stream's last id no longer showed the loss, and the persister
// then persisted and acknowledged the new order on top of it. The mark of acknowledged entries,
// lost with the writes it describes, still shows it.
TEST_F(PersisterTest, RedisThatLostWritesIsDetectedEvenAfterANewOrderArrives) {
  LoseFiftyPersistedOrders();
  if (HasFatalFailure()) {
    return;
  }
  ASSERT_EQ(stock().Deduct("new-1", {{"A", 3}}).status, core::StockStatus::kOk);
  ASSERT_EQ(RedisQuantity("A"), 997);

  persister::Persister persister(pool(), store(), persister_options);
  std::jthread running([&](const std::stop_token& stop) { persister.Run(stop); });
  ASSERT_TRUE(
      WaitFor([&] { return Unpersisted() == 0 && RedisQuantity("A").value_or(0) != 997; }, 10s))
      << "the stale key survived: Redis would sell 50 units that are gone";
  EXPECT_EQ(stock().Get("A").quantity, 947);
  EXPECT_EQ(RedisQuantity("A"), 947);
  running.request_stop();
  running.join();
  EXPECT_EQ(DatabaseQuantity("A"), 947);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'new-1'"), 1);
  EXPECT_EQ(persister.counters().lost_redis_writes.load(), 1);
}

// A persister that acknowledged its batch after its commit raised the database's mark is not a
// loss, nor one that committed and has not acknowledged yet (its entry is still pending).
TEST_F(PersisterTest, CommittedButUnacknowledgedBatchIsNotTakenForALoss) {
  ASSERT_EQ(stock().Set("A", 1000, "seed").status, core::StockStatus::kOk);
  Drain();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(stock().Deduct("pending-" + std::to_string(i), {{"A", 1}}).status,
              core::StockStatus::kOk);
  }
  const Crash crash = RunPersisterUntilCrash(FaultPoint::kAfterCommit, 1);
  ASSERT_TRUE(crash.happened);
  ASSERT_EQ(DatabaseQuantity("A"), 980);
  ASSERT_EQ(stock().Deduct("new-1", {{"A", 2}}).status, core::StockStatus::kOk);

  persister::Persister persister(pool(), store(), persister_options);
  std::jthread running([&](const std::stop_token& stop) { persister.Run(stop); });
  ASSERT_TRUE(WaitFor([&] { return Unpersisted() == 0; }, 10s));
  std::this_thread::sleep_for(1500ms);  // a housekeeping round after the drain
  running.request_stop();
  running.join();
  EXPECT_EQ(persister.counters().lost_redis_writes.load(), 0);
  EXPECT_EQ(RedisQuantity("A"), 978) << "a key was dropped for a loss that was not one";
  EXPECT_EQ(DatabaseQuantity("A"), 978);
}

// A persister whose reading connection broke connects again with the timeout its blocking reads
// need, not the pool's: a blocking read longer than the pool's timeout would otherwise time out,
// break the new connection and connect again, over and over, while there is nothing to read.
TEST_F(PersisterTest, AReconnectedPersisterBlocksWithItsOwnReadTimeout) {
  redis::Pool short_timeouts(redis::Endpoint::Parse(TestRedisUrl()), 4, 300ms);
  persister_options.poll = 1s;  // blocking reads of 1 s, longer than the pool's 300 ms
  persister::Persister persister(short_timeouts, store(), persister_options);
  std::jthread running([&](const std::stop_token& stop) { persister.Run(stop); });
  auto connections_received = [&] {
    const std::string info = Redis({"INFO", "stats"}).AsString();
    const std::string field = "total_connections_received:";
    return std::stoll(info.substr(info.find(field) + field.size()));
  };
  std::this_thread::sleep_for(1500ms);  // idle, blocked in its reads
  const auto before = connections_received();
  Redis({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});  // every connection but this one
  std::this_thread::sleep_for(4s);
  // Its reading connection and one of the pool's (2 here); a reader left with the pool's timeout
  // made 7 in 4 s.
  EXPECT_LE(connections_received() - before, 3) << "the persister kept connecting again";
  EXPECT_TRUE(WaitFor(
      [&] {
        try {
          return stock().Set("A", 5, "after-reconnect").status == core::StockStatus::kOk;
        } catch (const Error&) {
          return false;  // the stock pool's connections were killed too
        }
      },
      5s));
  EXPECT_TRUE(WaitFor([&] { return DatabaseQuantity("A") == 5; }, 10s))
      << "the reconnected persister did not persist";
}

// Every store call borrows its connection from a pool: one handed back inside a failed
// transaction must not fail the next borrower ("current transaction is aborted").
TEST_F(PersisterTest, APostgresConnectionHandedBackInAnAbortedTransactionIsNotLentAgain) {
  ConnectionPool<db::detail::PgConnection> connections(
      [] { return std::make_unique<db::detail::PgConnection>(TestDatabaseUrl()); }, 1, 1s,
      "database");
  {
    auto lease = connections.Acquire();
    lease->ExecScript("BEGIN");
    EXPECT_THROW((void)lease->Exec("SELECT 1 / 0"), Error);
    ASSERT_TRUE(lease->in_transaction());
  }
  auto lease = connections.Acquire();
  EXPECT_FALSE(lease->in_transaction());
  EXPECT_EQ(lease->Exec("SELECT 1").rows(), 1);
}

}  // namespace
}  // namespace invsync::testing
