// Stock operations against real Redis and PostgreSQL: cache-aside reads, deductions, cancels,
// restocks and sets, their idempotency, and the fill races of ARCHITECTURE.md.
#include <gtest/gtest.h>

#include <chrono>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "core/keys.hpp"
#include "counting_store.hpp"
#include "process.hpp"
#include "servers.hpp"

namespace invsync::testing {
namespace {

using core::Line;
using core::StockStatus;

class StockTest : public ServersTest {
 protected:
  void SeedDatabase(const std::string& sku, std::int64_t quantity) {
    Sql("INSERT INTO inventory (sku, quantity) VALUES ('" + sku + "', " + std::to_string(quantity) +
        ")");
  }
  std::int64_t StreamLength() { return Redis({"XLEN", "invsync:events"}).AsInteger(); }
  void SellOneElsewhereThenLoseRedis(const std::string& sku, std::int64_t filled);
};

TEST_F(StockTest, GetOnMissLoadsFromDatabaseIntoTheSeedHashLayout) {
  SeedDatabase("A", 42);
  auto result = stock().Get("A");
  ASSERT_EQ(result.status, StockStatus::kOk);
  EXPECT_EQ(result.quantity, 42);
  EXPECT_EQ(RedisQuantity("A"), 42);
  EXPECT_EQ(Redis({"HGET", "inventory:A", "product_id"}).AsString(), "A");
}

TEST_F(StockTest, GetPrefersRedisAndNeverOverwritesAnExistingKey) {
  SeedDatabase("A", 10);
  Redis({"HSET", "inventory:A", "product_id", "A", "quantity", "7"});
  EXPECT_EQ(stock().Get("A").quantity, 7);
  EXPECT_EQ(RedisQuantity("A"), 7);
}

TEST_F(StockTest, InventoryKeysCarryNoTtl) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Get("A").status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}}).status, StockStatus::kOk);
  EXPECT_EQ(Redis({"PTTL", "inventory:A"}).AsInteger(), -1);
}

TEST_F(StockTest, UnknownSkuIsRememberedSoAFloodDoesNotReachTheDatabase) {
  // Long enough for the flood to fit in it on a loaded machine (a sanitizer build).
  stock_options.fill.absent_ttl = std::chrono::seconds(3);
  CountingStore counting(store());
  auto service = NewService(counting);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(service->Get("NOPE").status, StockStatus::kUnknownSku);
  }
  EXPECT_EQ(counting.reads.load(), 1);
  SeedDatabase("NOPE", 5);
  // Once the marker expires (on Redis's clock), the next read finds the row.
  EXPECT_TRUE(
      WaitFor([&] { return service->Get("NOPE").quantity == 5; }, std::chrono::seconds(10)));
  EXPECT_EQ(counting.reads.load(), 2);
}

TEST_F(StockTest, ConcurrentMissesReadTheDatabaseOncePerProcess) {
  SeedDatabase("HOT", 100);
  CountingStore counting(store());
  counting.read_delay = std::chrono::milliseconds(100);
  auto service = NewService(counting);
  std::vector<std::jthread> threads;
  std::atomic<int> correct{0};
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&] { correct += service->Get("HOT").quantity == 100 ? 1 : 0; });
  }
  threads.clear();
  EXPECT_EQ(correct.load(), 32);
  EXPECT_EQ(counting.reads.load(), 1);
}

TEST_F(StockTest, ConcurrentMissesAcrossProcessesReadTheDatabaseOnce) {
  SeedDatabase("HOT", 100);
  CountingStore first_store(store());
  CountingStore second_store(store());
  first_store.read_delay = second_store.read_delay = std::chrono::milliseconds(100);
  auto first = NewService(first_store);
  auto second = NewService(second_store);
  std::vector<std::jthread> threads;
  std::atomic<int> correct{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] { correct += first->Get("HOT").quantity == 100 ? 1 : 0; });
    threads.emplace_back([&] { correct += second->Get("HOT").quantity == 100 ? 1 : 0; });
  }
  threads.clear();
  EXPECT_EQ(correct.load(), 32);
  EXPECT_EQ(first_store.reads.load() + second_store.reads.load(), 1);
}

TEST_F(StockTest, GetManyUsesOneBatchedDatabaseReadForMisses) {
  SeedDatabase("A", 1);
  SeedDatabase("B", 2);
  SeedDatabase("C", 3);
  CountingStore counting(store());
  auto service = NewService(counting);
  ASSERT_EQ(service->Get("A").quantity, 1);  // cached
  std::vector<std::string> skus = {"A", "B", "C", "NOPE", "B"};
  auto result = service->GetMany(skus);
  ASSERT_EQ(result.status, StockStatus::kOk);
  std::vector<std::pair<std::string, std::int64_t>> expected = {{"A", 1}, {"B", 2}, {"C", 3}};
  EXPECT_EQ(result.items, expected);
  EXPECT_EQ(result.unknown, std::vector<std::string>{"NOPE"});
  EXPECT_EQ(counting.batch_reads.load(), 1);
  EXPECT_EQ(RedisQuantity("B"), 2);
  EXPECT_EQ(RedisQuantity("C"), 3);
}

TEST_F(StockTest, DeductLoadsUncachedSkusThenTakesEveryLine) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 5);
  auto result = stock().Deduct("o1", {{"B", 2}, {"A", 3}});
  ASSERT_EQ(result.status, StockStatus::kOk);
  ASSERT_EQ(result.lines.size(), 2U);
  EXPECT_EQ(result.lines[0].sku, "A");  // lines come back in SKU order
  EXPECT_EQ(result.lines[0].remaining, 7);
  EXPECT_EQ(result.lines[1].remaining, 3);
  EXPECT_EQ(RedisQuantity("A"), 7);
  EXPECT_EQ(RedisQuantity("B"), 3);
}

TEST_F(StockTest, InsufficientStockOnOneLineChangesNothing) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 5);
  auto result = stock().Deduct("o1", {{"A", 2}, {"B", 6}});
  ASSERT_EQ(result.status, StockStatus::kInsufficient);
  EXPECT_EQ(result.shortage->sku, "B");
  EXPECT_EQ(result.shortage->requested, 6);
  EXPECT_EQ(result.shortage->available, 5);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(RedisQuantity("B"), 5);
  EXPECT_EQ(StreamLength(), 0);
  EXPECT_EQ(stock().GetOrder("o1").status, StockStatus::kUnknownOrder);
  // The refusal is not remembered: the same order id may succeed once stock allows it.
  EXPECT_EQ(stock().Deduct("o1", {{"A", 2}, {"B", 5}}).status, StockStatus::kOk);
}

TEST_F(StockTest, UnknownSkuInAnOrderChangesNothing) {
  SeedDatabase("A", 10);
  auto result = stock().Deduct("o1", {{"A", 1}, {"GHOST", 1}});
  ASSERT_EQ(result.status, StockStatus::kUnknownSku);
  EXPECT_EQ(result.unknown_sku, "GHOST");
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(StockTest, ReplayedOrderReturnsTheFirstResultAndChangesNothing) {
  SeedDatabase("A", 10);
  auto first = stock().Deduct("o1", {{"A", 3}});
  ASSERT_EQ(first.status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o2", {{"A", 1}}).status, StockStatus::kOk);
  auto replay = stock().Deduct("o1", {{"A", 3}});
  ASSERT_EQ(replay.status, StockStatus::kOk);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.lines[0].remaining, 7);  // as first answered, not the current 6
  EXPECT_EQ(RedisQuantity("A"), 6);
  EXPECT_EQ(StreamLength(), 2);
}

TEST_F(StockTest, SameOrderIdWithDifferentLinesIsAConflict) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}, {"B", 2}}).status, StockStatus::kOk);
  EXPECT_EQ(stock().Deduct("o1", {{"B", 2}, {"A", 1}}).status, StockStatus::kOk);  // same lines
  EXPECT_EQ(stock().Deduct("o1", {{"A", 2}}).status, StockStatus::kOrderConflict);
  EXPECT_EQ(RedisQuantity("A"), 9);
  EXPECT_EQ(RedisQuantity("B"), 8);
}

TEST_F(StockTest, CancelReturnsStockOnceAndReportsUnknownOrders) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 4}}).status, StockStatus::kOk);
  auto cancel = stock().Cancel("o1");
  ASSERT_EQ(cancel.status, StockStatus::kOk);
  EXPECT_FALSE(cancel.replayed);
  EXPECT_EQ(cancel.state, core::OrderState::kCancelled);
  EXPECT_EQ(cancel.lines[0].remaining, 10);
  auto again = stock().Cancel("o1");
  EXPECT_EQ(again.status, StockStatus::kOk);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 2);
  EXPECT_EQ(stock().Cancel("never-placed").status, StockStatus::kUnknownOrder);
  EXPECT_EQ(stock().GetOrder("o1").state, core::OrderState::kCancelled);
  // A cancelled order's id stays used: placing it again is a replay, not a new deduction.
  auto replay = stock().Deduct("o1", {{"A", 4}});
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.state, core::OrderState::kCancelled);
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(StockTest, OrderRecordIsOneStringThatExpiresAfterTheRetention) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 4}}).status, StockStatus::kOk);
  EXPECT_EQ(Redis({"TYPE", "invsync:order:o1"}).AsString(), "string");
  const auto ttl = Redis({"PTTL", "invsync:order:o1"}).AsInteger();
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, stock_options.idempotency_retention.count());
  ASSERT_EQ(stock().Cancel("o1").status, StockStatus::kOk);
  EXPECT_EQ(Redis({"TYPE", "invsync:order:o1"}).AsString(), "string");
  EXPECT_GT(Redis({"PTTL", "invsync:order:o1"}).AsInteger(), 0);
}

// Earlier versions wrote order records as hashes; those written before an upgrade keep their
// meaning until their retention ends: a replay is a replay, other lines a conflict, and a cancel
// returns the stock once.
TEST_F(StockTest, OrderRecordsAnEarlierVersionWroteAsHashesAreStillHonoured) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Get("A").quantity, 10);
  Redis({"HINCRBY", "inventory:A", "quantity", "-4"});  // what the earlier deduction did
  Redis({"HSET", "invsync:order:old", "lines", "A 4\n", "status", "deducted", "remaining", "6"});
  Redis({"PEXPIRE", "invsync:order:old", "60000"});

  auto replay = stock().Deduct("old", {{"A", 4}});
  ASSERT_EQ(replay.status, StockStatus::kOk);
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.lines[0].remaining, 6);
  EXPECT_EQ(stock().Deduct("old", {{"A", 5}}).status, StockStatus::kOrderConflict);
  EXPECT_EQ(stock().GetOrder("old").state, core::OrderState::kDeducted);
  EXPECT_EQ(RedisQuantity("A"), 6);

  auto cancel = stock().Cancel("old");
  ASSERT_EQ(cancel.status, StockStatus::kOk);
  EXPECT_FALSE(cancel.replayed);
  EXPECT_EQ(cancel.lines[0].remaining, 10);
  EXPECT_TRUE(stock().Cancel("old").replayed);
  const auto order = stock().GetOrder("old");
  EXPECT_EQ(order.state, core::OrderState::kCancelled);
  ASSERT_EQ(order.lines.size(), 1U);
  EXPECT_EQ(order.lines[0].remaining, 10);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(Redis({"TYPE", "invsync:order:old"}).AsString(), "string");  // rewritten by the cancel
}

TEST_F(StockTest, MalformedOrderRecordIsAnErrorNotASecondDeduction) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Get("A").quantity, 10);
  Redis({"SET", "invsync:order:o1", "not a record"});
  EXPECT_THROW(static_cast<void>(stock().Deduct("o1", {{"A", 1}})), PermanentError);
  EXPECT_THROW(static_cast<void>(stock().Cancel("o1")), PermanentError);
  EXPECT_THROW(static_cast<void>(stock().GetOrder("o1")), PermanentError);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(StockTest, RestockIsIdempotentByRequestId) {
  SeedDatabase("A", 10);
  EXPECT_EQ(stock().Restock("A", 5, "r1").quantity, 15);
  auto replay = stock().Restock("A", 5, "r1");
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.quantity, 15);
  EXPECT_EQ(stock().Restock("A", 6, "r1").status, StockStatus::kRequestConflict);
  EXPECT_EQ(stock().Restock("GHOST", 5, "r2").status, StockStatus::kUnknownSku);
  EXPECT_EQ(RedisQuantity("A"), 15);
  EXPECT_EQ(RedisQuantity("GHOST"), std::nullopt);
}

// Restocks adding up past the maximum would leave a quantity deduct.lua and cancel.lua refuse as
// corrupt, and every order for the SKU would fail.
TEST_F(StockTest, RestockPastTheMaximumStockIsRefusedAndChangesNothing) {
  SeedDatabase("A", core::kMaxStock - 5);
  const auto refused = stock().Restock("A", 10, "r1");
  ASSERT_EQ(refused.status, StockStatus::kInvalid);
  ASSERT_TRUE(refused.invalid.has_value());
  EXPECT_EQ(refused.invalid->code, core::ValidationCode::kStockTooLarge);
  EXPECT_EQ(refused.invalid->field, "quantity");
  EXPECT_EQ(RedisQuantity("A"), core::kMaxStock - 5);
  EXPECT_EQ(StreamLength(), 0);

  // Refused, not recorded: the same request id is judged again, and a restock that fits is taken.
  EXPECT_EQ(stock().Restock("A", 10, "r1").status, StockStatus::kInvalid);
  EXPECT_EQ(stock().Restock("A", 5, "r2").quantity, core::kMaxStock);
  EXPECT_EQ(stock().Restock("A", 1, "r3").status, StockStatus::kInvalid);
  EXPECT_EQ(stock().Deduct("o1", {{"A", 1}}).status, StockStatus::kOk);
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), core::kMaxStock - 1);
  EXPECT_EQ(RedisQuantity("A"), core::kMaxStock - 1);
}

TEST_F(StockTest, SetCreatesNewSkusAndIsPersistedAsADelta) {
  ASSERT_EQ(stock().Get("NEW").status, StockStatus::kUnknownSku);  // leaves an absent marker
  EXPECT_EQ(stock().Set("NEW", 20, "s1").quantity, 20);
  EXPECT_EQ(stock().Get("NEW").quantity, 20);
  EXPECT_EQ(stock().Set("NEW", 12, "s2").quantity, 12);
  EXPECT_TRUE(stock().Set("NEW", 12, "s2").replayed);
  Drain();
  EXPECT_EQ(DatabaseQuantity("NEW"), 12);
  EXPECT_EQ(SqlInt("SELECT delta FROM invsync_ledger WHERE event_id = 'set:s1'"), 20);
  EXPECT_EQ(SqlInt("SELECT delta FROM invsync_ledger WHERE event_id = 'set:s2'"), -8);
}

TEST_F(StockTest, EveryAcceptedChangeIsPersistedWithOneLedgerRowPerSku) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}, {"B", 2}}).status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o2", {{"A", 3}}).status, StockStatus::kOk);
  ASSERT_EQ(stock().Cancel("o2").status, StockStatus::kOk);
  ASSERT_EQ(stock().Restock("B", 4, "r1").status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o3", {{"A", 100}}).status, StockStatus::kInsufficient);
  EXPECT_EQ(StreamLength(), 4);
  Drain();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger"), 5);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'o3'"), 0);
  EXPECT_EQ(DatabaseQuantity("A"), 9);
  EXPECT_EQ(DatabaseQuantity("B"), 12);
  EXPECT_EQ(RedisQuantity("A"), 9);
  EXPECT_EQ(RedisQuantity("B"), 12);
  EXPECT_EQ(Redis({"HLEN", "invsync:inflight"}).AsInteger(), 0);
}

TEST_F(StockTest, InvalidInputIsRefusedAndChangesNothing) {
  SeedDatabase("A", 10);
  EXPECT_EQ(stock().Deduct("bad id", {{"A", 1}}).invalid->code,
            core::ValidationCode::kOrderIdBadCharacter);
  EXPECT_EQ(stock().Deduct("o1", {{"A", 0}}).invalid->code,
            core::ValidationCode::kQuantityNotPositive);
  EXPECT_EQ(stock().Deduct("o1", {{"A", 1}, {"A", 1}}).invalid->code,
            core::ValidationCode::kDuplicateSku);
  EXPECT_EQ(stock().Restock("A", -1, "r1").invalid->code,
            core::ValidationCode::kQuantityNotPositive);
  EXPECT_EQ(stock().Set("A", -1, "s1").invalid->code, core::ValidationCode::kQuantityNegative);
  EXPECT_EQ(stock().Get(std::string(129, 'x')).invalid->code, core::ValidationCode::kSkuTooLong);
  EXPECT_EQ(StreamLength(), 0);
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);  // nothing even loaded
}

TEST_F(StockTest, TrimmingRemovesOnlyAcknowledgedHistory) {
  SeedDatabase("A", 100);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(stock().Deduct("o" + std::to_string(i), {{"A", 1}}).status, StockStatus::kOk);
  }
  auto trim = [this] {
    auto conn = pool().Acquire();
    return persister::ReadLag(*conn, stock().scripts(), /*trim=*/true);
  };
  EXPECT_EQ(trim().stream_length, 20);  // nothing persisted yet: nothing may go
  Drain();
  auto lag = trim();
  EXPECT_EQ(lag.unpersisted(), 0);
  EXPECT_LE(lag.stream_length, 1);  // the last delivered entry may stay as the group's marker
  ASSERT_EQ(stock().Deduct("after", {{"A", 1}}).status, StockStatus::kOk);
  EXPECT_EQ(trim().unpersisted(), 1);
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 79);
}

// After Redis forgot an order id (retention expired), a retry of it is accepted again by Redis;
// the database keeps the first and the persister gives the second deduction back in Redis.
TEST_F(StockTest, OrderReplayedAfterTheRetentionWindowIsGivenBack) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 3}}).status, StockStatus::kOk);
  Drain();
  Redis({"DEL", "invsync:order:o1"});  // what expiry of the idempotency record does
  auto late = stock().Deduct("o1", {{"A", 3}});
  ASSERT_EQ(late.status, StockStatus::kOk);
  EXPECT_EQ(RedisQuantity("A"), 4);
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 7);
  EXPECT_EQ(DatabaseQuantity("A"), 7);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'o1'"), 1);
}

// Redis keeps what a script wrote before a command in it failed. An in-flight count someone made
// non-integer failed the deduct after its stock change, leaving a deduction without its stream
// entry (the database never learned of it) and an order without its record.
TEST_F(StockTest, ACorruptInFlightCountDoesNotLeaveAStockChangeWithoutItsEvent) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 10);
  ASSERT_EQ(stock().Get("A").quantity, 10);
  ASSERT_EQ(stock().Get("B").quantity, 10);
  Redis({"HSET", "invsync:inflight", "A", "abc"});
  ASSERT_EQ(stock().Deduct("o1", {{"A", 2}}).status, StockStatus::kOk);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 2}}).status, StockStatus::kOk);  // a replay: recorded
  ASSERT_EQ(stock().Cancel("o1").status, StockStatus::kOk);
  Redis({"HSET", "invsync:inflight", "B", "x"});
  ASSERT_EQ(stock().Set("B", 4, "s1").status, StockStatus::kOk);
  EXPECT_EQ(StreamLength(), 3);
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(DatabaseQuantity("A"), 10);
  EXPECT_EQ(RedisQuantity("B"), 4);
  EXPECT_EQ(DatabaseQuantity("B"), 4);
}

// A stream key of another type fails an order before anything changed.
TEST_F(StockTest, AnOrderThatCannotBeRecordedInTheStreamChangesNothing) {
  SeedDatabase("A", 10);
  ASSERT_EQ(stock().Get("A").quantity, 10);
  Redis({"SET", "invsync:events", "not a stream"});
  EXPECT_THROW((void)stock().Deduct("o1", {{"A", 2}}), Error);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(Redis({"EXISTS", "invsync:order:o1"}).AsInteger(), 0);
  EXPECT_EQ(Redis({"HGET", "invsync:inflight", "A"}).AsOptionalString(), std::nullopt);
}

// The same for a set that creates a SKU: before, it installed the key (at 0) and the SKU's fill
// position before the XADD that failed.
TEST_F(StockTest, ASetThatCannotBeRecordedInTheStreamCreatesNothing) {
  Redis({"SET", "invsync:events", "not a stream"});
  EXPECT_THROW((void)stock().Set("NEW", 5, "s1"), Error);
  EXPECT_EQ(Redis({"EXISTS", "inventory:NEW"}).AsInteger(), 0);
  EXPECT_EQ(Redis({"EXISTS", "invsync:request:s1"}).AsInteger(), 0);
  Redis({"DEL", "invsync:events"});
  ASSERT_EQ(stock().Set("NEW", 5, "s1").quantity, 5);
  Drain();
  EXPECT_EQ(DatabaseQuantity("NEW"), 5);
}

// An order id that comes back after the window with other lines, after its first order was
// cancelled, and is cancelled again: each (event, SKU) reaches the database once and what Redis
// applied twice is given back, so both sides agree at every drain.
TEST_F(StockTest, OrderIdReusedAfterTheWindowWithOtherLinesKeepsRedisEqualToTheDatabase) {
  SeedDatabase("A", 10);
  SeedDatabase("B", 10);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}}).status, StockStatus::kOk);
  ASSERT_EQ(stock().Cancel("o1").status, StockStatus::kOk);
  Drain();
  Redis({"DEL", "invsync:order:o1"});  // the window ends
  ASSERT_EQ(stock().Deduct("o1", {{"A", 1}, {"B", 2}}).status, StockStatus::kOk);
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 10);  // its A line is the first order's, cancelled already
  EXPECT_EQ(DatabaseQuantity("A"), 10);
  EXPECT_EQ(RedisQuantity("B"), 8);
  EXPECT_EQ(DatabaseQuantity("B"), 8);
  ASSERT_EQ(stock().Cancel("o1").status, StockStatus::kOk);
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 10);  // the A line's cancel is the first cancel's, given back
  EXPECT_EQ(DatabaseQuantity("A"), 10);
  EXPECT_EQ(RedisQuantity("B"), 10);
  EXPECT_EQ(DatabaseQuantity("B"), 10);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE ref = 'o1'"), 4);
}

// Race "fill vs unpersisted events": a key that vanished while its events were still in the
// stream must not be refilled from the database without them.
TEST_F(StockTest, VanishedKeyIsNotRefilledBeforeItsEventsArePersisted) {
  SeedDatabase("A", 100);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);
  Redis({"DEL", "inventory:A"});  // an operator's DEL; the database still says 100
  stock_options.fill.wait = std::chrono::milliseconds(300);
  auto impatient = NewService(store());
  EXPECT_THROW((void)impatient->Get("A"), TransientError);
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  Drain();
  EXPECT_EQ(impatient->Get("A").quantity, 90);
}

TEST_F(StockTest, VanishedKeyIsRefilledCorrectlyWhileThePersisterRuns) {
  SeedDatabase("A", 100);
  ASSERT_EQ(stock().Deduct("o1", {{"A", 10}}).status, StockStatus::kOk);
  Redis({"DEL", "inventory:A"});
  std::jthread drain([this] { Drain(); });
  EXPECT_EQ(stock().Get("A").quantity, 90);
}

// A fill must not install a value read before events that were persisted in the meantime: here,
// between our database read and our install, another process fills the key, sells one unit,
// persists it, and the key is deleted again.
TEST_F(StockTest, FillDiscardsADatabaseReadOvertakenByPersistedEvents) {
  SeedDatabase("A", 100);
  CountingStore slow(store());
  auto service = NewService(slow);
  bool interfered = false;
  slow.after_read = [&] {
    if (interfered) {
      return;
    }
    interfered = true;
    auto other = NewService(store());
    // The other process cannot take the fill lock (we hold it), so it installs the key itself
    // once the lock is gone; emulate its effect directly with the seed layout.
    Redis({"HSET", "inventory:A", "product_id", "A", "quantity", "100"});
    ASSERT_EQ(other->Deduct("o1", {{"A", 1}}).status, StockStatus::kOk);
    Drain();
    Redis({"DEL", "inventory:A"});
  };
  EXPECT_EQ(service->Get("A").quantity, 99);
  EXPECT_TRUE(interfered);
  EXPECT_EQ(slow.reads.load(), 2);  // the first read was discarded
}

// Another service fills `sku` at `filled` and sells one unit; its persister commits the sale and
// then Redis loses its data. Afterwards the database holds `filled - 1` and Redis holds only the
// persisted count the acknowledgement wrote again: the same count a read from before all this
// saw, so only Redis's epoch tells that read is stale.
void StockTest::SellOneElsewhereThenLoseRedis(const std::string& sku, std::int64_t filled) {
  // The other process cannot take the fill lock (the caller holds it): emulate its fill directly.
  Redis({"HSET", "inventory:" + sku, "product_id", sku, "quantity", std::to_string(filled)});
  auto other = NewService(store());
  ASSERT_EQ(other->Deduct("elsewhere-" + sku, {{sku, 1}}).status, StockStatus::kOk);
  ASSERT_EQ(PersistThenLoseRedis(), 1U);
  ASSERT_EQ(DatabaseQuantity(sku), filled - 1);
  ASSERT_EQ(Redis({"HGET", core::Keys::kPersisted, sku}).AsString(), "1") << "not rebuilt";
}

// A fill must not install a value read before Redis lost its data. Between our database read
// (A at 99, persisted count 1) and our install, another process sells one unit, a persister
// commits it, Redis loses everything, and the persister's acknowledgement rebuilds A's persisted
// count from 0: back at 1, the count we read, while our read lacks the sale.
TEST_F(StockTest, FillDiscardsADatabaseReadFromBeforeRedisLostItsData) {
  SeedDatabase("A", 100);
  ASSERT_EQ(stock().Deduct("o0", {{"A", 1}}).status, StockStatus::kOk);
  Drain();
  ASSERT_EQ(Redis({"HGET", core::Keys::kPersisted, "A"}).AsString(), "1");
  Redis({"DEL", "inventory:A"});
  CountingStore slow(store());
  auto service = NewService(slow);
  bool interfered = false;
  slow.after_read = [&] {
    if (!std::exchange(interfered, true)) {
      SellOneElsewhereThenLoseRedis("A", 99);
    }
  };
  EXPECT_EQ(service->Get("A").quantity, 98);
  EXPECT_TRUE(interfered);
  EXPECT_EQ(slow.reads.load(), 2);  // the first read was discarded
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 98);
  EXPECT_EQ(DatabaseQuantity("A"), 98);
}

// The same for a fill of several SKUs at once (one database read for all, as GetMany makes).
TEST_F(StockTest, AManySkuFillDiscardsADatabaseReadFromBeforeRedisLostItsData) {
  SeedDatabase("A", 100);
  SeedDatabase("B", 50);
  ASSERT_EQ(stock().Deduct("o0", {{"A", 1}}).status, StockStatus::kOk);
  Drain();
  Redis({"DEL", "inventory:A"});
  CountingStore slow(store());
  auto service = NewService(slow);
  bool interfered = false;
  slow.after_batch_read = [&] {
    if (!std::exchange(interfered, true)) {
      SellOneElsewhereThenLoseRedis("A", 99);
    }
  };
  const std::vector<std::string> skus{"A", "B"};
  const auto read = service->GetMany(skus);
  EXPECT_TRUE(interfered);
  ASSERT_EQ(read.status, StockStatus::kOk);
  using Item = std::pair<std::string, std::int64_t>;
  EXPECT_EQ(read.items, (std::vector<Item>{{"A", 98}, {"B", 50}}));
  Drain();
  EXPECT_EQ(RedisQuantity("A"), 98);
  EXPECT_EQ(DatabaseQuantity("A"), 98);
  EXPECT_EQ(RedisQuantity("B"), 50);
  EXPECT_EQ(DatabaseQuantity("B"), 50);
}

}  // namespace
}  // namespace invsync::testing
