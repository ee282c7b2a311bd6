#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/keys.hpp"
#include "core/scripts.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::reconcile {

struct ReconcileOptions {
  std::size_t page_size = 1000;  ///< SKUs judged per round trip
  bool repair = false;           ///< fix drifted keys in Redis (compare-and-set)
  /// SKUs with changes in flight are judged again this many times, this far apart.
  int busy_rounds = 5;
  std::chrono::milliseconds busy_pause{200};
  std::string key_prefix = "inventory:";
  /// Tests' fault point: runs after a drift is judged, before it is repaired.
  std::function<void(const struct Drift&)> before_repair;
};

/// A SKU whose cached quantity is not what the database says it should be.
struct Drift {
  std::string sku;
  std::string redis;                     ///< the cached quantity as Redis holds it
  std::optional<std::int64_t> database;  ///< nullopt: the database has no such SKU
  /// What Redis should hold: the database's quantity less the database-side changes the syncer
  /// has not applied yet; nullopt: no key at all.
  std::optional<std::int64_t> expected;
  bool repaired = false;
};

/// Negative stock: sold more than there was (a back-office reduction racing with sales).
struct Oversold {
  std::string sku;
  std::string side;  ///< "database" or "redis"
  std::int64_t quantity = 0;
};

struct Report {
  std::int64_t checked = 0;     ///< SKUs judged
  std::int64_t not_cached = 0;  ///< in the database, not in Redis: normal for a cache
  std::vector<Drift> drifted;   ///< including keys of SKUs the database does not have
  std::vector<Oversold> oversold;
  std::vector<std::string> busy;  ///< never quiet long enough to judge (changes kept coming)
  std::int64_t repaired = 0;
  std::chrono::milliseconds duration{0};
  std::string finished_at;  ///< UTC, ISO 8601

  /// True when there is nothing to act on: no drift left unrepaired, nothing oversold.
  [[nodiscard]] bool clean() const;
  /// The whole report; `Summary()` is the short form kept for `status`.
  [[nodiscard]] nlohmann::json Json() const;
  [[nodiscard]] nlohmann::json Summary() const;
};

/// Called after each page: SKUs judged so far, and the database's SKU count.
using Progress = std::function<void(std::int64_t done, std::int64_t total)>;

/// Compares every SKU's cached quantity with the database, adjusted for what is still in flight,
/// so that a busy but healthy system shows no drift:
/// - a SKU with events not yet persisted (or persisted while it is being judged) is not judged
///   now but again shortly (`busy`), since the database is behind Redis by exactly those;
/// - outbox rows the syncer has not applied yet are subtracted from the database's quantity.
/// Each SKU is judged from one database snapshot between two identical atomic reads of its Redis
/// state, so nothing moved while it was judged. With `repair`, a drifted key is set to what it
/// should be only if it still holds the value judged wrong (compare-and-set: a deduction landing
/// in between is kept, and the key is judged again by the next run).
class Reconciler {
 public:
  Reconciler(redis::Pool& redis, db::Store& store, ReconcileOptions options);

  /// One full pass over the database's SKUs and Redis's keys. Also stores the summary in Redis
  /// (core::Keys::kLastReconcile) for `status`.
  Report Run(const Progress& progress = {});

 private:
  struct RedisSide;
  struct Snapshot;
  Snapshot ReadRedis(const std::vector<std::string>& skus);
  /// Judges `skus`; those that cannot be judged now go to `busy`. With `redis_only`, SKUs the
  /// database has are skipped (the database pass judged them).
  void Judge(const std::vector<std::string>& skus, bool redis_only, Report& report,
             std::vector<std::string>& busy);
  void Repair(Drift& drift, Report& report);
  /// SKUs of the cached keys, by SCAN.
  std::vector<std::string> CachedSkus();

  redis::Pool& redis_;
  db::Store& store_;
  ReconcileOptions options_;
  core::Keys keys_;
  core::Scripts scripts_;
};

}  // namespace invsync::reconcile
