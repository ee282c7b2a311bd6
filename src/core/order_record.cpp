#include "core/order_record.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::core {

std::string OrderRecord(const std::vector<Line>& lines) {
  std::string text;
  for (const auto& line : lines) {
    text += fmt::format("{} {}\n", line.sku, line.quantity);
  }
  return text;
}

std::vector<Line> ParseOrderRecord(std::string_view record) {
  std::vector<Line> lines;
  for (const auto& part : SplitLines(record)) {
    auto space = part.rfind(' ');
    if (space == std::string::npos) {
      throw PermanentError(fmt::format("malformed order record line \"{}\" in Redis", part));
    }
    auto quantity = ParseInt64(std::string_view(part).substr(space + 1));
    if (!quantity) {
      throw PermanentError(fmt::format("Redis returned a non-integer order quantity \"{}\"",
                                       part.substr(space + 1)));
    }
    lines.push_back({part.substr(0, space), *quantity});
  }
  return lines;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    auto end = text.find('\n');
    parts.emplace_back(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return parts;
}

}  // namespace invsync::core
