// Bytes as a Redis server sends them (RESP) → hiredis' `redisReader`, as the clients use it →
// the project's owned copy (`redis::detail::ToValue`) → every decoder of replies: the typed
// accessors and error classification, stream entries (`persister::DecodeEvent`, XREADGROUP and
// XAUTOCLAIM replies), the deduct script's reply (`StockService::InterpretDeduct`), a cached
// quantity, an order record and the syncer cursor. Malformed replies must be refused with
// `invsync::Error`, never crash; decoded events and order records survive a round trip.
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "core/order_record.hpp"
#include "core/stock_service.hpp"
#include "db/sqlite_store.hpp"
#include "persister/event_codec.hpp"
#include "redis/client.hpp"
#include "redis/detail/reply.hpp"
#include "syncer/syncer.hpp"

namespace {

using namespace invsync;

void Require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

redis::Value Text(std::string text) {
  return {.type = redis::Value::Type::kString, .str = std::move(text)};
}

// The entry fields as the Lua scripts write them, from a decoded event.
redis::Value EncodeEvent(const db::StockEvent& event) {
  std::string deltas;
  for (const auto& delta : event.deltas) {
    deltas += delta.sku + " " + std::to_string(delta.delta) + "\n";
  }
  return {.type = redis::Value::Type::kArray,
          .elements = {Text("kind"), Text(event.kind), Text("ref"), Text(event.ref), Text("deltas"),
                       Text(deltas)}};
}

void CheckEvent(const redis::Value& fields) {
  std::string problem;
  auto event = persister::DecodeEvent("1-0", fields, problem);
  if (!event) {
    Require(!problem.empty());
    return;
  }
  std::string again_problem;
  auto again = persister::DecodeEvent("1-0", EncodeEvent(*event), again_problem);
  Require(again && again->kind == event->kind && again->ref == event->ref &&
          again->deltas.size() == event->deltas.size());
  for (std::size_t i = 0; i < event->deltas.size(); ++i) {
    Require(again->deltas[i].sku == event->deltas[i].sku &&
            again->deltas[i].delta == event->deltas[i].delta);
  }
}

void CheckOrderRecord(const std::string& text) {
  const auto lines = core::ParseOrderRecord(text);
  Require(core::ParseOrderRecord(core::OrderRecord(lines)) == lines);
}

// A stored order's four fields joined again by tabs are the text they were read from.
void CheckStoredOrder(const std::string& text) {
  const auto order = core::ParseStoredOrder(text);
  Require(order.lines + '\t' + order.status + '\t' + order.remaining + '\t' +
              order.cancel_remaining ==
          text);
}

// A stock service whose Redis and database are never reached: only its reply decoders run.
struct Service {
  redis::Pool pool{redis::Endpoint::Parse("redis://127.0.0.1:1"), 1, std::chrono::seconds(1)};
  db::SqliteStore store{"/nonexistent/invsync-fuzz.db", 1};
  core::StockService stock{pool, store, core::Keys("inventory:"), core::StockOptions{}};
  core::PreparedOrder order =
      std::get<core::PreparedOrder>(stock.PrepareOrder("order-1", {{"SKU-B", 2}, {"SKU-A", 1}}));
};

template <typename Check>
void Refusable(Check&& check) {
  try {
    check();
  } catch (const Error&) {
    // A reply of the wrong shape: refused as PermanentError (or, for error replies, Transient).
  }
}

void CheckValue(const redis::Value& value) {
  static Service service;
  std::ignore = value.Describe();
  Refusable([&] { redis::ThrowIfError(value, "FUZZ"); });
  Refusable([&] { std::ignore = value.AsOptionalInteger(); });
  Refusable([&] { std::ignore = value.AsOptionalString(); });
  CheckEvent(value);
  Refusable([&] { std::ignore = persister::DecodeReadReply(value); });
  Refusable([&] { std::ignore = persister::DecodeClaimReply(value); });
  Refusable([&] { std::ignore = service.stock.InterpretDeduct(service.order, value); });
  Refusable([&] { std::ignore = service.stock.CachedStock("SKU-A", value); });
  Refusable([&] { std::ignore = syncer::ParseCursor(value.AsOptionalString()); });
  if (value.type == redis::Value::Type::kString) {
    Refusable([&] { CheckOrderRecord(value.str); });
    Refusable([&] { CheckStoredOrder(value.str); });
  }
}

struct ReaderDeleter {
  void operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
  redis::detail::BoundReplyArrays(*reader);  // as every connection's reader is
  if (redisReaderFeed(reader.get(), reinterpret_cast<const char*>(data), size) != REDIS_OK) {
    return 0;
  }
  while (true) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) {
      break;  // a protocol error (the connection would be dropped) or an incomplete reply
    }
    const redis::detail::ReplyPtr reply(static_cast<redisReply*>(raw));
    CheckValue(redis::detail::ToValue(*reply));
  }
  return 0;
}
