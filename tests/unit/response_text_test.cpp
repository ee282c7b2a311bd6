// The stock and order answers the hot paths write directly must be, byte for byte, the JSON text
// the general path (an nlohmann document, dumped) gives for the same result.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/handlers.hpp"

namespace invsync::api {
namespace {

using nlohmann::json;

std::string GeneralStockText(const core::StockResult& result) {
  return JsonText({{"sku", result.sku}, {"product_id", result.sku}, {"quantity", result.quantity}});
}

std::string GeneralOrderText(const core::OrderResult& result) {
  json lines = json::array();
  for (const auto& line : result.lines) {
    lines.push_back(
        {{"sku", line.sku}, {"quantity", line.quantity}, {"remaining", line.remaining}});
  }
  return JsonText(
      {{"order_id", result.order_id}, {"status", core::StateName(result.state)}, {"lines", lines}});
}

// Identifiers as validation lets them through, with the two characters JSON escapes among them,
// and strings validation would refuse (a space, a control byte, a byte that is not UTF-8), which
// must take the general path.
const std::vector<std::string> kSkus = {"A",      "sku-00042",  "quote\"d",  "back\\slash",
                                        "!#$%&'", "with space", "tab\there", "bad\xff"};

TEST(ResponseTextTest, StockAnswerIsTheGeneralPathsText) {
  for (const auto& sku : kSkus) {
    for (std::int64_t quantity : {0L, 7L, -3L, 9'007'199'254'740'993L}) {
      const core::StockResult result{.sku = sku, .quantity = quantity};
      EXPECT_EQ(StockResponse(result).body, GeneralStockText(result)) << sku;
      EXPECT_TRUE(json::accept(StockResponse(result).body)) << sku;
    }
  }
}

TEST(ResponseTextTest, OrderAnswerIsTheGeneralPathsText) {
  for (const auto& sku : kSkus) {
    for (const std::string& order_id : std::vector<std::string>{"o-1", "o\"2", sku}) {
      core::OrderResult result{.order_id = order_id, .state = core::OrderState::kDeducted};
      result.lines = {{.sku = sku, .quantity = 2, .remaining = 98}};
      EXPECT_EQ(OrderText(result), GeneralOrderText(result)) << sku;
      result.lines.push_back({.sku = "Z-" + sku, .quantity = 1, .remaining = -4});
      result.state = core::OrderState::kCancelled;
      EXPECT_EQ(OrderText(result), GeneralOrderText(result)) << sku;
      EXPECT_TRUE(json::accept(OrderText(result))) << sku;
    }
  }
}

}  // namespace
}  // namespace invsync::api
