#include "core/validation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace invsync::core {

namespace {

struct IdCodes {
  ValidationCode empty;
  ValidationCode too_long;
  ValidationCode bad_character;
  std::string_view what;
};

std::optional<ValidationError> CheckId(std::string_view id, std::string_view field,
                                       const IdCodes& codes) {
  if (id.empty()) {
    return ValidationError{codes.empty, std::string(field),
                           fmt::format("{} must not be empty", field)};
  }
  if (id.size() > kMaxIdLength) {
    return ValidationError{
        codes.too_long, std::string(field),
        fmt::format("{} is {} bytes long; at most {} allowed", field, id.size(), kMaxIdLength)};
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto byte = static_cast<unsigned char>(id[i]);
    if (!IsIdentifierByte(id[i])) {
      return ValidationError{
          codes.bad_character, std::string(field),
          fmt::format("{} has a byte 0x{:02x} at position {}; a {} may only hold visible ASCII "
                      "characters (no spaces or control characters)",
                      field, byte, i, codes.what)};
    }
  }
  return std::nullopt;
}

// Up to this many lines, duplicate SKUs are found by comparing each line with those before it.
constexpr std::size_t kLinearScanLines = 32;

}  // namespace

std::optional<ValidationError> CheckSku(std::string_view sku, std::string_view field) {
  return CheckId(sku, field,
                 {ValidationCode::kSkuEmpty, ValidationCode::kSkuTooLong,
                  ValidationCode::kSkuBadCharacter, "SKU"});
}

std::optional<ValidationError> CheckOrderId(std::string_view order_id) {
  return CheckId(order_id, "order_id",
                 {ValidationCode::kOrderIdEmpty, ValidationCode::kOrderIdTooLong,
                  ValidationCode::kOrderIdBadCharacter, "order id"});
}

std::optional<ValidationError> CheckRequestId(std::string_view request_id) {
  return CheckId(request_id, "request_id",
                 {ValidationCode::kRequestIdEmpty, ValidationCode::kRequestIdTooLong,
                  ValidationCode::kRequestIdBadCharacter, "request id"});
}

std::optional<ValidationError> CheckOrder(std::string_view order_id, std::span<const Line> lines,
                                          const Limits& limits) {
  if (auto error = CheckOrderId(order_id)) {
    return error;
  }
  if (lines.empty()) {
    return ValidationError{ValidationCode::kNoLines, "lines", "an order needs at least one line"};
  }
  if (lines.size() > static_cast<std::size_t>(limits.max_order_lines)) {
    return ValidationError{ValidationCode::kTooManyLines, "lines",
                           fmt::format("an order may have at most {} lines; got {}",
                                       limits.max_order_lines, lines.size())};
  }
  // The field names are formatted only for an error: a valid order allocates nothing here.
  std::set<std::string_view> seen;  // only for orders too long for a linear duplicate scan
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const Line& line = lines[i];
    if (!IsIdentifier(line.sku)) {
      return CheckSku(line.sku, fmt::format("lines[{}].sku", i));
    }
    if (line.quantity <= 0 || line.quantity > limits.max_line_quantity) {
      std::string field = fmt::format("lines[{}].quantity", i);
      if (line.quantity <= 0) {
        return ValidationError{ValidationCode::kQuantityNotPositive, field,
                               fmt::format("{} must be at least 1; got {}", field, line.quantity)};
      }
      return ValidationError{ValidationCode::kQuantityTooLarge, field,
                             fmt::format("{} must be at most {}; got {}", field,
                                         limits.max_line_quantity, line.quantity)};
    }
    const bool duplicate =
        lines.size() <= kLinearScanLines
            ? std::any_of(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(i),
                          [&line](const Line& earlier) { return earlier.sku == line.sku; })
            : !seen.insert(line.sku).second;
    if (duplicate) {
      return ValidationError{
          ValidationCode::kDuplicateSku, fmt::format("lines[{}].sku", i),
          fmt::format("SKU \"{}\" appears more than once; send one line per SKU", line.sku)};
    }
  }
  return std::nullopt;
}

std::optional<ValidationError> CheckRestock(std::string_view sku, std::int64_t quantity,
                                            std::string_view request_id) {
  if (auto error = CheckSku(sku)) {
    return error;
  }
  if (auto error = CheckRequestId(request_id)) {
    return error;
  }
  if (quantity <= 0) {
    return ValidationError{ValidationCode::kQuantityNotPositive, "quantity",
                           fmt::format("quantity must be at least 1; got {}", quantity)};
  }
  if (quantity > kMaxStock) {
    return ValidationError{ValidationCode::kQuantityTooLarge, "quantity",
                           fmt::format("quantity must be at most {}; got {}", kMaxStock, quantity)};
  }
  return std::nullopt;
}

std::optional<ValidationError> CheckSet(std::string_view sku, std::int64_t quantity,
                                        std::string_view request_id) {
  if (auto error = CheckSku(sku)) {
    return error;
  }
  if (auto error = CheckRequestId(request_id)) {
    return error;
  }
  if (quantity < 0) {
    return ValidationError{ValidationCode::kQuantityNegative, "quantity",
                           fmt::format("quantity must not be negative; got {}", quantity)};
  }
  if (quantity > kMaxStock) {
    return ValidationError{ValidationCode::kQuantityTooLarge, "quantity",
                           fmt::format("quantity must be at most {}; got {}", kMaxStock, quantity)};
  }
  return std::nullopt;
}

const char* CodeName(ValidationCode code) {
  switch (code) {
    case ValidationCode::kSkuEmpty:
      return "sku_empty";
    case ValidationCode::kSkuTooLong:
      return "sku_too_long";
    case ValidationCode::kSkuBadCharacter:
      return "sku_bad_character";
    case ValidationCode::kOrderIdEmpty:
      return "order_id_empty";
    case ValidationCode::kOrderIdTooLong:
      return "order_id_too_long";
    case ValidationCode::kOrderIdBadCharacter:
      return "order_id_bad_character";
    case ValidationCode::kRequestIdEmpty:
      return "request_id_empty";
    case ValidationCode::kRequestIdTooLong:
      return "request_id_too_long";
    case ValidationCode::kRequestIdBadCharacter:
      return "request_id_bad_character";
    case ValidationCode::kQuantityNotPositive:
      return "quantity_not_positive";
    case ValidationCode::kQuantityTooLarge:
      return "quantity_too_large";
    case ValidationCode::kQuantityNegative:
      return "quantity_negative";
    case ValidationCode::kNoLines:
      return "no_lines";
    case ValidationCode::kTooManyLines:
      return "too_many_lines";
    case ValidationCode::kDuplicateSku:
      return "duplicate_sku";
    case ValidationCode::kStockTooLarge:
      return "stock_too_large";
  }
  return "invalid";
}

const char* StatusName(StockStatus status) {
  switch (status) {
    case StockStatus::kOk:
      return "ok";
    case StockStatus::kInvalid:
      return "invalid";
    case StockStatus::kInsufficient:
      return "insufficient_stock";
    case StockStatus::kUnknownSku:
      return "unknown_sku";
    case StockStatus::kUnknownOrder:
      return "unknown_order";
    case StockStatus::kOrderConflict:
      return "order_conflict";
    case StockStatus::kRequestConflict:
      return "request_conflict";
  }
  return "unknown";
}

const char* StateName(OrderState state) {
  return state == OrderState::kCancelled ? "cancelled" : "deducted";
}

}  // namespace invsync::core
