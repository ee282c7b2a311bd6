#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "core/keys.hpp"
#include "core/scripts.hpp"
#include "core/single_flight.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::core {

struct FillOptions {
  std::chrono::milliseconds absent_ttl{2000};  ///< negative-cache time; 0 disables it
  std::chrono::milliseconds lock_ttl{2000};    ///< cross-process fill lock
  std::chrono::milliseconds wait{3000};        ///< give up (TransientError) after this
};

/// Counters for metrics and tests.
struct CacheCounters {
  std::atomic<std::int64_t> hits{0};
  std::atomic<std::int64_t> misses{0};
  std::atomic<std::int64_t> database_reads{0};
  std::atomic<std::int64_t> absent_hits{0};
};

/// Loads SKUs missing from Redis out of the database (cache-aside), safely:
/// - one database read per SKU per process at a time (single-flight) and, through a short Redis
///   lock, usually one across processes;
/// - never overwrites a key that exists, never installs a value while the SKU has events not yet
///   persisted, and never a value read before events that were persisted meanwhile (fill.lua);
/// - counts each change made in the database exactly once, whether the syncer applied it before
///   or after the fill (the read's change seq, see db::StockSnapshot and fill.lua);
/// - remembers SKUs the database does not have for `absent_ttl`.
///
/// Inventory keys carry no TTL and are never evicted by invsync: a key that expired while
/// deductions were still on their way to the database would be reloaded from the database
/// without them, and stock that was sold would be sold again.
class CacheFiller {
 public:
  CacheFiller(redis::Pool& redis, db::Store& store, const Keys& keys, Scripts& scripts,
              FillOptions options, CacheCounters& counters);

  /// The SKU's quantity after making sure it is in Redis; nullopt if the database has no such
  /// SKU. Throws `TransientError` if it cannot be loaded within the wait.
  std::optional<std::int64_t> Fill(const std::string& sku);
  /// Fills several SKUs with one batched database read; unknown SKUs are absent from the map.
  std::map<std::string, std::int64_t> FillMany(std::span<const std::string> skus);

 private:
  std::optional<std::int64_t> FillOnce(const std::string& sku);
  /// One attempt; nullopt result means "try again".
  std::optional<std::optional<std::int64_t>> TryFill(const std::string& sku,
                                                     const std::string& token);
  std::optional<std::optional<std::int64_t>> Install(const std::string& sku,
                                                     const db::StockSnapshot& snapshot,
                                                     const std::string& persisted_before);
  [[nodiscard]] redis::ScriptCall FillCall(const std::string& sku,
                                           const db::StockSnapshot& snapshot,
                                           const std::string& persisted_before) const;
  /// True if a database read that started then may predate forgotten syncer changes.
  static bool TooOld(std::chrono::steady_clock::time_point read_started);
  /// "cached"/"filled" → quantity, "absent" → nullopt, "inflight"/"retry" → try again (nullopt).
  static std::optional<std::optional<std::int64_t>> Interpret(const redis::Value& reply,
                                                              const std::string& sku);

  redis::Pool& redis_;
  db::Store& store_;
  const Keys& keys_;
  Scripts& scripts_;
  FillOptions options_;
  CacheCounters& counters_;
  SingleFlight<std::optional<std::int64_t>> flights_;
};

}  // namespace invsync::core
