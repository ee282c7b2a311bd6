// Every validation rule of the stock operations, each with its own error.
#include "core/validation.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "common/text.hpp"

namespace invsync::core {
namespace {

const Limits kLimits{.max_line_quantity = 1000, .max_order_lines = 3};

ValidationCode OrderError(const std::string& order_id, const std::vector<Line>& lines) {
  auto error = CheckOrder(order_id, lines, kLimits);
  EXPECT_TRUE(error.has_value()) << "order " << order_id << " was accepted";
  return error ? error->code : ValidationCode::kNoLines;
}

TEST(Validation, AcceptsAWellFormedOrder) {
  EXPECT_FALSE(CheckOrder("o-1", {{{"A", 1}, {"B:x/1", 1000}}}, kLimits));
}

TEST(Validation, SkuMustNotBeEmpty) { EXPECT_EQ(CheckSku("")->code, ValidationCode::kSkuEmpty); }

TEST(Validation, SkuIsAtMost128Bytes) {
  EXPECT_FALSE(CheckSku(std::string(128, 'a')));
  EXPECT_EQ(CheckSku(std::string(129, 'a'))->code, ValidationCode::kSkuTooLong);
}

TEST(Validation, SkuHoldsOnlyVisibleAscii) {
  const std::vector<std::string> bad_skus = {"a b",         "a\tb", "a\nb", std::string("a\0b", 3),
                                             "caf\xc3\xa9", "\x7f"};
  for (const auto& bad : bad_skus) {
    auto error = CheckSku(bad);
    ASSERT_TRUE(error) << bad;
    EXPECT_EQ(error->code, ValidationCode::kSkuBadCharacter);
    EXPECT_NE(error->message.find("position"), std::string::npos);
  }
}

TEST(Validation, OrderIdRules) {
  EXPECT_EQ(OrderError("", {{"A", 1}}), ValidationCode::kOrderIdEmpty);
  EXPECT_EQ(OrderError(std::string(129, 'o'), {{"A", 1}}), ValidationCode::kOrderIdTooLong);
  EXPECT_EQ(OrderError("o 1", {{"A", 1}}), ValidationCode::kOrderIdBadCharacter);
}

TEST(Validation, RequestIdRules) {
  EXPECT_EQ(CheckRequestId("")->code, ValidationCode::kRequestIdEmpty);
  EXPECT_EQ(CheckRequestId(std::string(129, 'r'))->code, ValidationCode::kRequestIdTooLong);
  EXPECT_EQ(CheckRequestId("r\x01")->code, ValidationCode::kRequestIdBadCharacter);
}

TEST(Validation, OrderNeedsAtLeastOneLine) {
  EXPECT_EQ(OrderError("o1", {}), ValidationCode::kNoLines);
}

TEST(Validation, OrderHasAtMostTheConfiguredLines) {
  EXPECT_EQ(OrderError("o1", {{"A", 1}, {"B", 1}, {"C", 1}, {"D", 1}}),
            ValidationCode::kTooManyLines);
}

TEST(Validation, LineQuantityIsPositive) {
  EXPECT_EQ(OrderError("o1", {{"A", 0}}), ValidationCode::kQuantityNotPositive);
  EXPECT_EQ(OrderError("o1", {{"A", -3}}), ValidationCode::kQuantityNotPositive);
}

TEST(Validation, LineQuantityIsAtMostTheConfiguredMaximum) {
  auto error = CheckOrder("o1", {{{"A", 1001}}}, kLimits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ValidationCode::kQuantityTooLarge);
  EXPECT_EQ(error->field, "lines[0].quantity");
}

TEST(Validation, DuplicateSkusAreRejectedNotMerged) {
  auto error = CheckOrder("o1", {{{"A", 1}, {"B", 1}, {"A", 2}}}, kLimits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, ValidationCode::kDuplicateSku);
  EXPECT_EQ(error->field, "lines[2].sku");
}

TEST(Validation, DuplicateSkusAreFoundInOrdersOfEveryLength) {
  Limits limits = kLimits;
  limits.max_order_lines = 1000;
  for (std::size_t length : {2U, 31U, 32U, 33U, 500U}) {
    std::vector<Line> lines;
    for (std::size_t i = 0; i < length; ++i) {
      lines.push_back({"S" + std::to_string(i), 1});
    }
    EXPECT_FALSE(CheckOrder("o1", lines, limits)) << length;
    lines.push_back(lines[length / 2]);
    auto error = CheckOrder("o1", lines, limits);
    ASSERT_TRUE(error) << length;
    EXPECT_EQ(error->code, ValidationCode::kDuplicateSku) << length;
    EXPECT_EQ(error->field, "lines[" + std::to_string(length) + "].sku") << length;
  }
}

TEST(Validation, LineSkuErrorsNameTheLine) {
  auto error = CheckOrder("o1", {{{"A", 1}, {"", 1}}}, kLimits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->field, "lines[1].sku");
}

TEST(Validation, RestockQuantityIsPositiveAndBounded) {
  EXPECT_FALSE(CheckRestock("A", 1, "r"));
  EXPECT_EQ(CheckRestock("A", 0, "r")->code, ValidationCode::kQuantityNotPositive);
  EXPECT_EQ(CheckRestock("A", kMaxStock + 1, "r")->code, ValidationCode::kQuantityTooLarge);
  EXPECT_EQ(CheckRestock("A", 1, "")->code, ValidationCode::kRequestIdEmpty);
}

TEST(Validation, SetQuantityMayBeZeroButNotNegative) {
  EXPECT_FALSE(CheckSet("A", 0, "s"));
  EXPECT_EQ(CheckSet("A", -1, "s")->code, ValidationCode::kQuantityNegative);
  EXPECT_EQ(CheckSet("A", kMaxStock + 1, "s")->code, ValidationCode::kQuantityTooLarge);
}

TEST(Validation, EveryCodeHasADistinctName) {
  std::set<std::string> names;
  for (int code = 0; code <= static_cast<int>(ValidationCode::kStockTooLarge); ++code) {
    names.insert(CodeName(static_cast<ValidationCode>(code)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(ValidationCode::kStockTooLarge) + 1);
}

// What a database column can hold: reconcile judges any other Redis key name as a SKU without a
// row.
TEST(StorableText, IsWellFormedUtf8WithoutNul) {
  EXPECT_TRUE(IsStorableText(""));
  EXPECT_TRUE(IsStorableText("SKU-1"));
  EXPECT_TRUE(IsStorableText("caf\xc3\xa9"));            // é
  EXPECT_TRUE(IsStorableText("\xe2\x82\xac"));           // €
  EXPECT_TRUE(IsStorableText("\xf0\x9f\x93\xa6"));       // a four-byte character
  EXPECT_FALSE(IsStorableText("caf\xe9"));               // Latin-1
  EXPECT_FALSE(IsStorableText(std::string("a\0b", 3)));  // NUL
  EXPECT_FALSE(IsStorableText("\xc3"));                  // cut short
  EXPECT_FALSE(IsStorableText("\xc0\xaf"));              // overlong '/'
  EXPECT_FALSE(IsStorableText("\xed\xa0\x80"));          // a surrogate
  EXPECT_FALSE(IsStorableText("\xf4\x90\x80\x80"));      // beyond U+10FFFF
  EXPECT_FALSE(IsStorableText("\x80"));                  // a continuation byte alone
}

}  // namespace
}  // namespace invsync::core
