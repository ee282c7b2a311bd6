#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/types.hpp"

namespace invsync::core {

/// An order's lines as Redis stores and compares them: "sku qty\n" per line, in the order given
/// (callers sort by SKU first, so the same order with lines in another order is the same record).
/// SKUs cannot hold spaces or newlines, so the record is unambiguous.
[[nodiscard]] std::string OrderRecord(const std::vector<Line>& lines);

/// The lines of an order record read back from Redis. A line without a space or with a
/// non-integer quantity throws `PermanentError`.
[[nodiscard]] std::vector<Line> ParseOrderRecord(std::string_view record);

/// The lines of a text, split at '\n' (a final newline ends the last line, adding none).
[[nodiscard]] std::vector<std::string> SplitLines(std::string_view text);

}  // namespace invsync::core
