#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"
#include "redis/client.hpp"

namespace invsync::core {

/// An order's lines as Redis stores and compares them: "sku qty\n" per line, in the order given
/// (callers sort by SKU first, so the same order with lines in another order is the same record).
/// SKUs cannot hold spaces or newlines, so the record is unambiguous.
[[nodiscard]] std::string OrderRecord(const std::vector<Line>& lines);

/// The lines of an order record read back from Redis. A line without a space or with a
/// non-integer quantity throws `PermanentError`.
[[nodiscard]] std::vector<Line> ParseOrderRecord(std::string_view record);

/// An order's record in Redis (deduct.lua writes it, cancel.lua rewrites it): one string of four
/// tab-separated fields, none of which can hold a tab.
struct StoredOrder {
  std::string lines;             ///< the canonical lines (`OrderRecord`)
  std::string status;            ///< "deducted" or "cancelled"
  std::string remaining;         ///< each line's stock after the deduction, one per line
  std::string cancel_remaining;  ///< each line's stock after the cancel ("" before one)
};

/// The record of a string read from Redis; a string of another shape throws `PermanentError`.
[[nodiscard]] StoredOrder ParseStoredOrder(std::string_view text);

/// Reads the order record at `key`; nullopt if there is none. A record an earlier version wrote
/// as a hash of the same fields is read too, until its retention ends.
[[nodiscard]] std::optional<StoredOrder> ReadStoredOrder(redis::Connection& connection,
                                                         const std::string& key);

/// The lines of a text, split at '\n' (a final newline ends the last line, adding none).
[[nodiscard]] std::vector<std::string> SplitLines(std::string_view text);

}  // namespace invsync::core
