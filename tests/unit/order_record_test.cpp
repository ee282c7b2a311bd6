// The order record as Redis keeps it: lines as "sku qty\n", the whole record as four
// tab-separated fields.
#include "core/order_record.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace invsync::core {
namespace {

TEST(OrderRecordTest, LinesRoundTripInTheOrderGiven) {
  const std::vector<Line> lines = {{"A", 2}, {"B-1", 10}};
  const std::string text = OrderRecord(lines);
  EXPECT_EQ(text, "A 2\nB-1 10\n");
  const auto parsed = ParseOrderRecord(text);
  ASSERT_EQ(parsed.size(), 2U);
  EXPECT_EQ(parsed[1].sku, "B-1");
  EXPECT_EQ(parsed[1].quantity, 10);
}

TEST(OrderRecordTest, StoredOrderHasFourTabSeparatedFields) {
  const StoredOrder deducted = ParseStoredOrder("A 2\nB 1\n\tdeducted\t8\n3\t");
  EXPECT_EQ(deducted.lines, "A 2\nB 1\n");
  EXPECT_EQ(deducted.status, "deducted");
  EXPECT_EQ(deducted.remaining, "8\n3");
  EXPECT_EQ(deducted.cancel_remaining, "");

  const StoredOrder cancelled = ParseStoredOrder("A 2\n\tcancelled\t8\t10");
  EXPECT_EQ(cancelled.status, "cancelled");
  EXPECT_EQ(cancelled.remaining, "8");
  EXPECT_EQ(cancelled.cancel_remaining, "10");
}

TEST(OrderRecordTest, StoredOrderOfAnotherShapeIsAnError) {
  EXPECT_THROW(static_cast<void>(ParseStoredOrder("")), PermanentError);
  EXPECT_THROW(static_cast<void>(ParseStoredOrder("not a record")), PermanentError);
  EXPECT_THROW(static_cast<void>(ParseStoredOrder("A 1\n\tdeducted\t9")), PermanentError);
  EXPECT_THROW(static_cast<void>(ParseStoredOrder("A 1\n\tdeducted\t9\t\textra")), PermanentError);
}

}  // namespace
}  // namespace invsync::core
