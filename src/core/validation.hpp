#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/text.hpp"
#include "core/types.hpp"

namespace invsync::core {

/// Largest stock a SKU may hold or be set to, and reach by a restock. Redis scripts compute in
/// double precision, exact for integers up to 2^53 (about 9.007e15), and deduct.lua and cancel.lua
/// take a quantity of more than 16 characters for a corrupt key.
inline constexpr std::int64_t kMaxStock = 1'000'000'000'000'000;

/// Largest size of one SKU's delta in an event invsync's scripts write to the stream. A set's delta
/// is the quantity set (at most kMaxStock) minus the one Redis holds, and the scripts refuse to
/// work on a quantity of more than 16 characters, so it stays below 10 * kMaxStock (a quantity
/// past kMaxStock can reach Redis from the database). The persister refuses larger deltas (a
/// foreign or corrupt entry): a batch's per-SKU sums then stay far from the 64-bit limit.
inline constexpr std::int64_t kMaxEventDelta = 10 * kMaxStock;

/// Identifiers (SKU, order id, request id): 1 to 128 bytes of visible ASCII (0x21-0x7E): no
/// spaces, control characters or non-ASCII bytes, so they are safe in keys, logs, URLs and the
/// stream encoding.
using invsync::kMaxIdLength;

/// Limits that are configurable.
struct Limits {
  std::int64_t max_line_quantity = 1'000'000;
  int max_order_lines = 100;
};

[[nodiscard]] std::optional<ValidationError> CheckSku(std::string_view sku,
                                                      std::string_view field = "sku");
[[nodiscard]] std::optional<ValidationError> CheckOrderId(std::string_view order_id);
[[nodiscard]] std::optional<ValidationError> CheckRequestId(std::string_view request_id);

/// An order: a valid id, 1 to `max_order_lines` lines, each a valid SKU with a quantity of 1 to
/// `max_line_quantity`, and no SKU twice (duplicates are rejected, not merged: a client that
/// sends the same SKU twice most likely has a bug worth hearing about).
[[nodiscard]] std::optional<ValidationError> CheckOrder(std::string_view order_id,
                                                        std::span<const Line> lines,
                                                        const Limits& limits);
/// A restock: valid SKU and request id, quantity 1 to `kMaxStock`.
[[nodiscard]] std::optional<ValidationError> CheckRestock(std::string_view sku,
                                                          std::int64_t quantity,
                                                          std::string_view request_id);
/// An absolute set: valid SKU and request id, quantity 0 to `kMaxStock`.
[[nodiscard]] std::optional<ValidationError> CheckSet(std::string_view sku, std::int64_t quantity,
                                                      std::string_view request_id);

}  // namespace invsync::core
