#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>

#include "common/error.hpp"
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
  /// The cursor in Redis does not belong to the database (CursorMismatch): nothing is applied.
  std::atomic<bool> cursor_mismatch{false};
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
  /// Identity of the database the cursor belongs to; nullopt: none recorded (a fresh Redis, or
  /// a cursor written before identities were).
  std::optional<std::string> database_id;
};

/// The cursor in Redis belongs to another database's history. The syncer applies and prunes
/// nothing until an operator resets it (`invsync reconcile --repair --reset-cursor`).
class CursorMismatchError : public PermanentError {
 public:
  using PermanentError::PermanentError;
};

/// Parses the cursor as Redis keeps it ("xid:id"; nullopt: the start). Throws `PermanentError`
/// if it is malformed.
db::OutboxPosition ParseCursor(const std::optional<std::string>& text);

/// Reads the cursor, its database's identity and the announced leader from Redis.
SyncState ReadSyncState(redis::Connection& connection);

/// Why the cursor in `state` cannot be used with the database `origin` describes (written for a
/// database with another identity, or beyond its history: restored to an earlier point in time,
/// moved to another cluster), with what to do; nullopt if it can. No cursor yet always can.
[[nodiscard]] std::optional<std::string> CursorMismatch(const SyncState& state,
                                                        const db::OutboxOrigin& origin);

/// Moves the cursor to the database's present position (db::OutboxOrigin::now) and records the
/// database's identity beside it, forgetting the fill positions and notes that belong to the
/// cursor's old history. Changes committed since the restore are not applied by the syncer:
/// `reconcile --repair`, run right after, brings cached keys to the database's values. Returns
/// the new cursor.
db::OutboxPosition ResetCursor(redis::Connection& connection, db::Store& store);

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
  /// Why this syncer applies nothing (its cursor belongs to another database: CursorMismatch), as
  /// it last found while leading, with what to do; nullopt if it found no such problem or does not
  /// lead now. Kept in memory: cheap enough for every health probe. Thread-safe.
  [[nodiscard]] std::optional<std::string> Problem() const;

 private:
  void Lead(db::ChangeFeed& feed, const std::stop_token& stop);
  void Announce();
  /// The cursor in Redis, once checked against the database (throws CursorMismatchError); records
  /// the database's identity beside it when none is.
  db::OutboxPosition ReadCheckedCursor();
  /// Logs a mismatched cursor as an error: when it is found, then once a minute.
  void ReportMismatch(const CursorMismatchError& error);
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
  std::chrono::steady_clock::time_point last_mismatch_log_{};
  mutable std::mutex problem_mutex_;
  std::string problem_;  ///< the last mismatch found; read while counters_.cursor_mismatch is set
};

}  // namespace invsync::syncer
