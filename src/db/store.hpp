#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
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

/// A SKU's stock as one database snapshot saw it, with the position of the snapshot in the SKU's
/// change history: the highest outbox id of the SKU the snapshot includes (0: none). A cache fill
/// passes it to Redis so that changes the syncer applies around the fill count exactly once.
struct StockSnapshot {
  std::optional<std::int64_t> quantity;  ///< nullopt: the database has no such SKU
  std::int64_t change_seq = 0;
  friend bool operator==(const StockSnapshot&, const StockSnapshot&) = default;
};

/// One row of a page of stock (`Store::LoadStockPage`).
struct SkuStock {
  std::string sku;
  StockSnapshot snapshot;
};

/// A place in the outbox, which is read in (transaction id, row id) order (see sql/003_outbox.sql).
struct OutboxPosition {
  std::int64_t xid = 0;
  std::int64_t id = 0;
  friend auto operator<=>(const OutboxPosition&, const OutboxPosition&) = default;
};

/// What a change made outside invsync did to one SKU.
enum class ChangeKind : char {
  kUpdate = 'U',  ///< quantity changed by `delta`
  kInsert = 'I',  ///< the SKU appeared with quantity `delta`
  kDelete = 'D',  ///< the SKU disappeared (`delta` is minus its last quantity)
  /// A row that cannot be applied as a delta (a non-integer quantity written behind invsync's
  /// back, an unknown kind): the cached key is dropped, so the next read loads the row as it is.
  kReload = 'R',
};

/// One outbox row: a change made to `inventory` by something other than invsync's persister.
struct Change {
  OutboxPosition position;
  std::string sku;
  ChangeKind kind = ChangeKind::kUpdate;
  std::int64_t delta = 0;
  std::string malformed;  ///< for kReload: what was wrong with the row
};

/// A Redis stream id ("1700000000000-3") as text that sorts as the ids do: both numbers
/// zero-padded to 20 digits. Empty for text that is not a stream id.
[[nodiscard]] std::string StreamPosition(std::string_view stream_id);

/// The highest StreamPosition of `events` (empty if none has a valid stream id).
[[nodiscard]] std::string HighestStreamPosition(std::span<const StockEvent> events);

/// Adds one of `event`'s deltas to a SKU's total for a batch. A sum past 64 bits throws
/// `RejectedDataError` (the persister then applies the batch event by event, and dead-letters the
/// event the database cannot take).
void AddToSkuTotal(std::int64_t& total, std::int64_t delta, const StockEvent& event);

/// Key of the stream high-water mark in `invsync_meta`.
inline constexpr std::string_view kStreamHighWaterKey = "stream_high_water";

/// The change an outbox row describes, from its columns as text. A row with an unknown kind or a
/// delta that is not a 64-bit integer becomes a kReload change naming the problem: a malformed
/// row written behind invsync's back must not stop the syncer, nor be applied as a wrong delta.
[[nodiscard]] Change ChangeFromColumns(OutboxPosition position, std::string sku,
                                       std::string_view kind, std::string_view delta);

/// Key of the database's identity in `invsync_meta`: random, created once by a migration.
inline constexpr std::string_view kDatabaseIdKey = "database_id";

/// Whether a syncer cursor can belong to this database's outbox, and where its outbox is now.
/// A cursor kept in Redis outlives the database it came from: after a restore to an earlier point
/// in time, or a move to another cluster, it may lie ahead of every change still to come, and a
/// syncer using it would skip them all and prune them unapplied.
struct OutboxOrigin {
  std::string database_id;  ///< the identity in `invsync_meta` (empty: not migrated yet)
  /// False if the cursor lies beyond this database's history: PostgreSQL has not yet given out
  /// its transaction id, or SQLite its row id.
  bool holds_cursor = false;
  /// A cursor from which the syncer skips no change not yet committed (every change still to come
  /// lies after it): where a cursor is reset to.
  OutboxPosition now;
};

/// Outbox rows ready to apply, in order.
struct ChangeBatch {
  std::vector<Change> changes;
  /// Rows follow that must wait for older transactions to end; read again shortly.
  bool held_back = false;
};

/// A SKU as reconcile sees the database: its quantity and the outbox rows after a position.
struct StockAudit {
  std::optional<std::int64_t> quantity;  ///< nullopt: no such SKU
  std::vector<Change> pending;           ///< outbox rows of the SKU after the position, in order
};

/// Outbox rows not yet applied to Redis.
struct ChangeBacklog {
  std::int64_t rows = 0;
  std::optional<std::chrono::milliseconds> oldest_age;  ///< of the oldest of them
  /// A transaction that has been running this long holds back every change committed after it
  /// started (see sql/003_outbox.sql); nullopt when none is running.
  std::optional<std::chrono::milliseconds> oldest_transaction_age;
};

/// The syncer's dedicated line to the database: leadership among syncers and wake-ups on new
/// changes. Losing the connection loses leadership (the next call throws `TransientError`).
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  /// True if this feed is (now) the one leader; never blocks.
  virtual bool TryLead() = 0;
  /// Returns when new changes may have been committed (true), or after `timeout` (false).
  virtual bool Wait(std::chrono::milliseconds timeout) = 0;
};

/// The database side of invsync. PostgreSQL implements it (SQLite will); core and persister only
/// see this interface. Implementations are safe to call from several threads.
class Store {
 public:
  virtual ~Store() = default;

  /// Applies pending schema migrations (idempotent; concurrent callers serialise).
  virtual void Migrate() = 0;
  /// One SKU's stock and change position, read in one snapshot.
  [[nodiscard]] virtual StockSnapshot LoadStock(std::string_view sku) = 0;
  /// The same for several SKUs in one query; every SKU asked for is in the map.
  [[nodiscard]] virtual std::map<std::string, StockSnapshot> LoadStocks(
      std::span<const std::string> skus) = 0;
  /// Up to `limit` SKUs after `after_sku` in SKU order, each with its stock and change position,
  /// all read in one snapshot. Keyset pagination: the last SKU of a page starts the next ("" the
  /// first); a page shorter than `limit` is the last.
  [[nodiscard]] virtual std::vector<SkuStock> LoadStockPage(std::string_view after_sku,
                                                            std::size_t limit) = 0;
  /// The names of up to `limit` SKUs after `after_sku` in SKU order (cheaper than a page).
  [[nodiscard]] virtual std::vector<std::string> ListSkus(std::string_view after_sku,
                                                          std::size_t limit) = 0;
  /// How many SKUs the database has.
  [[nodiscard]] virtual std::int64_t CountSkus() = 0;
  /// Applies events in one transaction: a ledger row per (event, SKU), skipping rows already
  /// there, then the quantity changes of the new rows only (creating rows for new SKUs). Changes
  /// made here are marked as coming from Redis so change capture does not send them back.
  /// The same transaction raises the stream high-water mark (ReadStreamHighWater).
  virtual ApplyOutcome ApplyEvents(std::span<const StockEvent> events) = 0;
  /// The highest stream id of any event ever applied, in StreamPosition form; nullopt before the
  /// first. Redis must have generated at least this id: if its stream says otherwise, Redis lost
  /// writes the database already has (a restart that lost the tail of its append-only file).
  [[nodiscard]] virtual std::optional<std::string> ReadStreamHighWater() = 0;
  /// Up to `limit` outbox rows after `after`, in order, stopping before the first row that a row
  /// of a still open transaction could yet precede.
  [[nodiscard]] virtual ChangeBatch ReadChanges(const OutboxPosition& after, std::size_t limit) = 0;
  /// How many outbox rows lie after `after`, and how old the oldest is.
  [[nodiscard]] virtual ChangeBacklog ReadChangeBacklog(const OutboxPosition& after) = 0;
  /// Deletes outbox rows at or before `upto` older than `retention`; returns how many.
  virtual std::int64_t PruneChanges(const OutboxPosition& upto,
                                    std::chrono::milliseconds retention) = 0;
  /// This database's identity, whether `cursor` can be a position of its outbox, and its present
  /// position, in one snapshot.
  [[nodiscard]] virtual OutboxOrigin ReadOutboxOrigin(const OutboxPosition& cursor) = 0;
  /// Quantity and outbox rows after `after` of each SKU, in one snapshot; every SKU is in the map.
  [[nodiscard]] virtual std::map<std::string, StockAudit> AuditStock(
      std::span<const std::string> skus, const OutboxPosition& after) = 0;
  /// A new dedicated connection for a syncer.
  [[nodiscard]] virtual std::unique_ptr<ChangeFeed> OpenChangeFeed() = 0;
  /// True if a trivial query succeeds.
  [[nodiscard]] virtual bool Ping() = 0;
};

}  // namespace invsync::db
