// The audit's verdicts on hand-made histories: what the stores hold after a run against what the
// answers said.
#include "audit.hpp"

#include <gtest/gtest.h>

namespace invsync::bench {
namespace {

Record Order(std::string id, std::vector<OrderLine> lines, Outcome outcome) {
  return {.kind = OpKind::kOrder,
          .order_id = std::move(id),
          .lines = std::move(lines),
          .outcome = outcome};
}

Record Cancel(std::string id, std::vector<OrderLine> lines, Outcome outcome) {
  return {.kind = OpKind::kCancel,
          .order_id = std::move(id),
          .lines = std::move(lines),
          .outcome = outcome};
}

class AuditTest : public ::testing::Test {
 protected:
  AuditReport Run() {
    input.records = records;
    return Judge(input, observed);
  }
  // Both stores hold `quantity` for `sku`.
  void Holds(const std::string& sku, std::int64_t quantity) {
    observed.database[sku] = quantity;
    observed.redis[sku] = quantity;
  }

  AuditInput input;
  Observed observed;
  std::vector<Record> records;
};

TEST_F(AuditTest, ConsistentFlashSaleIsClean) {
  input.initial = {{"F", 5}};
  input.expect_sold_out = {"F"};
  records = {Order("a", {{"F", 3}}, Outcome::kOk), Order("b", {{"F", 2}}, Outcome::kOk),
             Order("c", {{"F", 1}}, Outcome::kRefused)};
  observed.ledger = {{"deduct:a", {{"F", -3}}}, {"deduct:b", {{"F", -2}}}};
  Holds("F", 0);
  auto report = Run();
  EXPECT_TRUE(report.clean()) << report.Summary();
  EXPECT_EQ(report.orders_accepted, 2);
  EXPECT_EQ(report.orders_refused, 1);
  EXPECT_EQ(report.units_sold, 5);
  EXPECT_EQ(report.Summary(), "clean");
}

TEST_F(AuditTest, LostUpdatesShowAsOversellAndAWrongDatabaseQuantity) {
  // Two clients read 2, both sold 2 and both wrote 0: the naive cache's race.
  input.initial = {{"F", 2}};
  records = {Order("a", {{"F", 2}}, Outcome::kOk), Order("b", {{"F", 2}}, Outcome::kOk)};
  observed.ledger = {{"deduct:a", {{"F", -2}}}, {"deduct:b", {{"F", -2}}}};
  Holds("F", 0);
  auto report = Run();
  EXPECT_FALSE(report.clean());
  EXPECT_EQ(report.oversold_units, 2);
  EXPECT_EQ(report.oversold_skus, 1);
  EXPECT_EQ(report.database_mismatch, 1);
  EXPECT_NE(report.Summary().find("2 units oversold on 1 SKU(s)"), std::string::npos);
}

TEST_F(AuditTest, AcceptedOrderMissingFromTheLedgerIsAViolation) {
  input.initial = {{"A", 10}};
  records = {Order("a", {{"A", 1}}, Outcome::kOk)};
  Holds("A", 9);
  auto report = Run();
  EXPECT_EQ(report.accepted_missing, 1);
  ASSERT_FALSE(report.examples.empty());
  EXPECT_NE(report.examples[0].find("order a"), std::string::npos);
}

TEST_F(AuditTest, AcceptedOrderWithOtherLinesInTheLedgerIsAViolation) {
  input.initial = {{"A", 10}, {"B", 10}};
  records = {Order("a", {{"A", 1}, {"B", 1}}, Outcome::kOk)};
  observed.ledger = {{"deduct:a", {{"A", -1}}}};  // line B lost
  Holds("A", 9);
  Holds("B", 9);
  EXPECT_EQ(Run().accepted_missing, 1);
}

TEST_F(AuditTest, RefusedOrderInTheLedgerIsAViolation) {
  input.initial = {{"A", 10}};
  records = {Order("r", {{"A", 1}}, Outcome::kRefused)};
  observed.ledger = {{"deduct:r", {{"A", -1}}}};
  Holds("A", 9);
  auto report = Run();
  EXPECT_EQ(report.refused_present, 1);
  EXPECT_EQ(report.database_mismatch, 0);  // the database does match the ledger
}

TEST_F(AuditTest, UnansweredOrderIsResolvedFromTheLedger) {
  input.initial = {{"A", 10}};
  records = {Order("t", {{"A", 4}}, Outcome::kTransport), Order("u", {{"A", 1}}, Outcome::kError)};
  observed.ledger = {{"deduct:t", {{"A", -4}}}};
  Holds("A", 6);
  auto report = Run();
  EXPECT_TRUE(report.clean()) << report.Summary();
  EXPECT_EQ(report.orders_unknown, 2);
  EXPECT_EQ(report.orders_unknown_applied, 1);
}

TEST_F(AuditTest, CancelGivesStockBackAndMustBeInTheLedger) {
  input.initial = {{"A", 10}};
  records = {Order("a", {{"A", 3}}, Outcome::kOk), Cancel("a", {{"A", 3}}, Outcome::kOk)};
  observed.ledger = {{"deduct:a", {{"A", -3}}}, {"cancel:a", {{"A", 3}}}};
  Holds("A", 10);
  EXPECT_TRUE(Run().clean());

  observed.ledger.erase("cancel:a");
  auto report = Run();
  EXPECT_EQ(report.cancels_missing, 1);
  EXPECT_EQ(report.cancels_accepted, 1);
}

TEST_F(AuditTest, UnsoldStockWhereDemandExceededItIsAViolation) {
  input.initial = {{"F", 5}};
  input.expect_sold_out = {"F"};
  records = {Order("a", {{"F", 3}}, Outcome::kOk)};
  observed.ledger = {{"deduct:a", {{"F", -3}}}};
  Holds("F", 2);
  EXPECT_EQ(Run().not_sold_out, 1);
}

TEST_F(AuditTest, RedisDifferingFromTheDatabaseIsAViolationOnlyWithACache) {
  input.initial = {{"A", 10}};
  observed.database["A"] = 10;
  observed.redis["A"] = 11;
  EXPECT_EQ(Run().cache_mismatch, 1);
  input.has_cache = false;
  EXPECT_TRUE(Run().clean());
}

TEST_F(AuditTest, BackOfficeChangesAreExpectedInBothStores) {
  input.initial = {{"A", 10}};
  input.adjustments = {{"A", 5}};
  records = {Order("a", {{"A", 12}}, Outcome::kOk)};  // possible only after the restock
  observed.ledger = {{"deduct:a", {{"A", -12}}}};
  Holds("A", 3);
  EXPECT_TRUE(Run().clean());
  Holds("A", -2);  // the restock lost (overwritten by an absolute value)
  auto report = Run();
  EXPECT_EQ(report.database_mismatch, 1);
  EXPECT_EQ(report.negative, 1);
}

TEST_F(AuditTest, LedgerEventNoRequestExplainsIsAViolation) {
  input.initial = {{"A", 10}};
  observed.ledger = {{"deduct:ghost", {{"A", -1}}}};
  Holds("A", 9);
  EXPECT_EQ(Run().unexpected_events, 1);
}

TEST_F(AuditTest, ExamplesAreCappedPerKindButEveryViolationIsCounted) {
  for (int i = 0; i < 20; ++i) {
    input.initial["S" + std::to_string(i)] = 1;
    observed.database["S" + std::to_string(i)] = 0;
  }
  input.has_cache = false;
  auto report = Judge(input, observed, 3);
  EXPECT_EQ(report.database_mismatch, 20);
  EXPECT_EQ(report.examples.size(), 3U);
  EXPECT_EQ(report.ToJson()["violations"], 20);
}

}  // namespace
}  // namespace invsync::bench
