#pragma once

#include <optional>
#include <string>

#include "db/store.hpp"
#include "redis/value.hpp"

namespace invsync::persister {

/// Decodes one stream entry's field list (`kind`, `ref`, `deltas` = "sku delta\n...") as written
/// by the Lua scripts. Anything else (a foreign or corrupted entry) yields nullopt and a reason in
/// `problem`; it never throws.
std::optional<db::StockEvent> DecodeEvent(const std::string& stream_id, const redis::Value& fields,
                                          std::string& problem);

}  // namespace invsync::persister
