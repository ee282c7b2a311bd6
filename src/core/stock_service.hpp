#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cache_fill.hpp"
#include "core/keys.hpp"
#include "core/scripts.hpp"
#include "core/types.hpp"
#include "core/validation.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::core {

struct StockOptions {
  Limits limits;
  /// How long Redis remembers an order or request id (replays within it return the first
  /// result). The database ledger remembers every applied event for ever.
  std::chrono::milliseconds idempotency_retention{std::chrono::hours(24 * 7)};
  FillOptions fill;
};

/// An order that passed validation, in canonical form, with the deduct script call that places it.
/// Built by `StockService::PrepareOrder`; the blocking `Deduct` and the HTTP server's asynchronous
/// path both send `call` and read the reply with `StockService::InterpretDeduct`.
struct PreparedOrder {
  std::string order_id;
  std::vector<Line> lines;  ///< sorted by SKU
  redis::ScriptCall call;   ///< for `Scripts::deduct`
};

/// The stock operations. Each change is one atomic Lua script that checks, changes the stock,
/// records the idempotency key and appends the event to the stream the persister drains.
/// Thread-safe. Refusals come back as values; infrastructure failures throw `invsync::Error`.
class StockService {
 public:
  StockService(redis::Pool& redis, db::Store& store, Keys keys, StockOptions options);

  /// Cache-aside read of one SKU.
  [[nodiscard]] StockResult Get(std::string_view sku);
  /// Reads many SKUs: one pipelined round trip for the cached ones, one batched database read for
  /// the rest.
  [[nodiscard]] ManyResult GetMany(std::span<const std::string> skus);
  /// Deducts all lines of an order or none, never below zero, once per order id.
  [[nodiscard]] OrderResult Deduct(std::string_view order_id, std::vector<Line> lines);

  /// The command that reads one SKU's cached quantity (`HGET <key> quantity`); `key` is
  /// `keys().Inventory(sku)` and must outlive the returned views.
  [[nodiscard]] static redis::Args CachedQuantityCommand(const std::string& key);
  /// What the reply to `CachedQuantityCommand` means: the stock (counted as a cache hit), or
  /// nullopt when the SKU is not cached. A non-integer quantity throws `PermanentError`.
  [[nodiscard]] std::optional<StockResult> CachedStock(std::string_view sku,
                                                       const redis::Value& reply);
  /// Checks an order and builds its deduct script call; a broken rule is a kInvalid result.
  [[nodiscard]] std::variant<PreparedOrder, OrderResult> PrepareOrder(
      std::string_view order_id, std::vector<Line> lines) const;
  /// What a deduct script reply means for the order: its result, or nullopt when some of its
  /// SKUs are not cached (they must be loaded, then the call run again). A corrupt quantity or
  /// a malformed reply throws `PermanentError`.
  [[nodiscard]] std::optional<OrderResult> InterpretDeduct(const PreparedOrder& order,
                                                           const redis::Value& reply) const;
  /// Returns a deducted order's stock, once.
  [[nodiscard]] OrderResult Cancel(std::string_view order_id);
  /// An order as Redis remembers it (within the idempotency retention).
  [[nodiscard]] OrderResult GetOrder(std::string_view order_id);
  /// Adds stock to a known SKU, once per request id.
  [[nodiscard]] StockResult Restock(std::string_view sku, std::int64_t quantity,
                                    std::string_view request_id);
  /// Sets a SKU's stock (creating the SKU if new), once per request id; recorded as a delta.
  [[nodiscard]] StockResult Set(std::string_view sku, std::int64_t quantity,
                                std::string_view request_id);

  [[nodiscard]] const CacheCounters& counters() const { return counters_; }
  [[nodiscard]] const Keys& keys() const { return keys_; }
  [[nodiscard]] Scripts& scripts() { return scripts_; }

 private:
  /// A database read that found no row for a SKU, which a set may then create (adjust.lua).
  struct CreationRead {
    std::string persisted_before;  ///< the SKU's persisted count read before the read
    std::int64_t change_seq = 0;   ///< db::StockSnapshot::change_seq
    Epoch epoch;                   ///< Redis's data epoch read before the read
    std::chrono::steady_clock::time_point started;
  };

  /// Loads the SKUs a script reported as not cached; the first the database lacks, if any.
  std::optional<std::string> LoadMissing(const redis::Value& not_cached);
  StockResult Adjust(std::string_view kind, std::string_view sku, std::int64_t quantity,
                     std::string_view request_id);
  /// adjust.lua's call; with `creation` (still young enough), the SKU may be created.
  [[nodiscard]] redis::ScriptCall AdjustCall(std::string_view kind, std::string_view sku,
                                             std::int64_t quantity, std::string_view request_id,
                                             const std::optional<CreationRead>& creation) const;
  /// Reads a SKU the cache fill found absent once more, the way a fill reads, for a set to create
  /// it; nullopt if the database has the row now (installed like a fill, when still safe).
  std::optional<CreationRead> ReadForCreation(const std::string& sku);

  redis::Pool& redis_;
  db::Store& store_;
  Keys keys_;
  StockOptions options_;
  Scripts scripts_;
  CacheCounters counters_;
  CacheFiller filler_;
};

}  // namespace invsync::core
