#include "core/stock_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <variant>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "core/order_record.hpp"

namespace invsync::core {

namespace {

// A script keeps asking for SKUs to be loaded only if keys vanish again right after loading
// (an operator deleting them in a loop); give up rather than spin.
constexpr int kMaxAttempts = 5;

std::int64_t ToInt(const std::string& text, std::string_view what) {
  auto value = ParseInt64(text);
  if (!value) {
    throw PermanentError(fmt::format("Redis returned a non-integer {} \"{}\"", what, text));
  }
  return *value;
}

std::vector<LineResult> WithRemaining(const std::vector<Line>& lines, const std::string& text) {
  auto remaining = SplitLines(text);
  std::vector<LineResult> results;
  results.reserve(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    results.push_back({lines[i].sku, lines[i].quantity,
                       i < remaining.size() ? ToInt(remaining[i], "remaining stock") : 0});
  }
  return results;
}

OrderState ToState(std::string_view status) {
  return status == "cancelled" ? OrderState::kCancelled : OrderState::kDeducted;
}

OrderState ToState(const redis::Value& status) {
  return ToState(status.AsOptionalString().value_or(""));
}

redis::ScriptCall OrderCall(const Keys& keys, std::string_view order_id,
                            const std::vector<Line>& lines, const std::string& canonical,
                            std::chrono::milliseconds retention) {
  redis::ScriptCall call;
  call.keys = {Keys::Order(order_id), std::string(Keys::kEvents), std::string(Keys::kInflight)};
  call.args = {std::string(order_id), canonical, std::to_string(retention.count())};
  for (const auto& line : lines) {
    call.keys.push_back(keys.Inventory(line.sku));
    call.args.push_back(line.sku);
    call.args.push_back(std::to_string(line.quantity));
  }
  return call;
}

[[noreturn]] void Corrupt(const redis::Value& reply, const Keys& keys) {
  throw PermanentError(fmt::format("Redis key \"{}\" holds a non-integer quantity \"{}\"",
                                   keys.Inventory(reply.At(1).AsString()), reply.At(2).AsString()));
}

}  // namespace

StockService::StockService(redis::Pool& redis, db::Store& store, Keys keys, StockOptions options)
    : redis_(redis),
      store_(store),
      keys_(std::move(keys)),
      options_(options),
      filler_(redis, store, keys_, scripts_, options_.fill, counters_) {}

StockResult StockService::Get(std::string_view sku) {
  StockResult result{.sku = std::string(sku)};
  if (auto error = CheckSku(sku)) {
    result.status = StockStatus::kInvalid;
    result.invalid = std::move(error);
    return result;
  }
  redis::Value reply;
  {
    const std::string key = keys_.Inventory(sku);
    auto conn = redis_.Acquire();
    reply = conn->Command(CachedQuantityCommand(key));
  }
  if (auto cached = CachedStock(sku, reply)) {
    return std::move(*cached);
  }
  counters_.misses.fetch_add(1, std::memory_order_relaxed);
  auto quantity = filler_.Fill(result.sku);
  if (!quantity) {
    result.status = StockStatus::kUnknownSku;
    return result;
  }
  result.quantity = *quantity;
  return result;
}

ManyResult StockService::GetMany(std::span<const std::string> skus) {
  ManyResult result;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    if (auto error = CheckSku(skus[i], fmt::format("sku[{}]", i))) {
      result.status = StockStatus::kInvalid;
      result.invalid = std::move(error);
      return result;
    }
  }
  std::vector<std::string> keys;
  keys.reserve(skus.size());
  std::vector<redis::Args> commands;
  for (const auto& sku : skus) {
    keys.push_back(keys_.Inventory(sku));
  }
  for (const auto& key : keys) {
    commands.push_back(CachedQuantityCommand(key));
  }
  std::vector<redis::Value> replies;
  if (!commands.empty()) {
    auto conn = redis_.Acquire();
    replies = conn->Pipeline(commands);
  }
  std::map<std::string, std::int64_t> known;
  std::set<std::string> missing;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    redis::ThrowIfError(replies[i], "HGET");
    if (auto cached = replies[i].AsOptionalString()) {
      known[skus[i]] = ToInt(*cached, "quantity");
    } else {
      missing.insert(skus[i]);
    }
  }
  counters_.hits.fetch_add(static_cast<std::int64_t>(skus.size() - missing.size()),
                           std::memory_order_relaxed);
  counters_.misses.fetch_add(static_cast<std::int64_t>(missing.size()), std::memory_order_relaxed);
  std::vector<std::string> to_fill(missing.begin(), missing.end());
  known.merge(filler_.FillMany(to_fill));
  std::set<std::string> reported;
  for (const auto& sku : skus) {
    if (!reported.insert(sku).second) {
      continue;  // a SKU asked twice is answered once
    }
    if (auto it = known.find(sku); it != known.end()) {
      result.items.emplace_back(sku, it->second);
    } else {
      result.unknown.push_back(sku);
    }
  }
  return result;
}

redis::Args StockService::CachedQuantityCommand(const std::string& key) {
  return {"HGET", key, "quantity"};
}

std::optional<StockResult> StockService::CachedStock(std::string_view sku,
                                                     const redis::Value& reply) {
  auto cached = reply.AsOptionalString();
  if (!cached) {
    return std::nullopt;
  }
  StockResult result{.sku = std::string(sku), .quantity = ToInt(*cached, "quantity")};
  counters_.hits.fetch_add(1, std::memory_order_relaxed);
  return result;
}

std::variant<PreparedOrder, OrderResult> StockService::PrepareOrder(std::string_view order_id,
                                                                    std::vector<Line> lines) const {
  if (auto error = CheckOrder(order_id, lines, options_.limits)) {
    return OrderResult{.status = StockStatus::kInvalid,
                       .order_id = std::string(order_id),
                       .invalid = std::move(error)};
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.sku < b.sku; });
  PreparedOrder order{.order_id = std::string(order_id), .lines = std::move(lines)};
  order.call = OrderCall(keys_, order_id, order.lines, OrderRecord(order.lines),
                         options_.idempotency_retention);
  return order;
}

std::optional<OrderResult> StockService::InterpretDeduct(const PreparedOrder& order,
                                                         const redis::Value& reply) const {
  OrderResult result{.order_id = order.order_id};
  const std::string& outcome = reply.At(0).AsString();
  if (outcome == "ok") {
    result.lines = WithRemaining(order.lines, reply.At(1).AsString());
    return result;
  }
  if (outcome == "replay") {
    result.replayed = true;
    result.state = ToState(reply.At(1));
    result.lines = WithRemaining(order.lines, reply.At(2).AsOptionalString().value_or(""));
    return result;
  }
  if (outcome == "conflict") {
    result.status = StockStatus::kOrderConflict;
    result.state = ToState(reply.At(1));
    return result;
  }
  if (outcome == "insufficient") {
    result.status = StockStatus::kInsufficient;
    result.shortage = Shortage{reply.At(1).AsString(), ToInt(reply.At(2).AsString(), "wanted"),
                               ToInt(reply.At(3).AsString(), "available")};
    return result;
  }
  if (outcome == "corrupt") {
    Corrupt(reply, keys_);
  }
  return std::nullopt;  // "not_cached"
}

OrderResult StockService::Deduct(std::string_view order_id, std::vector<Line> lines) {
  auto prepared = PrepareOrder(order_id, std::move(lines));
  if (auto* refused = std::get_if<OrderResult>(&prepared)) {
    return std::move(*refused);
  }
  const auto& order = std::get<PreparedOrder>(prepared);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    redis::Value reply;
    {
      auto conn = redis_.Acquire();
      reply = scripts_.deduct.Run(*conn, order.call);
    }
    if (auto result = InterpretDeduct(order, reply)) {
      return std::move(*result);
    }
    // "not_cached": load the missing SKUs, then run the whole order again.
    if (auto unknown = LoadMissing(reply)) {
      return {
          .status = StockStatus::kUnknownSku, .order_id = order.order_id, .unknown_sku = *unknown};
    }
  }
  throw TransientError(fmt::format("order \"{}\": stock keys kept vanishing; retry", order_id));
}

std::optional<std::string> StockService::LoadMissing(const redis::Value& not_cached) {
  std::vector<std::string> skus;
  for (std::size_t i = 1; i < not_cached.AsArray().size(); ++i) {
    skus.push_back(not_cached.At(i).AsString());
  }
  if (skus.size() == 1) {
    // One SKU (the usual case, a hot item): single-flight and the cross-process fill lock.
    return filler_.Fill(skus.front()) ? std::nullopt : std::optional(skus.front());
  }
  // Several: one batched database read instead of one round trip per line.
  auto found = filler_.FillMany(skus);
  for (const auto& sku : skus) {
    if (!found.contains(sku)) {
      return sku;
    }
  }
  return std::nullopt;
}

OrderResult StockService::Cancel(std::string_view order_id) {
  OrderResult result{.order_id = std::string(order_id)};
  if (auto error = CheckOrderId(order_id)) {
    result.status = StockStatus::kInvalid;
    result.invalid = std::move(error);
    return result;
  }
  const std::string order_key = Keys::Order(order_id);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    redis::Value reply;
    std::vector<Line> lines;
    {
      auto conn = redis_.Acquire();
      auto record = ReadStoredOrder(*conn, order_key);
      if (!record) {
        result.status = StockStatus::kUnknownOrder;
        return result;
      }
      lines = ParseOrderRecord(record->lines);
      reply = scripts_.cancel.Run(
          *conn, OrderCall(keys_, order_id, lines, record->lines, options_.idempotency_retention));
    }
    const std::string& outcome = reply.At(0).AsString();
    result.state = OrderState::kCancelled;
    if (outcome == "ok" || outcome == "already") {
      result.replayed = outcome == "already";
      result.lines = WithRemaining(lines, reply.At(1).AsOptionalString().value_or(""));
      return result;
    }
    if (outcome == "not_found") {
      result.status = StockStatus::kUnknownOrder;
      return result;
    }
    if (outcome == "corrupt") {
      Corrupt(reply, keys_);
    }
    // "not_cached". A SKU the database no longer has (deleted by the back office) stays
    // unknown: recreating it from a cancel would resurrect a product removed on purpose.
    if (auto unknown = LoadMissing(reply)) {
      result.status = StockStatus::kUnknownSku;
      result.unknown_sku = *unknown;
      return result;
    }
  }
  throw TransientError(fmt::format("cancel of \"{}\": stock keys kept vanishing; retry", order_id));
}

OrderResult StockService::GetOrder(std::string_view order_id) {
  OrderResult result{.order_id = std::string(order_id)};
  if (auto error = CheckOrderId(order_id)) {
    result.status = StockStatus::kInvalid;
    result.invalid = std::move(error);
    return result;
  }
  std::optional<StoredOrder> record;
  {
    auto conn = redis_.Acquire();
    record = ReadStoredOrder(*conn, Keys::Order(order_id));
  }
  if (!record) {
    result.status = StockStatus::kUnknownOrder;
    return result;
  }
  result.state = ToState(record->status);
  result.lines = WithRemaining(
      ParseOrderRecord(record->lines),
      result.state == OrderState::kCancelled ? record->cancel_remaining : record->remaining);
  return result;
}

StockResult StockService::Restock(std::string_view sku, std::int64_t quantity,
                                  std::string_view request_id) {
  if (auto error = CheckRestock(sku, quantity, request_id)) {
    return {.status = StockStatus::kInvalid, .sku = std::string(sku), .invalid = std::move(error)};
  }
  return Adjust("restock", sku, quantity, request_id);
}

StockResult StockService::Set(std::string_view sku, std::int64_t quantity,
                              std::string_view request_id) {
  if (auto error = CheckSet(sku, quantity, request_id)) {
    return {.status = StockStatus::kInvalid, .sku = std::string(sku), .invalid = std::move(error)};
  }
  return Adjust("set", sku, quantity, request_id);
}

StockResult StockService::Adjust(std::string_view kind, std::string_view sku, std::int64_t quantity,
                                 std::string_view request_id) {
  StockResult result{.sku = std::string(sku)};
  std::optional<CreationRead> creation;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    redis::Value reply;
    {
      auto conn = redis_.Acquire();
      reply = scripts_.adjust.Run(*conn, AdjustCall(kind, sku, quantity, request_id, creation));
    }
    const std::string& outcome = reply.At(0).AsString();
    if (outcome == "ok" || outcome == "replay") {
      result.replayed = outcome == "replay";
      result.quantity = ToInt(reply.At(1).AsString(), "quantity");
      return result;
    }
    if (outcome == "conflict") {
      result.status = StockStatus::kRequestConflict;
      return result;
    }
    if (outcome == "corrupt") {
      throw PermanentError(fmt::format("Redis key \"{}\" holds a non-integer quantity \"{}\"",
                                       keys_.Inventory(sku), reply.At(1).AsString()));
    }
    if (outcome == "too_large") {
      const auto current = ToInt(reply.At(1).AsString(), "quantity");
      result.status = StockStatus::kInvalid;
      result.invalid = ValidationError{
          ValidationCode::kStockTooLarge, "quantity",
          fmt::format("a {} of {} would take the stock of {} from {} to {}; at most {} allowed",
                      kind, quantity, sku, current, current + quantity, kMaxStock)};
      return result;
    }
    // "not_cached", or "stale" (the database may have the SKU since the read that found none):
    // load it; a SKU the database lacks can be created by a set, not a restock.
    creation.reset();
    if (!filler_.Fill(result.sku)) {
      if (kind != "set") {
        result.status = StockStatus::kUnknownSku;
        return result;
      }
      creation = ReadForCreation(result.sku);
    }
  }
  throw TransientError(fmt::format("{} of \"{}\": stock key kept vanishing; retry", kind, sku));
}

redis::ScriptCall StockService::AdjustCall(std::string_view kind, std::string_view sku,
                                           std::int64_t quantity, std::string_view request_id,
                                           const std::optional<CreationRead>& creation) const {
  // A read older than a fill would install may predate changes the syncer no longer remembers.
  const bool may_create =
      creation && std::chrono::steady_clock::now() - creation->started <= Keys::kFillReadMaxAge;
  redis::ScriptCall call{
      .keys = {Keys::Request(request_id), std::string(Keys::kEvents), std::string(Keys::kInflight),
               keys_.Inventory(sku), Keys::Absent(sku), std::string(Keys::kPersisted),
               Keys::RecentChanges(sku), std::string(Keys::kFillPositions),
               std::string(Keys::kEpoch)},
      .args = {std::string(request_id), std::string(kind), std::string(sku),
               std::to_string(quantity), std::to_string(options_.idempotency_retention.count()),
               may_create ? "1" : "0", std::to_string(kMaxStock)}};
  if (may_create) {
    call.args.push_back(creation->persisted_before);
    call.args.push_back(std::to_string(creation->change_seq));
    call.args.push_back(creation->epoch.value_or(""));
  }
  return call;
}

std::optional<StockService::CreationRead> StockService::ReadForCreation(const std::string& sku) {
  CreationRead read;
  {
    auto conn = redis_.Acquire();
    auto before = CacheFiller::PersistedCounts(*conn, std::span(&sku, 1));
    read.persisted_before = std::move(before.counts.front());
    read.epoch = std::move(before.epoch);
  }
  counters_.database_reads.fetch_add(1, std::memory_order_relaxed);
  read.started = std::chrono::steady_clock::now();
  auto snapshot = store_.LoadStock(sku);
  if (snapshot.quantity) {
    // Inserted since the fill's read. If this cannot be installed yet, the next fill reads again.
    const FillInput input{sku, snapshot, std::move(read.persisted_before)};
    (void)filler_.Install(std::span(&input, 1), read.started, read.epoch);
    return std::nullopt;
  }
  read.change_seq = snapshot.change_seq;
  return read;
}

}  // namespace invsync::core
