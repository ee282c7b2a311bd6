#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace invsync::core {

/// Business outcome of a stock operation. Refusals are values, not exceptions.
enum class StockStatus {
  kOk,               ///< done (or an identical replay of something done)
  kInvalid,          ///< the input breaks a validation rule; see `ValidationError`
  kInsufficient,     ///< not enough stock on one line; see `Shortage`
  kUnknownSku,       ///< a SKU that neither Redis nor the database knows
  kUnknownOrder,     ///< cancel or lookup of an order id never deducted (within the retention)
  kOrderConflict,    ///< the order id was used before with different lines
  kRequestConflict,  ///< the request id was used before with a different SKU, kind or quantity
};

/// Which rule an input broke. Each has its own code so callers can map it precisely.
enum class ValidationCode {
  kSkuEmpty,
  kSkuTooLong,
  kSkuBadCharacter,
  kOrderIdEmpty,
  kOrderIdTooLong,
  kOrderIdBadCharacter,
  kRequestIdEmpty,
  kRequestIdTooLong,
  kRequestIdBadCharacter,
  kQuantityNotPositive,
  kQuantityTooLarge,
  kQuantityNegative,
  kNoLines,
  kTooManyLines,
  kDuplicateSku,
  kStockTooLarge,  ///< a restock that would take the stock past kMaxStock
};

/// A broken rule, with the field it concerns ("lines[2].sku") and a sentence for people.
struct ValidationError {
  ValidationCode code;
  std::string field;
  std::string message;
};

/// Stable snake_case name of a code, e.g. "sku_too_long" (used in JSON and CLI output).
[[nodiscard]] const char* CodeName(ValidationCode code);
/// Stable snake_case name of a status, e.g. "insufficient_stock".
[[nodiscard]] const char* StatusName(StockStatus status);

/// One line of an order.
struct Line {
  std::string sku;
  std::int64_t quantity = 0;

  friend bool operator==(const Line&, const Line&) = default;
};

/// One line of a deducted or cancelled order with the SKU's stock right after the change.
struct LineResult {
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t remaining = 0;
};

/// Why an order was refused for stock: the first line that could not be served.
struct Shortage {
  std::string sku;
  std::int64_t requested = 0;
  std::int64_t available = 0;
};

enum class OrderState { kDeducted, kCancelled };
[[nodiscard]] const char* StateName(OrderState state);

/// Result of deduct, cancel and order lookups.
struct OrderResult {
  StockStatus status = StockStatus::kOk;
  std::string order_id;
  OrderState state = OrderState::kDeducted;
  bool replayed = false;                   ///< an earlier identical call did the work
  std::vector<LineResult> lines;           ///< in SKU order
  std::optional<Shortage> shortage;        ///< for kInsufficient
  std::string unknown_sku;                 ///< for kUnknownSku
  std::optional<ValidationError> invalid;  ///< for kInvalid
};

/// Result of get, restock and set.
struct StockResult {
  StockStatus status = StockStatus::kOk;
  std::string sku;
  std::int64_t quantity = 0;
  bool replayed = false;
  std::optional<ValidationError> invalid;
};

/// Result of get_many: known SKUs with quantities, and the unknown ones.
struct ManyResult {
  StockStatus status = StockStatus::kOk;
  std::vector<std::pair<std::string, std::int64_t>> items;  ///< in request order
  std::vector<std::string> unknown;
  std::optional<ValidationError> invalid;
};

}  // namespace invsync::core
