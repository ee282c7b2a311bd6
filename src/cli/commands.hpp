#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/stock_service.hpp"
#include "db/store.hpp"
#include "persister/persister.hpp"
#include "persister/persister_threads.hpp"
#include "reconcile/reconcile.hpp"
#include "redis/client.hpp"
#include "syncer/syncer.hpp"

namespace invsync::cli {

/// Exit codes of the `invsync` command (documented in README.md).
enum ExitCode : int {
  kExitOk = 0,           ///< done
  kExitRefused = 1,      ///< a business refusal: insufficient stock, unknown SKU or order, conflict
  kExitUsage = 2,        ///< bad arguments, invalid input or configuration
  kExitUnavailable = 3,  ///< Redis or the database unreachable or failing; retry later
  kExitInternal = 4,     ///< an unexpected internal error
};

/// Where and how a command reports: human-readable lines, or one JSON document.
struct Output {
  bool json = false;
  std::ostream& out;
  std::ostream& err;
  bool progress = false;  ///< draw progress bars on `err` (it is a terminal)
};

/// The parts a command works with, built by the application.
struct Parts {
  config::Settings settings;
  redis::Pool* redis = nullptr;
  db::Store* store = nullptr;
  core::StockService* stock = nullptr;
};

int Get(Parts& parts, const std::vector<std::string>& skus, const Output& output);
/// `lines` are "SKU:QTY" (split at the last ':', so SKUs may contain ':').
int Deduct(Parts& parts, const std::string& order_id, const std::vector<std::string>& lines,
           const Output& output);
int Cancel(Parts& parts, const std::string& order_id, const Output& output);
int ShowOrder(Parts& parts, const std::string& order_id, const Output& output);
/// A missing request id gets a random one (printed), so a retry by hand is a new request.
int Restock(Parts& parts, const std::string& sku, const std::string& quantity,
            const std::optional<std::string>& request_id, const Output& output);
int Set(Parts& parts, const std::string& sku, const std::string& quantity,
        const std::optional<std::string>& request_id, const Output& output);
int Status(Parts& parts, const Output& output);
int Migrate(Parts& parts, const Output& output);
/// Whether to load the demo catalogue: with `load` and an empty catalogue. An empty catalogue
/// without `load` logs how to get it; a catalogue that is not empty with `load`, why not.
bool WantsDemo(Parts& parts, bool load);
/// Sets SKU-1 ... SKU-12 (10 ... 120 units), once: run again (after Redis failed part way), it
/// sets only what is missing.
void LoadDemo(Parts& parts);
/// Loads stock from the database into Redis: every SKU (`all`) or `skus`, exactly one of them.
/// Never overwrites a cached key and skips SKUs with unpersisted events; a progress bar when
/// `output.progress`, then a summary. Exit 1 if a SKU asked for is not in the database.
int Warm(Parts& parts, bool all, const std::vector<std::string>& skus, const Output& output);
/// Prints the SHA-256 of a token read from `input`, for the config file's [[tokens]].
int HashToken(std::istream& input, const Output& output);
/// Runs `persister.threads` persisters in threads until stopped; each finishes its batch.
class PersisterGroup {
 public:
  explicit PersisterGroup(Parts& parts);
  ~PersisterGroup();
  PersisterGroup(const PersisterGroup&) = delete;
  PersisterGroup& operator=(const PersisterGroup&) = delete;
  void Stop();
  [[nodiscard]] std::int64_t Events() const;
  /// Prometheus samples of these persisters' counters.
  void AppendMetrics(std::string& out) const;

 private:
  persister::PersisterThreads threads_;
};

/// Runs a syncer in a thread until stopped.
class SyncerThread {
 public:
  explicit SyncerThread(Parts& parts);
  ~SyncerThread();
  SyncerThread(const SyncerThread&) = delete;
  SyncerThread& operator=(const SyncerThread&) = delete;
  void Stop();
  [[nodiscard]] const syncer::Syncer& syncer() const { return syncer_; }
  /// Prometheus samples of the syncer's counters and lag.
  void AppendMetrics(std::string& out);

 private:
  syncer::Syncer syncer_;
  std::jthread thread_;
};

/// Compares Redis with the database (and repairs drift with `repair`), with a progress bar when
/// `output.progress`; exit 0 when clean, 1 when drift is left or stock is oversold. With
/// `reset_cursor` (only with `repair`) it first moves the syncer's cursor to the database's present
/// position (syncer::ResetCursor): the way out when the cursor belongs to another database.
int Reconcile(Parts& parts, bool repair, bool reset_cursor, const Output& output);

/// Runs reconcile inside `serve` every `reconcile.interval`, one process at a time, logging
/// what it finds; stops with the service.
class ReconcileSchedule {
 public:
  explicit ReconcileSchedule(Parts& parts);
  /// Lets a run in progress finish, then stops.
  void Stop();

 private:
  std::jthread thread_;
};

/// Runs the syncer until stop is requested (as the active one, or standing by).
int Sync(Parts& parts, const std::stop_token& stop, const Output& output);
/// Runs persisters until stop is requested, then finishes the batch in hand.
int Persist(Parts& parts, const std::stop_token& stop, const Output& output);
/// The service: persisters, the syncer and the HTTP API until stop is requested; then stops
/// accepting, finishes requests in flight, lets the persisters write what was accepted, and returns
/// 0.
int Serve(Parts& parts, const std::stop_token& stop, const Output& output);

}  // namespace invsync::cli
