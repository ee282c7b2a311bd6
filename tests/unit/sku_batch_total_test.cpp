// One SKU's share of a persister batch: the sum its existing row gets, and the set that creates a
// missing row.
#include <gtest/gtest.h>

#include <limits>

#include "common/error.hpp"
#include "db/store.hpp"

namespace invsync::db {
namespace {

StockEvent Event(std::string stream_id, std::string kind, std::int64_t delta,
                 std::optional<std::int64_t> set_quantity = std::nullopt) {
  return {.stream_id = std::move(stream_id),
          .kind = std::move(kind),
          .ref = "r",
          .deltas = {{"A", delta}},
          .set_quantity = set_quantity};
}

TEST(SkuBatchTotal, SumsTheDeltasAndKeepsTheFirstSetInStreamOrder) {
  SkuBatchTotal total;
  total.Add(Event("9-0", "deduct", -1), -1);
  total.Add(Event("10-0", "set", -40, 50), -40);
  total.Add(Event("2-0", "set", 7), 7);  // claimed back: earlier in the stream than 9-0
  EXPECT_EQ(total.delta, -34);
  EXPECT_EQ(total.first_set, StreamPosition("2-0"));
  EXPECT_EQ(total.set_quantity, 7);  // no recorded quantity: its delta
}

TEST(SkuBatchTotal, ASumPast64BitsIsRejectedNotWrapped) {
  SkuBatchTotal total;
  constexpr auto kLarge = std::numeric_limits<std::int64_t>::max() - 5;
  total.Add(Event("1-0", "restock", kLarge), kLarge);
  EXPECT_THROW(total.Add(Event("2-0", "restock", 6), 6), RejectedDataError);
}

}  // namespace
}  // namespace invsync::db
