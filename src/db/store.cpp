#include "db/store.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::db {

std::string StreamPosition(std::string_view stream_id) {
  const auto dash = stream_id.find('-');
  if (dash == std::string_view::npos) {
    return {};
  }
  const auto millis = ParseInt64(stream_id.substr(0, dash));
  const auto sequence = ParseInt64(stream_id.substr(dash + 1));
  if (!millis || !sequence || *millis < 0 || *sequence < 0) {
    return {};
  }
  return fmt::format("{:020}-{:020}", *millis, *sequence);
}

std::string HighestStreamPosition(std::span<const StockEvent> events) {
  std::string highest;
  for (const auto& event : events) {
    highest = std::max(highest, StreamPosition(event.stream_id));
  }
  return highest;
}

void AddToSkuTotal(std::int64_t& total, std::int64_t delta, const StockEvent& event) {
  if (__builtin_add_overflow(total, delta, &total)) {
    throw RejectedDataError(
        fmt::format("the deltas of one SKU in a batch add up past 64 bits (at {} of {})",
                    event.EventId(), event.stream_id));
  }
}

Change ChangeFromColumns(OutboxPosition position, std::string sku, std::string_view kind,
                         std::string_view delta) {
  Change change{.position = position, .sku = std::move(sku)};
  const auto value = ParseInt64(delta);
  const bool known = kind == "U" || kind == "I" || kind == "D";
  if (known && value) {
    change.kind = static_cast<ChangeKind>(kind[0]);
    change.delta = *value;
    return change;
  }
  change.kind = ChangeKind::kReload;
  change.malformed = known ? fmt::format("delta \"{}\" is not a 64-bit integer", delta)
                           : fmt::format("unknown kind \"{}\"", kind);
  return change;
}

}  // namespace invsync::db
