#include <fmt/format.h>

#include "common/numbers.hpp"
#include "db/store.hpp"

namespace invsync::db {

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
