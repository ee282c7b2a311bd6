#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

/// What fill.lua did with one SKU.
enum class FillOutcome {
  kCached,    ///< the key exists: left alone (`quantity` is its value)
  kFilled,    ///< installed (`quantity` as installed, changes applied since the read included)
  kAbsent,    ///< the database has no such SKU
  kInflight,  ///< refused: the SKU has events not yet persisted
  kRetry,     ///< refused: the read may be stale; read the database again
};

/// fill.lua's answer for one SKU.
struct FillResult {
  FillOutcome outcome = FillOutcome::kRetry;
  std::int64_t quantity = 0;  ///< for kCached and kFilled
};

/// Redis's data epoch (Keys::kEpoch) as read before a database read for fills; nullopt: Redis had
/// none. fill.lua installs the read only while the epoch is the same: a Redis that lost its data
/// meanwhile rebuilt the persisted counts the fill compares from 0 (ack.lua).
using Epoch = std::optional<std::string>;

/// What CacheFiller::AnnounceRead read, in the same round trip.
struct AnnouncedRead {
  bool any_persisted = false;  ///< whether any SKU has a persisted count
  Epoch epoch;
};

/// What CacheFiller::PersistedCounts read, in one round trip.
struct PersistedBefore {
  std::vector<std::string> counts;  ///< per SKU, "0" for none
  Epoch epoch;
};

/// A database read to install: the SKU's snapshot and its persisted count read before the read
/// started (`kUnknownPersisted` if it was not read then: the fill then answers kRetry).
struct FillInput {
  std::string sku;
  db::StockSnapshot snapshot;
  std::string persisted_before;
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

  /// Installs database reads that started at `read_started`, with Redis's epoch `epoch_before`
  /// read before them, under fill.lua's rules, many SKUs per script call in one round trip;
  /// results in input order. Reads older than Keys::kFillReadMaxAge all answer kRetry without
  /// touching Redis, and so do all reads when the epoch changed.
  std::vector<FillResult> Install(std::span<const FillInput> inputs,
                                  std::chrono::steady_clock::time_point read_started,
                                  const Epoch& epoch_before);
  /// Reads the SKUs' persisted counts, then their rows in one database query, and installs them.
  /// Sets no negative-cache markers of its own accord (that is `FillOptions::absent_ttl`).
  std::vector<FillResult> LoadAndInstall(std::span<const std::string> skus);
  /// The SKUs' persisted counts now ("0" for none), to pass as `FillInput::persisted_before`,
  /// and the epoch, to pass to Install (for no SKUs, nothing). To call before a database read for
  /// fills: also sets Keys::kFillReadsActive, in the same round trip.
  static PersistedBefore PersistedCounts(redis::Connection& connection,
                                         std::span<const std::string> skus);
  /// To call before a database read for fills: sets Keys::kFillReadsActive, and answers whether
  /// any SKU has a persisted count now (if not, every SKU's is "0") and the epoch, to pass to
  /// Install.
  static AnnouncedRead AnnounceRead(redis::Connection& connection);

  /// Stands for a persisted count that was not read before the database read.
  static constexpr std::string_view kUnknownPersisted = "?";
  /// SKUs per fill.lua call: bounds how long one call holds Redis (about a millisecond).
  static constexpr std::size_t kSkusPerCall = 200;

  /// Turns one fill.lua reply for `inputs` into `results`; a reply of another shape throws
  /// `PermanentError`.
  static void ReadFillReply(const redis::Value& reply, std::span<const FillInput> inputs,
                            std::span<FillResult> results);

 private:
  std::optional<std::int64_t> FillOnce(const std::string& sku);
  /// One attempt; nullopt result means "try again".
  std::optional<std::optional<std::int64_t>> TryFill(const std::string& sku,
                                                     const std::string& token);
  /// One fill.lua call for `inputs` (at most kSkusPerCall); a lean one passes only the inventory
  /// keys (fill.lua's header).
  [[nodiscard]] redis::ScriptCall FillCall(std::span<const FillInput> inputs, bool lean,
                                           const Epoch& epoch_before) const;
  /// Whether a fill of `inputs` may try lean calls: many SKUs, all with a database row, and
  /// neither recent changes nor absent markers in Redis now (fill.lua checks again).
  static bool MayBeLean(redis::Connection& connection, std::span<const FillInput> inputs);
  /// The `call`th kSkusPerCall-sized slice of `inputs`.
  static std::span<const FillInput> CallInputs(std::span<const FillInput> inputs, std::size_t call);
  /// fill.lua's replies for `inputs`, kSkusPerCall SKUs per call, lean where it may be.
  std::vector<redis::Value> RunFillCalls(std::span<const FillInput> inputs,
                                         const Epoch& epoch_before);
  /// True if a database read that started then may predate forgotten syncer changes.
  static bool TooOld(std::chrono::steady_clock::time_point read_started);
  /// Cached/filled → quantity, absent → nullopt, inflight/retry → try again (nullopt).
  static std::optional<std::optional<std::int64_t>> Interpret(const FillResult& result);

  redis::Pool& redis_;
  db::Store& store_;
  const Keys& keys_;
  Scripts& scripts_;
  FillOptions options_;
  CacheCounters& counters_;
  SingleFlight<std::optional<std::int64_t>> flights_;
};

}  // namespace invsync::core
