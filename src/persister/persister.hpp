#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "core/scripts.hpp"
#include "db/store.hpp"
#include "persister/event_codec.hpp"
#include "redis/client.hpp"

namespace invsync::persister {

/// Places in a batch's life where tests inject faults (a crash, a stall).
enum class FaultPoint {
  kAfterRead,    ///< events read from the stream, nothing written yet
  kAfterCommit,  ///< database transaction committed, stream entries not yet acknowledged
};
using FaultHook = std::function<void(FaultPoint, std::span<const db::StockEvent>)>;

/// Lets the persisters of one process gather their batches one at a time. Each waits for its turn,
/// reads and gathers its batch, and passes the turn on before it writes the batch to the database,
/// so the writes of several persisters still overlap while a steady trickle of events makes one
/// batch per `batch_wait`, not one per persister per `batch_wait`: each transaction's fixed cost
/// (round trips, commit, WAL flush) is paid a quarter as often with four persisters.
class GatherTurn {
 public:
  /// Waits for the turn; false if `stop` was requested first (the turn is not held then).
  bool Take(const std::stop_token& stop);
  void Pass();

 private:
  std::mutex mutex_;
  std::condition_variable_any passed_;
  bool taken_ = false;
};

struct PersisterOptions {
  std::string consumer;  ///< consumer name in the group; empty: "<host>-<pid>-<n>"
  int batch_size = 1000;
  /// Wait this long to fill a batch. At moderate rates (a few thousand events/s) a short wait
  /// makes many small transactions whose fixed cost dominates the database's CPU: 50 ms instead
  /// of 5 ms gave the catalogue benchmark 16-22% more operations/s on a 2-CPU machine, for at
  /// most 50 ms more persistence lag. A full batch is written at once.
  std::chrono::milliseconds batch_wait{50};
  std::chrono::milliseconds claim_idle{30000};  ///< claim entries another consumer left this long
  std::chrono::milliseconds max_backoff{5000};  ///< longest pause between database retries
  std::chrono::milliseconds poll{500};          ///< longest blocking read when idle
  std::chrono::milliseconds redis_timeout{2000};
  std::string key_prefix = "inventory:";  ///< of the per-SKU stock hashes
  /// Consumers with nothing pending and silent this long are removed from the group.
  std::chrono::milliseconds forget_idle{std::chrono::hours(1)};
  /// Shared by the persisters of one process (see GatherTurn); null: this one gathers alone.
  std::shared_ptr<GatherTurn> turn;
};

/// How far the database is behind Redis.
struct StreamLag {
  std::int64_t stream_length = 0;
  std::int64_t pending = 0;      ///< delivered to a persister, not yet acknowledged
  std::int64_t undelivered = 0;  ///< not yet read by any persister
  std::optional<std::chrono::milliseconds> oldest_age;  ///< of the oldest unpersisted event
  [[nodiscard]] std::int64_t unpersisted() const { return pending + undelivered; }
};

/// Reads the lag in one consistent view; with `trim`, also drops acknowledged history.
StreamLag ReadLag(redis::Connection& connection, core::Scripts& scripts, bool trim = false);

struct PersisterCounters {
  std::atomic<std::int64_t> events{0};          ///< events whose batch committed
  std::atomic<std::int64_t> duplicate_rows{0};  ///< ledger rows already there (replays)
  std::atomic<std::int64_t> batches{0};
  std::atomic<std::int64_t> dead_letters{0};
  std::atomic<std::int64_t> database_errors{0};
  /// Failed attempts refused by a database that is up, for a reason other than the events' data
  /// (read-only, no privilege, schema): retried, but an operator has to act.
  std::atomic<std::int64_t> database_refusals{0};
  std::atomic<std::int64_t> last_batch_size{0};
  std::atomic<std::int64_t> late_replays{0};  ///< ids accepted again after the retention window
  /// Times Redis was found to have lost writes the database has (see CheckForLostWrites).
  std::atomic<std::int64_t> lost_redis_writes{0};
  /// Values in Redis an acknowledgement could not update (a stock quantity or a count that is not
  /// an integer) and replaced instead (see ack.lua).
  std::atomic<std::int64_t> redis_repairs{0};
};

/// Drains the Redis event stream into the database: batches of up to N events or T ms, each in
/// one transaction (ledger rows are unique per event, so a replay is a no-op), and only then
/// acknowledges the entries. Entries left pending by a dead consumer are claimed back.
class Persister {
 public:
  Persister(redis::Pool& redis, db::Store& store, PersisterOptions options, FaultHook hook = {});

  /// Runs until stop is requested; retries transient failures with backoff, never drops events.
  void Run(const std::stop_token& stop);
  /// Reads, persists and acknowledges one batch; returns the number of events acknowledged.
  /// Throws on failures (Run is the loop that survives them).
  std::size_t RunOnce(std::chrono::milliseconds block, const std::stop_token& stop = {});

  [[nodiscard]] const PersisterCounters& counters() const { return counters_; }
  [[nodiscard]] const std::string& consumer() const { return options_.consumer; }

 private:
  struct Entry {
    std::string stream_id;
    std::optional<db::StockEvent> event;      ///< nullopt: malformed
    std::string problem;                      ///< why it is dead-lettered
    bool dead = false;                        ///< malformed, or rejected by the database
    std::vector<db::SkuDelta> compensations;  ///< late replays to give back in Redis
  };

  /// An entry to work on; one that could not be decoded is dead-lettered.
  static Entry FromStream(StreamEntry&& decoded);
  void EnsureGroup();
  std::vector<Entry> ReadBatch(std::chrono::milliseconds block, const std::stop_token& stop);
  void SetReadTimeout(std::chrono::milliseconds timeout);
  void ReadInto(std::vector<Entry>& entries, const std::vector<std::string_view>& command);
  void Claim(std::vector<Entry>& entries);
  void ForgetIdleConsumers();
  /// Persists with retries; entries the database rejects for good are marked dead.
  void Persist(std::vector<Entry>& entries, const std::stop_token& stop);
  void PersistOne(Entry& entry, const std::stop_token& stop);
  void NoteLateReplays(std::vector<Entry>& entries, const std::vector<db::LateReplay>& late);
  /// Appends ack.lua's plain groups (entries whose acknowledgement only moves their SKUs' counts,
  /// grouped by their SKUs) to `args`; answers the other entries, in order.
  static std::vector<const Entry*> AppendPlainGroups(const std::vector<Entry>& entries,
                                                     std::vector<std::string>& args);
  /// `epoch`: Redis's data epoch (Keys::kEpoch) seen before the batch was read.
  void Acknowledge(const std::vector<Entry>& entries, const std::string& epoch);
  /// The current epoch, creating one if Redis has none (it lost its data, or never had any).
  std::string TakeEpoch();
  /// Once a second, busy or idle: trims acknowledged history and checks for lost writes.
  void Housekeep();
  /// Compares the database's stream high-water mark with the last id Redis's stream generated.
  /// Redis behind the database means it lost writes the persister had already committed (it
  /// restarted from an append-only file missing its tail): its stock keys then lack those
  /// deductions. Every cached stock key is dropped (each is reloaded from the database, which
  /// has them) and the pending list is claimed back at once. Once per loss, whichever
  /// persister sees it first.
  void CheckForLostWrites();
  /// Drops every cached stock key, SCAN by SCAN; returns how many.
  std::int64_t DropStockKeys();
  /// The reading connection, connected if it is not (throws `TransientError` if Redis is down).
  redis::Connection& Reader();

  redis::Pool& redis_;
  db::Store& store_;
  PersisterOptions options_;
  FaultHook hook_;
  core::Scripts scripts_;
  /// The connection for blocking reads; made on first use (Redis may be down when the service
  /// starts) and again after it breaks.
  std::optional<redis::Connection> reader_;
  std::chrono::milliseconds read_timeout_{0};  ///< last set on reader_ (0: not set by us)
  PersisterCounters counters_;
  std::chrono::steady_clock::time_point last_claim_{};
  std::string claim_cursor_ = "0-0";  ///< where the next XAUTOCLAIM scan of the pending list starts
  bool claim_all_now_ = false;        ///< claim every pending entry, however recent (lost writes)
  std::chrono::steady_clock::time_point last_trim_{};
  std::string epoch_;
  bool check_before_read_ = true;  ///< look for lost Redis writes before the next read
};

/// Thrown by the retry loop when a stop is requested while the database is unreachable; the
/// batch stays pending in the stream for the next persister.
class Stopped : public std::exception {
 public:
  [[nodiscard]] const char* what() const noexcept override { return "persister stopped"; }
};

}  // namespace invsync::persister
