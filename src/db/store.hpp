#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace invsync::db {

/// One SKU's change within an event.
struct SkuDelta {
  std::string sku;
  std::int64_t delta = 0;
};

/// One accepted change as read from the Redis event stream.
struct StockEvent {
  std::string stream_id;  ///< Redis stream entry id, e.g. "1700000000000-0"
  std::string kind;       ///< "deduct", "cancel", "restock" or "set"
  std::string ref;        ///< the order id or request id
  std::vector<SkuDelta> deltas;

  /// The business id that makes the event unique in the ledger for ever, e.g. "deduct:o-17".
  [[nodiscard]] std::string EventId() const { return kind + ":" + ref; }
};

/// A ledger row that was already there, written from a *different* stream entry: the business id
/// was accepted again by Redis after its idempotency record expired. The database keeps the first;
/// Redis must give the second one's delta back.
struct LateReplay {
  std::string stream_id;
  std::string sku;
  std::int64_t delta = 0;
};

/// What applying a batch did.
struct ApplyOutcome {
  std::size_t applied_rows = 0;    ///< ledger rows inserted (and quantities changed)
  std::size_t duplicate_rows = 0;  ///< rows already in the ledger: replays, changed nothing
  std::vector<LateReplay> late_replays;
};

/// One ledger row, for tests and audits.
struct LedgerRow {
  std::string event_id;
  std::string sku;
  std::int64_t delta = 0;
};

/// The database side of invsync. PostgreSQL implements it (SQLite will); core and persister only
/// see this interface. Implementations are safe to call from several threads.
class Store {
 public:
  virtual ~Store() = default;

  /// Applies pending schema migrations (idempotent; concurrent callers serialise).
  virtual void Migrate() = 0;
  /// Quantity of one SKU, nullopt if the database has no row for it.
  [[nodiscard]] virtual std::optional<std::int64_t> LoadQuantity(std::string_view sku) = 0;
  /// Quantities of the SKUs that exist, in one query.
  [[nodiscard]] virtual std::map<std::string, std::int64_t> LoadQuantities(
      std::span<const std::string> skus) = 0;
  /// Applies events in one transaction: a ledger row per (event, SKU), skipping rows already
  /// there, then the quantity changes of the new rows only (creating rows for new SKUs). Changes
  /// made here are marked as coming from Redis so change capture does not send them back.
  virtual ApplyOutcome ApplyEvents(std::span<const StockEvent> events) = 0;
  /// True if a trivial query succeeds.
  [[nodiscard]] virtual bool Ping() = 0;
};

}  // namespace invsync::db
