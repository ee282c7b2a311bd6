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

StoredOrder ParseStoredOrder(std::string_view text) {
  std::vector<std::string> fields;
  while (fields.size() < 3) {
    const auto tab = text.find('\t');
    if (tab == std::string_view::npos) {
      break;
    }
    fields.emplace_back(text.substr(0, tab));
    text.remove_prefix(tab + 1);
  }
  if (fields.size() != 3 || text.find('\t') != std::string_view::npos) {
    throw PermanentError("malformed order record in Redis (expected four tab-separated fields)");
  }
  return {std::move(fields[0]), std::move(fields[1]), std::move(fields[2]), std::string(text)};
}

std::optional<StoredOrder> ReadStoredOrder(redis::Connection& connection, const std::string& key) {
  // Pipelined, so an error reply comes back as a value instead of an exception.
  const redis::Value text = connection.Pipeline({{"GET", key}}).at(0);
  if (text.IsNil()) {
    return std::nullopt;
  }
  if (!text.IsError()) {
    return ParseStoredOrder(text.AsString());
  }
  if (!text.str.starts_with("WRONGTYPE")) {
    redis::ThrowIfError(text, "GET order record");
  }
  const redis::Value hash =
      connection.Command({"HMGET", key, "lines", "status", "remaining", "cancel_remaining"});
  auto lines = hash.At(0).AsOptionalString();
  if (!lines) {
    return std::nullopt;
  }
  return StoredOrder{std::move(*lines), hash.At(1).AsOptionalString().value_or(""),
                     hash.At(2).AsOptionalString().value_or(""),
                     hash.At(3).AsOptionalString().value_or("")};
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
