// The checker on hand-made histories: a clean one passes, each kind of broken promise is found
// and names the ids involved.
#include "checker.hpp"

#include <gtest/gtest.h>

namespace invsync::fault {
namespace {

using namespace std::chrono_literals;

Op Order(std::string id, int status, std::vector<Line> lines) {
  return {.kind = OpKind::kOrder,
          .id = std::move(id),
          .lines = std::move(lines),
          .first = {.status = status, .body = "", .error = status == 0 ? "timeout" : ""},
          .retry = std::nullopt};
}

// Two SKUs of 10; order o1 (A:2, B:1) applied, o2 refused, o3 unknown and not applied.
struct Fixture {
  std::vector<Op> ops = {Order("o1", 201, {{"A", 2}, {"B", 1}}), Order("o2", 409, {{"A", 50}}),
                         Order("o3", 0, {{"B", 1}})};
  Observed observed{.ledger = {{"deduct", "o1", "A", -2}, {"deduct", "o1", "B", -1}},
                    .database = {{"A", 8}, {"B", 9}},
                    .redis = {{"A", 8}, {"B", 9}},
                    .initial = {{"A", 10}, {"B", 10}},
                    .backoffice = {},
                    .drained = true,
                    .reconcile_clean = true,
                    .reconcile_summary = ""};
};

bool Mentions(const Report& report, const std::string& text) {
  for (const auto& violation : report.violations) {
    if (violation.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(FaultChecker, CleanHistoryHasNoViolations) {
  Fixture f;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(report.violations.empty()) << report.Format("clean");
  EXPECT_EQ(report.orders.sent, 3);
  EXPECT_EQ(report.orders.ok, 1);
  EXPECT_EQ(report.orders.conflict, 1);
  EXPECT_EQ(report.orders.unknown, 1);
  EXPECT_EQ(report.units_sold, 3);
}

TEST(FaultChecker, AcknowledgedOrderMissingFromLedgerIsLost) {
  Fixture f;
  f.observed.ledger.clear();
  f.observed.database = {{"A", 10}, {"B", 10}};
  f.observed.redis = {{"A", 10}, {"B", 10}};
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "deduct o1")) << report.Format("lost");
  // With a declared Redis data loss it is counted, not a violation.
  auto tolerated = Check(f.ops, f.observed, {.redis_data_loss = true});
  EXPECT_TRUE(tolerated.violations.empty()) << tolerated.Format("lost");
  EXPECT_EQ(tolerated.lost_to_data_loss, 1);
}

TEST(FaultChecker, AfterAnEverysecKillOnlyChangesAnsweredJustBeforeItMayBeLost) {
  Fixture f;
  f.observed.ledger.clear();
  f.observed.database = {{"A", 10}, {"B", 10}};
  f.observed.redis = {{"A", 10}, {"B", 10}};
  const auto answered = std::chrono::steady_clock::now();
  f.ops[0].first.at = answered;
  const auto killed_after = [&](std::chrono::milliseconds gap) {
    return Check(f.ops, f.observed, {.redis_killed_at = answered + gap});
  };
  auto held_back = killed_after(std::chrono::milliseconds(2500));
  EXPECT_TRUE(held_back.violations.empty()) << held_back.Format("held back");
  EXPECT_EQ(held_back.lost_to_data_loss, 1);
  auto in_flight = killed_after(std::chrono::milliseconds(-500));
  EXPECT_TRUE(in_flight.violations.empty()) << in_flight.Format("in flight");
  EXPECT_TRUE(Mentions(killed_after(std::chrono::milliseconds(3500)), "deduct o1"));
  EXPECT_TRUE(Mentions(killed_after(std::chrono::milliseconds(-1500)), "deduct o1"));
  // Unknown at the kill, acknowledged by a retry long after it: that retry's change must be kept.
  f.ops[0].first = {.status = 504, .body = "", .error = "", .at = answered};
  f.ops[0].retry = Answer{.status = 200, .body = "", .error = "", .at = answered + 10s};
  EXPECT_TRUE(Mentions(killed_after(std::chrono::milliseconds(500)), "deduct o1"));
}

TEST(FaultChecker, RefusedOrderInLedgerIsAViolation) {
  Fixture f;
  f.observed.ledger.push_back({"deduct", "o2", "A", -50});
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "deduct o2 (first answer 409) was refused")) << report.Format("x");
}

TEST(FaultChecker, UnknownOrderAppliedPartlyIsAViolation) {
  Fixture f;
  f.ops[2].lines.push_back({"A", 1});
  f.observed.ledger.push_back({"deduct", "o3", "B", -1});
  f.observed.database["B"] = 8;
  f.observed.redis["B"] = 8;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "o3")) << report.Format("partial");
}

TEST(FaultChecker, RedisDifferentFromDatabaseIsAViolation) {
  Fixture f;
  f.observed.redis["A"] = 7;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "A: Redis 7 != database 8")) << report.Format("drift");
}

TEST(FaultChecker, DatabaseNotMatchingItsLedgerIsAViolation) {
  Fixture f;
  f.observed.database["A"] = 6;
  f.observed.redis["A"] = 6;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "A: database 6 != initial 10 + ledger -2")) << report.Format("x");
}

TEST(FaultChecker, OversoldSkuIsAViolation) {
  Fixture f;
  f.ops.push_back(Order("o4", 201, {{"A", 9}}));
  f.observed.ledger.push_back({"deduct", "o4", "A", -9});
  f.observed.database["A"] = -1;
  f.observed.redis["A"] = -1;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "A: oversold: 11 units sold of 10")) << report.Format("oversold");
  EXPECT_TRUE(Mentions(report, "negative stock")) << report.Format("oversold");
}

TEST(FaultChecker, LedgerEventNobodySentIsAViolation) {
  Fixture f;
  f.observed.ledger.push_back({"restock", "ghost", "A", 5});
  f.observed.database["A"] = 13;
  f.observed.redis["A"] = 13;
  auto report = Check(f.ops, f.observed);
  EXPECT_TRUE(Mentions(report, "restock:ghost matches no request")) << report.Format("phantom");
}

TEST(FaultChecker, NoDrainOrUncleanReconcileIsAViolation) {
  Fixture f;
  f.observed.drained = false;
  f.observed.reconcile_clean = false;
  auto report = Check(f.ops, f.observed);
  EXPECT_EQ(report.violations.size(), 2U) << report.Format("x");
}

}  // namespace
}  // namespace invsync::fault
