#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db/store.hpp"
#include "redis/value.hpp"

namespace invsync::persister {

/// Decodes one stream entry's field list (`kind`, `ref`, `deltas` = "sku delta\n...") as written
/// by the Lua scripts. Anything else (a foreign or corrupted entry, a delta past
/// core::kMaxEventDelta) yields nullopt and a reason in `problem`; it never throws.
std::optional<db::StockEvent> DecodeEvent(const std::string& stream_id, const redis::Value& fields,
                                          std::string& problem);

/// One entry of a stream read: its id and its event, or why the event could not be decoded.
struct StreamEntry {
  std::string stream_id;
  std::optional<db::StockEvent> event;  ///< nullopt: malformed (see `problem`)
  std::string problem;
};

/// The entries of an XREADGROUP reply, in order (nil: none). A reply of the wrong shape throws
/// `PermanentError`; a malformed entry is returned without an event.
std::vector<StreamEntry> DecodeReadReply(const redis::Value& reply);

/// An XAUTOCLAIM reply: the cursor to continue the scan from and the claimed entries (entries
/// deleted while pending are skipped). A reply of the wrong shape throws `PermanentError`.
struct ClaimReply {
  std::string cursor;
  std::vector<StreamEntry> entries;
};
ClaimReply DecodeClaimReply(const redis::Value& reply);

}  // namespace invsync::persister
