#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>

#include "core/keys.hpp"
#include "core/scripts.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::syncer {

/// Places in a batch's life where tests inject faults (a crash, a stall).
enum class FaultPoint {
  kAfterRead,   ///< outbox rows read, nothing applied yet
  kAfterApply,  ///< rows applied to Redis and the cursor moved (one script)
};
using FaultHook = std::function<void(FaultPoint, std::span<const db::Change>)>;

struct SyncerOptions {
  int batch_size = 2000;                 ///< outbox rows per script call
  std::chrono::milliseconds poll{1000};  ///< longest wait for a notification; standby retry period
  std::chrono::milliseconds retention{std::chrono::hours(1)};  ///< applied rows kept this long
  std::chrono::milliseconds prune_every{std::chrono::minutes(1)};
  std::chrono::milliseconds max_backoff{5000};   ///< longest pause after a failure
  std::chrono::milliseconds held_back_retry{2};  ///< rows behind an open transaction: look again
  std::string key_prefix = "inventory:";
  std::string name;  ///< shown as the leader in status; empty: "<host>-<pid>"
};

struct SyncerCounters {
  std::atomic<std::int64_t> rows{0};           ///< outbox rows applied (the cursor passed them)
  std::atomic<std::int64_t> cached_rows{0};    ///< of those, rows that changed a cached key
  std::atomic<std::int64_t> replayed_rows{0};  ///< rows at or before the cursor: no-ops
  std::atomic<std::int64_t> batches{0};
  std::atomic<std::int64_t> pruned_rows{0};
  std::atomic<std::int64_t> errors{0};
  std::atomic<std::int64_t> malformed_rows{0};  ///< rows that were not a valid change (dropped key)
  std::atomic<std::int64_t> dropped_keys{0};    ///< updates Redis could not add (dropped key)
  std::atomic<bool> leader{false};
};

/// What a batch did.
struct BatchOutcome {
  std::size_t read = 0;     ///< rows read from the outbox
  std::size_t applied = 0;  ///< rows that moved the cursor
  bool held_back = false;   ///< more rows wait behind an open transaction
};

/// The syncer's state as any process sees it.
struct SyncState {
  db::OutboxPosition cursor;
  std::optional<std::string> leader;  ///< name of the active syncer, if one announced itself
};

/// Parses the cursor as Redis keeps it ("xid:id"; nullopt: the start). Throws `PermanentError`
/// if it is malformed.
db::OutboxPosition ParseCursor(const std::optional<std::string>& text);

/// Reads the cursor and the announced leader from Redis.
SyncState ReadSyncState(redis::Connection& connection);

/// Applies the outbox (changes made in the database outside invsync) to Redis, in order and
/// exactly once: one script per batch adds each delta to the cached key and moves the cursor kept
/// in Redis, so a batch read again after a crash changes nothing. Only one syncer of all processes
/// works at a time (the database's leader lock); the others wait to take over. Wakes on the
/// database's notification and also polls, so a lost notification costs latency only.
class Syncer {
 public:
  Syncer(redis::Pool& redis, db::Store& store, SyncerOptions options, FaultHook hook = {});

  /// Runs until stop is requested; survives failures of Redis and the database with backoff.
  void Run(const std::stop_token& stop);
  /// Reads and applies one batch from the cursor in Redis (whether or not this syncer leads).
  /// Throws on failures.
  BatchOutcome RunOnce();
  /// Outbox rows not yet applied, from the cursor in Redis. Throws on failures.
  [[nodiscard]] db::ChangeBacklog ReadBacklog();
  /// Deletes applied outbox rows older than the retention; returns how many.
  std::int64_t Prune();

  [[nodiscard]] const SyncerCounters& counters() const { return counters_; }
  [[nodiscard]] const std::string& name() const { return options_.name; }

 private:
  void Lead(db::ChangeFeed& feed, const std::stop_token& stop);
  void Announce();
  /// Counts and logs a malformed row the batch passed.
  void NoteUnusual(const db::Change& change);

  redis::Pool& redis_;
  db::Store& store_;
  SyncerOptions options_;
  FaultHook hook_;
  core::Keys keys_;
  core::Scripts scripts_;
  SyncerCounters counters_;
  std::chrono::steady_clock::time_point last_prune_{};
  std::chrono::steady_clock::time_point last_announce_{};
};

}  // namespace invsync::syncer
