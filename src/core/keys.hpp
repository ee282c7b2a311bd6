#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace invsync::core {

/// Names of everything invsync keeps in Redis. Stock lives in the seed's layout, a hash
/// `<prefix><sku>` (default prefix "inventory:") with fields `product_id` and `quantity`, so
/// existing readers of that hash keep working; everything else is under "invsync:".
class Keys {
 public:
  explicit Keys(std::string inventory_prefix = "inventory:")
      : inventory_prefix_(std::move(inventory_prefix)) {}

  [[nodiscard]] std::string Inventory(std::string_view sku) const {
    return inventory_prefix_ + std::string(sku);
  }
  [[nodiscard]] static std::string Order(std::string_view order_id) {
    return "invsync:order:" + std::string(order_id);
  }
  [[nodiscard]] static std::string Request(std::string_view request_id) {
    return "invsync:request:" + std::string(request_id);
  }
  /// Negative-cache marker: the database has no such SKU (short time to live).
  [[nodiscard]] static std::string Absent(std::string_view sku) {
    return "invsync:absent:" + std::string(sku);
  }
  /// Cross-process fill lock: one process loads a missing SKU from the database at a time.
  [[nodiscard]] static std::string FillLock(std::string_view sku) {
    return "invsync:fill:" + std::string(sku);
  }
  /// Changes the syncer applied lately (id → delta; every insert, delete and dropped key too:
  /// "I", "D", "R"), for fills in flight: those to a SKU that was not cached, and every insert,
  /// delete and dropped key. (Updates to cached SKUs go to kCachedChanges instead.)
  [[nodiscard]] static std::string RecentChanges(std::string_view sku) {
    return "invsync:recent:" + std::string(sku);
  }
  /// Exists while any recent-changes hash may exist (the syncer's script keeps it at least 10 s
  /// longer than the last one it touched): a bulk fill that finds it absent need not look for
  /// them.
  static constexpr std::string_view kRecentChangesExist = "invsync:recent-any";
  /// The same for negative-cache markers (set by fill.lua with each marker).
  static constexpr std::string_view kAbsentMarkersExist = "invsync:absent-any";
  /// How long recent changes are kept: longer than any fill's database read may take
  /// (kFillReadMaxAge).
  static constexpr std::chrono::milliseconds kRecentChangesTtl{60'000};
  /// A fill installs a database read only this soon after it started; an older one is read
  /// again. (A read of a few rows takes milliseconds: this only bounds how long a fill may be in
  /// flight, for kFillReadsActive and kRecentChangesTtl.)
  static constexpr std::chrono::milliseconds kFillReadMaxAge{5'000};
  /// Most recent changes kept per SKU; beyond, older ones are forgotten and fills that read
  /// before them read again.
  static constexpr int kRecentChangesCap = 1000;
  /// Exists while a fill's database read may be in flight: every fill sets it, for
  /// kFillReadsActiveTtl, before it reads. While it exists the syncer notes updates to cached
  /// SKUs too (kCachedChanges): a cached key can vanish without leaving fills a sign (deleted by
  /// hand), and a fill whose read predates a change to it would then install a value without it.
  static constexpr std::string_view kFillReadsActive = "invsync:fill-reads";
  /// kFillReadMaxAge and 10 s more: the margin covers the time from setting it to the read's
  /// start and from the age check to the install, and a jump of Redis's clock (its expiry runs on
  /// Redis's clock, the age check on the service's monotonic one).
  static constexpr std::chrono::milliseconds kFillReadsActiveTtl =
      kFillReadMaxAge + std::chrono::seconds(10);
  /// Hash sku → highest id of an update the syncer applied to the SKU's cached key while
  /// kFillReadsActive existed; a fill whose read's change seq is lower reads again. It becomes
  /// kPreviousCachedChanges at most every kCachedChangesTurn, and the previous one is dropped then:
  /// each id is kept at least that long.
  static constexpr std::string_view kCachedChanges = "invsync:cached-changes";
  static constexpr std::string_view kPreviousCachedChanges = "invsync:cached-changes:previous";
  /// Exists until the next turn of kCachedChanges.
  static constexpr std::string_view kCachedChangesTurnKey = "invsync:cached-changes:turn";
  /// As long as kFillReadsActive lives: a fill installs only reads younger than kFillReadMaxAge,
  /// and the margin covers a jump of Redis's clock.
  static constexpr std::chrono::milliseconds kCachedChangesTurn = kFillReadsActiveTtl;
  /// Hash sku → change seq of the database read that filled the cached key (fill.lua).
  static constexpr std::string_view kFillPositions = "invsync:fillpos";
  /// The syncer's place in the outbox, "xid:id", moved by the same script that applies rows.
  static constexpr std::string_view kSyncCursor = "invsync:outbox:cursor";
  /// The identity of the database the cursor belongs to (`invsync_meta`'s database_id).
  static constexpr std::string_view kSyncDatabase = "invsync:outbox:database";
  /// Stream of accepted changes, read by the persister's consumer group.
  static constexpr std::string_view kEvents = "invsync:events";
  /// Entries the persister could not understand, moved aside with the reason.
  static constexpr std::string_view kDeadLetters = "invsync:events:dead";
  /// Hash sku → number of events in the stream not yet persisted.
  static constexpr std::string_view kInflight = "invsync:inflight";
  /// Hash sku → number of events persisted so far (a generation counter for fills).
  static constexpr std::string_view kPersisted = "invsync:persisted";
  /// Summary (JSON) of the last reconcile run, shown by `status`.
  static constexpr std::string_view kLastReconcile = "invsync:reconcile:last";
  /// Held by the process running the scheduled reconcile, so only one runs at a time.
  static constexpr std::string_view kReconcileLock = "invsync:reconcile:lock";
  /// A random value set once; its disappearance tells the persister Redis lost its data.
  static constexpr std::string_view kEpoch = "invsync:epoch";
  /// Stream position (db::StreamPosition) of the newest entry ack.lua acknowledged: raised in the
  /// script that acknowledges, so Redis loses it together with the acknowledgements it describes.
  static constexpr std::string_view kAckedHighWater = "invsync:events:acked";
  /// The database's stream high-water mark at the last loss of Redis writes a persister handled.
  static constexpr std::string_view kLostWritesHandled = "invsync:events:lost-writes";
  /// Consumer group of the persisters.
  static constexpr std::string_view kPersisterGroup = "persister";

  [[nodiscard]] const std::string& inventory_prefix() const { return inventory_prefix_; }

 private:
  std::string inventory_prefix_;
};

}  // namespace invsync::core
