#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "workload.hpp"

namespace invsync::bench {

/// What the run did, from the client's side.
struct AuditInput {
  std::map<std::string, std::int64_t> initial;      ///< stock seeded per SKU
  std::map<std::string, std::int64_t> adjustments;  ///< back-office deltas per SKU
  std::set<std::string> expect_sold_out;            ///< SKUs whose demand exceeded their stock
  std::span<const Record> records;                  ///< every order and cancel sent
  bool has_cache = true;                            ///< compare Redis with the database
};

/// What the stores hold after the run (and, for invsync, after the drain).
struct Observed {
  /// Ledger rows of orders and cancels: event id ("deduct:<order id>", "cancel:<order id>") →
  /// SKU → delta.
  std::map<std::string, std::map<std::string, std::int64_t>> ledger;
  std::map<std::string, std::optional<std::int64_t>> database;  ///< quantity per SKU asked
  std::map<std::string, std::optional<std::int64_t>> redis;     ///< quantity per SKU asked
};

/// The audit's counts and the violations it found (the first few of each kind listed).
struct AuditReport {
  std::int64_t orders_accepted = 0;
  std::int64_t orders_refused = 0;
  std::int64_t orders_unknown = 0;  ///< no clear answer; resolved from the ledger
  std::int64_t orders_unknown_applied = 0;
  std::int64_t cancels_accepted = 0;
  std::int64_t skus_checked = 0;
  std::int64_t units_sold = 0;       ///< net of cancels, over all SKUs
  std::int64_t units_available = 0;  ///< initial + adjustments over the SKUs checked

  // Violations.
  std::int64_t accepted_missing = 0;   ///< 2xx order not (exactly) in the ledger
  std::int64_t refused_present = 0;    ///< 409 order in the ledger
  std::int64_t cancels_missing = 0;    ///< 2xx cancel whose stock was not given back in the ledger
  std::int64_t unexpected_events = 0;  ///< ledger events no request accounts for
  std::int64_t oversold_units = 0;     ///< units sold beyond a SKU's stock, summed
  std::int64_t oversold_skus = 0;
  std::int64_t not_sold_out = 0;       ///< SKUs with more demand than stock left unsold
  std::int64_t database_mismatch = 0;  ///< database quantity ≠ initial + adjustments − net sold
  std::int64_t cache_mismatch = 0;     ///< Redis quantity ≠ database quantity
  std::int64_t negative = 0;           ///< SKUs below zero in either store

  std::vector<std::string> examples;  ///< one line per violation, the first few of each kind

  [[nodiscard]] std::int64_t violations() const {
    return accepted_missing + refused_present + cancels_missing + unexpected_events +
           oversold_skus + not_sold_out + database_mismatch + cache_mismatch + negative;
  }
  [[nodiscard]] bool clean() const { return violations() == 0; }
  [[nodiscard]] nlohmann::json ToJson() const;
  /// One line: "clean" or the violations by kind.
  [[nodiscard]] std::string Summary() const;
};

/// Judges a run: every accepted order in the ledger exactly once with its lines, no refused one,
/// every accepted cancel given back, no SKU sold beyond its stock (and sold out where demand
/// exceeded it), the database equal to what the answers imply, Redis equal to the database.
[[nodiscard]] AuditReport Judge(const AuditInput& input, const Observed& observed,
                                std::size_t examples_per_kind = 5);

/// The SKUs the audit compares: seeded, adjusted or named by a request.
[[nodiscard]] std::set<std::string> TouchedSkus(const AuditInput& input);

}  // namespace invsync::bench
