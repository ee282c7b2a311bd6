#include "persister/event_codec.hpp"

#include <fmt/format.h>

#include "common/numbers.hpp"
#include "common/text.hpp"
#include "core/validation.hpp"

namespace invsync::persister {

namespace {

// Deltas past the bound come from no invsync script; refused, a batch's sums cannot overflow.
bool InBound(std::int64_t delta) {
  return delta >= -core::kMaxEventDelta && delta <= core::kMaxEventDelta;
}

bool DecodeDeltas(std::string_view text, std::vector<db::SkuDelta>& deltas, std::string& problem) {
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    auto space = line.rfind(' ');
    if (space == std::string_view::npos || !IsIdentifier(line.substr(0, space))) {
      problem = fmt::format("malformed delta line \"{}\"", line.substr(0, 160));
      return false;
    }
    auto delta = ParseInt64(line.substr(space + 1));
    if (!delta) {
      problem = fmt::format("non-integer delta in \"{}\"", line.substr(0, 160));
      return false;
    }
    if (!InBound(*delta)) {
      problem = fmt::format("delta out of range (at most {} either way) in \"{}\"",
                            core::kMaxEventDelta, line.substr(0, 160));
      return false;
    }
    deltas.push_back({std::string(line.substr(0, space)), *delta});
  }
  if (deltas.empty()) {
    problem = "event has no deltas";
    return false;
  }
  return true;
}

}  // namespace

std::optional<db::StockEvent> DecodeEvent(const std::string& stream_id, const redis::Value& fields,
                                          std::string& problem) {
  if (!fields.IsArray() || fields.elements.size() % 2 != 0) {
    problem = "entry has no field list (deleted or foreign entry)";
    return std::nullopt;
  }
  db::StockEvent event;
  event.stream_id = stream_id;
  const std::string* deltas = nullptr;
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const auto& name = fields.elements[i];
    const auto& value = fields.elements[i + 1];
    if (name.type != redis::Value::Type::kString || value.type != redis::Value::Type::kString) {
      problem = "entry field is not a string";
      return std::nullopt;
    }
    if (name.str == "kind") {
      event.kind = value.str;
    } else if (name.str == "ref") {
      event.ref = value.str;
    } else if (name.str == "deltas") {
      deltas = &value.str;
    }
  }
  if (event.kind != "deduct" && event.kind != "cancel" && event.kind != "restock" &&
      event.kind != "set") {
    problem = fmt::format("unknown event kind \"{}\"", event.kind.substr(0, 40));
    return std::nullopt;
  }
  if (!IsIdentifier(event.ref)) {
    problem = "missing or malformed ref";
    return std::nullopt;
  }
  if (deltas == nullptr) {
    problem = "missing deltas";
    return std::nullopt;
  }
  if (!DecodeDeltas(*deltas, event.deltas, problem)) {
    return std::nullopt;
  }
  return event;
}

std::vector<StreamEntry> DecodeReadReply(const redis::Value& reply) {
  std::vector<StreamEntry> entries;
  if (reply.IsNil()) {
    return entries;  // timed out with nothing new
  }
  for (const auto& stream : reply.AsArray()) {
    for (const auto& item : stream.At(1).AsArray()) {
      StreamEntry entry{.stream_id = item.At(0).AsString()};
      const redis::Value& fields = item.AsArray().size() > 1 ? item.At(1) : redis::Value{};
      entry.event = DecodeEvent(entry.stream_id, fields, entry.problem);
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

ClaimReply DecodeClaimReply(const redis::Value& reply) {
  ClaimReply claimed{.cursor = reply.At(0).AsString()};
  for (const auto& item : reply.At(1).AsArray()) {
    if (item.IsNil()) {
      continue;  // entry deleted from the stream while pending (Redis < 7 reports it as nil)
    }
    StreamEntry entry{.stream_id = item.At(0).AsString()};
    entry.event = DecodeEvent(entry.stream_id, item.At(1), entry.problem);
    claimed.entries.push_back(std::move(entry));
  }
  return claimed;
}

}  // namespace invsync::persister
