#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "history.hpp"

namespace invsync::fault {

/// One row of `invsync_ledger`.
struct LedgerRow {
  std::string kind;  ///< deduct, cancel, restock, set
  std::string ref;   ///< order id or request id
  std::string sku;
  std::int64_t delta = 0;
};

/// Both stores after the drain, and what the test itself did to the database.
struct Observed {
  std::vector<LedgerRow> ledger;
  std::map<std::string, std::int64_t> database;              ///< inventory.quantity per SKU
  std::map<std::string, std::optional<std::int64_t>> redis;  ///< nullopt: key missing
  std::map<std::string, std::int64_t> initial;               ///< stock inserted before the run
  std::map<std::string, std::int64_t> backoffice;  ///< SQL deltas the test committed meanwhile
  bool drained = false;  ///< persister pending 0 and outbox unapplied 0 were reached
  bool reconcile_clean = false;
  std::string reconcile_summary;
};

/// What the checker may tolerate because the schedule destroys data on purpose.
struct CheckOptions {
  /// Redis lost its data (FLUSHALL): acknowledged changes the persister had not yet written are
  /// documented as lost; they are counted and listed, not reported as violations.
  bool redis_data_loss = false;
  /// When redis-server was killed with `appendfsync everysec`. While a background fsync is slow,
  /// Redis holds its AOF writes back for up to 2 s and answers meanwhile, so changes answered
  /// from `kAofHeldBack` before the kill until `kAnswersInFlight` after it may be lost with
  /// Redis's data (counted and listed, not violations). Any other loss is still a violation.
  std::optional<std::chrono::steady_clock::time_point> redis_killed_at;
  static constexpr std::chrono::seconds kAofHeldBack{3};
  static constexpr std::chrono::seconds kAnswersInFlight{1};
};

/// Counts of one kind of request.
struct Counts {
  std::int64_t sent = 0;
  std::int64_t ok = 0;        ///< 2xx
  std::int64_t conflict = 0;  ///< 409
  std::int64_t other_4xx = 0;
  std::int64_t server_error = 0;  ///< 5xx
  std::int64_t unknown = 0;       ///< no answer
  std::int64_t retried = 0;       ///< uncertain first answers retried with the same id
  std::int64_t retry_ok = 0;
  /// Uncertain first attempts that did apply the change (the retry was answered as a replay).
  std::int64_t uncertain_applied = 0;
};

/// The checker's verdict on a history.
struct Report {
  Counts orders;
  Counts cancels;
  Counts restocks;
  std::int64_t faults = 0;  ///< faults the schedule injected
  std::int64_t ledger_rows = 0;
  std::int64_t skus = 0;
  std::int64_t units_sold = 0;         ///< net of cancels, all SKUs
  std::int64_t lost_to_data_loss = 0;  ///< only with CheckOptions::redis_data_loss
  std::vector<std::string> lost_ids;
  std::vector<std::string> violations;

  /// A few lines: the counts and every violation.
  [[nodiscard]] std::string Format(const std::string& schedule) const;
  /// One JSON object with the counts (for scripts/fault-suite).
  [[nodiscard]] std::string Json(const std::string& schedule) const;
};

/// Judges `ops` against the stores: every acknowledged change applied exactly once, nothing
/// refused applied, uncertain ones all or nothing, no oversell, Redis = database = initial +
/// ledger + back office for every SKU.
[[nodiscard]] Report Check(const std::vector<Op>& ops, const Observed& observed,
                           const CheckOptions& options = {});

}  // namespace invsync::fault
