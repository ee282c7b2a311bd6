// Decoding of fill.lua's reply: one outcome letter per SKU, then the quantities of the SKUs filled
// with another value than the database's or already cached. Anything else is refused.
#include <gtest/gtest.h>

#include <vector>

#include "common/error.hpp"
#include "core/cache_fill.hpp"

namespace invsync::core {
namespace {

redis::Value Str(std::string text) {
  return {.type = redis::Value::Type::kString, .str = std::move(text)};
}

redis::Value Reply(std::vector<std::string> texts) {
  redis::Value value{.type = redis::Value::Type::kArray};
  for (auto& text : texts) {
    value.elements.push_back(Str(std::move(text)));
  }
  return value;
}

std::vector<FillInput> Inputs(std::size_t count) {
  std::vector<FillInput> inputs;
  for (std::size_t i = 0; i < count; ++i) {
    inputs.push_back({.sku = "S" + std::to_string(i),
                      .snapshot = {.quantity = static_cast<std::int64_t>(10 * (i + 1))},
                      .persisted_before = "0"});
  }
  return inputs;
}

std::vector<FillResult> Read(const redis::Value& reply, const std::vector<FillInput>& inputs) {
  std::vector<FillResult> results(inputs.size());
  CacheFiller::ReadFillReply(reply, inputs, results);
  return results;
}

TEST(FillReply, EachLetterGivesItsOutcomeAndQuantity) {
  const auto results = Read(Reply({"FfcairF", "25", "7"}), Inputs(7));
  ASSERT_EQ(results.size(), 7U);
  EXPECT_EQ(results[0].outcome, FillOutcome::kFilled);
  EXPECT_EQ(results[0].quantity, 10);  // as the database said
  EXPECT_EQ(results[1].outcome, FillOutcome::kFilled);
  EXPECT_EQ(results[1].quantity, 25);  // changes applied after the read added
  EXPECT_EQ(results[2].outcome, FillOutcome::kCached);
  EXPECT_EQ(results[2].quantity, 7);
  EXPECT_EQ(results[3].outcome, FillOutcome::kAbsent);
  EXPECT_EQ(results[4].outcome, FillOutcome::kInflight);
  EXPECT_EQ(results[5].outcome, FillOutcome::kRetry);
  EXPECT_EQ(results[6].outcome, FillOutcome::kFilled);
  EXPECT_EQ(results[6].quantity, 70);
}

TEST(FillReply, RefusesRepliesOfAnotherShape) {
  const auto inputs = Inputs(2);
  const std::vector<redis::Value> bad = {
      Reply({}),               // no outcomes
      Reply({"F"}),            // one outcome for two SKUs
      Reply({"FFF"}),          // three for two
      Reply({"Fx"}),           // unknown letter
      Reply({"Fc"}),           // a cached SKU without its quantity
      Reply({"FF", "3"}),      // a quantity nobody asked for
      Reply({"Fc", "three"}),  // a quantity that is not a number
      redis::Value{.type = redis::Value::Type::kError, .str = "ERR boom"},
  };
  for (const auto& reply : bad) {
    EXPECT_ANY_THROW(Read(reply, inputs));
  }
  // 'F' for a SKU the database did not have cannot be honoured.
  auto absent = Inputs(1);
  absent[0].snapshot.quantity.reset();
  EXPECT_THROW(Read(Reply({"F"}), absent), PermanentError);
}

}  // namespace
}  // namespace invsync::core
