// The pure parts of invsync-bench's load generator: latency histogram, Zipf sampler, open-loop
// schedule and the workload's requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include "histogram.hpp"
#include "schedule.hpp"
#include "workload.hpp"
#include "zipf.hpp"

namespace invsync::bench {
namespace {

using namespace std::chrono_literals;

TEST(LatencyHistogram, QuantilesOfUniformValuesAreWithinTwoPercent) {
  LatencyHistogram histogram;
  for (int ms = 1; ms <= 1000; ++ms) {
    histogram.Record(std::chrono::milliseconds(ms));
  }
  EXPECT_EQ(histogram.count(), 1000);
  EXPECT_NEAR(histogram.QuantileMillis(0.50), 500, 500 * 0.02);
  EXPECT_NEAR(histogram.QuantileMillis(0.99), 990, 990 * 0.02);
  EXPECT_NEAR(histogram.QuantileMillis(0.999), 999, 999 * 0.02);
  EXPECT_DOUBLE_EQ(histogram.QuantileMillis(1.0), 1000);
  EXPECT_NEAR(histogram.MeanMillis(), 500.5, 1e-9);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  histogram.Record(3ns);
  histogram.Record(40ns);
  EXPECT_DOUBLE_EQ(histogram.QuantileMillis(0.5), 3e-6);
  EXPECT_DOUBLE_EQ(histogram.QuantileMillis(1.0), 40e-6);
}

TEST(LatencyHistogram, TailQuantileSeesTheRareSlowRequest) {
  LatencyHistogram histogram;
  for (int i = 0; i < 999; ++i) {
    histogram.Record(1ms);
  }
  histogram.Record(2s);
  EXPECT_NEAR(histogram.QuantileMillis(0.99), 1, 0.02);
  EXPECT_NEAR(histogram.QuantileMillis(0.9995), 2000, 2000 * 0.02);
  EXPECT_EQ(histogram.max(), 2s);
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.Record(1ms);
  b.Record(10ms);
  b.Record(10ms);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3);
  EXPECT_NEAR(a.QuantileMillis(0.34), 10, 0.2);
  auto cdf = a.Cumulative();
  ASSERT_EQ(cdf.size(), 2U);
  EXPECT_NEAR(cdf[0].second, 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(cdf[1].second, 1.0);
}

TEST(LatencyHistogram, EmptyAnswersZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.QuantileMillis(0.99), 0);
  EXPECT_TRUE(histogram.Cumulative().empty());
}

TEST(ZipfSampler, ProbabilitiesFollowThePowerLaw) {
  ZipfSampler zipf(100'000, 1.1);
  EXPECT_NEAR(zipf.Probability(0) / zipf.Probability(1), std::pow(2.0, 1.1), 1e-9);
  EXPECT_NEAR(zipf.Probability(9) / zipf.Probability(99), std::pow(10.0, 1.1), 1e-9);
  double sum = 0;
  for (std::size_t i = 0; i < zipf.size(); ++i) {
    sum += zipf.Probability(i);
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
}

TEST(ZipfSampler, SamplesMatchTheProbabilities) {
  ZipfSampler zipf(100'000, 1.1);
  std::mt19937_64 rng(42);
  constexpr int kDraws = 400'000;
  std::map<std::size_t, int> counts;
  for (int i = 0; i < kDraws; ++i) {
    const auto rank = zipf.Sample(rng);
    ASSERT_LT(rank, zipf.size());
    ++counts[rank];
  }
  for (std::size_t rank : {0, 1, 2, 9}) {
    const double expected = zipf.Probability(rank) * kDraws;
    EXPECT_NEAR(counts[rank], expected, 5 * std::sqrt(expected)) << "rank " << rank;
  }
  // The long tail is drawn too: a Zipf of s = 1.1 over 100,000 items is not a handful of hot keys.
  EXPECT_GT(counts.size(), 20'000U);
}

TEST(Schedule, OpenLoopIntendsRequestIAtStartPlusIOverRate) {
  const auto start = Clock::now();
  Schedule schedule(start, 1000, 1s);
  auto first = schedule.Next(start);
  auto second = schedule.Next(start);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->intended, start);
  EXPECT_EQ(second->intended - start, 1ms);
  // A connection free late still gets the next slot's own time: the wait behind busy connections
  // counts in its latency.
  auto late = schedule.Next(start + 500ms);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->intended - start, 2ms);
}

TEST(Schedule, OpenLoopEndsAtTheDuration) {
  const auto start = Clock::now();
  Schedule schedule(start, 100, 1s);
  int issued = 0;
  while (schedule.Next(start)) {
    ++issued;
  }
  EXPECT_EQ(issued, 100);
}

TEST(Schedule, ClosedLoopSendsNowUntilTheEndOrAStop) {
  const auto start = Clock::now();
  Schedule schedule(start, 0, 1s);
  auto ticket = schedule.Next(start + 300ms);
  ASSERT_TRUE(ticket);
  EXPECT_EQ(ticket->intended, start + 300ms);
  EXPECT_FALSE(schedule.Next(start + 1s));
  Schedule stopped(start, 0, 1s);
  stopped.Stop();
  EXPECT_FALSE(stopped.Next(start));
}

TEST(Schedule, MaxRequestsCapsTheRun) {
  const auto start = Clock::now();
  Schedule schedule(start, 0, 1h, 3);
  int issued = 0;
  while (schedule.Next(start)) {
    ++issued;
  }
  EXPECT_EQ(issued, 3);
}

TEST(Workload, CatalogueMixHasItsSharesAndOrdersHaveDistinctSortedLines) {
  Workload workload({.skus = CatalogueSkus(1000),
                     .max_lines = 5,
                     .max_units = 2,
                     .read_share = 0.90,
                     .cancel_share = 0.01});
  std::mt19937_64 rng(7);
  std::map<OpKind, int> kinds;
  constexpr int kOps = 50'000;
  for (int i = 0; i < kOps; ++i) {
    Operation op = workload.Make(i, rng);
    ++kinds[op.kind];
    if (op.kind == OpKind::kOrder) {
      ASSERT_GE(op.lines.size(), 1U);
      ASSERT_LE(op.lines.size(), 5U);
      std::set<std::string> skus;
      for (const auto& line : op.lines) {
        skus.insert(line.sku);
        ASSERT_GE(line.quantity, 1);
        ASSERT_LE(line.quantity, 2);
      }
      EXPECT_EQ(skus.size(), op.lines.size());
      EXPECT_TRUE(std::is_sorted(op.lines.begin(), op.lines.end(),
                                 [](const auto& a, const auto& b) { return a.sku < b.sku; }));
      EXPECT_EQ(op.order_id, "run-" + std::to_string(i));
      workload.Accepted(op);
    }
  }
  EXPECT_NEAR(kinds[OpKind::kRead], 0.90 * kOps, 0.01 * kOps);
  EXPECT_NEAR(kinds[OpKind::kOrder], 0.09 * kOps, 0.01 * kOps);
  EXPECT_NEAR(kinds[OpKind::kCancel], 0.01 * kOps, 0.005 * kOps);
}

TEST(Workload, EachAcceptedOrderIsCancelledAtMostOnce) {
  Workload workload({.skus = {"A"}, .cancel_share = 1.0});
  std::mt19937_64 rng(1);
  workload.Accepted({.kind = OpKind::kOrder, .order_id = "o1", .lines = {{"A", 2}}});
  Operation cancel = workload.Make(0, rng);
  EXPECT_EQ(cancel.kind, OpKind::kCancel);
  EXPECT_EQ(cancel.order_id, "o1");
  ASSERT_EQ(cancel.lines.size(), 1U);
  EXPECT_EQ(cancel.lines[0].quantity, 2);
  // Nothing left to cancel: the request becomes a read.
  EXPECT_EQ(workload.Make(1, rng).kind, OpKind::kRead);
}

}  // namespace
}  // namespace invsync::bench
