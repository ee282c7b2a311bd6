#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/cache_fill.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::core {

struct WarmOptions {
  std::size_t page_size = 2000;  ///< SKUs per database read
  int attempts = 3;              ///< reads per SKU while fills answer "read again"
};

/// What a warm did, SKU by SKU.
struct WarmCounts {
  std::int64_t loaded = 0;   ///< installed from the database
  std::int64_t cached = 0;   ///< already in Redis: left alone
  std::int64_t skipped = 0;  ///< not installed: events not yet persisted (the next read loads it)
  std::int64_t absent = 0;   ///< asked for, but the database has no such SKU
  /// The first few skipped and absent SKUs, for the report.
  std::vector<std::string> skipped_skus;
  std::vector<std::string> absent_skus;

  [[nodiscard]] std::int64_t done() const { return loaded + cached + skipped + absent; }
};

/// Called after each page with the counts so far and the number of SKUs expected in all.
using WarmProgress = std::function<void(const WarmCounts& counts, std::int64_t total)>;

/// Loads stock from the database into Redis in bulk (after Redis lost its data, or ahead of
/// traffic), safely while orders flow: every SKU goes through fill.lua, which never overwrites a
/// key that exists, refuses SKUs with unpersisted events and counts the syncer's changes exactly
/// once. Reads the database in pages, the next page's read overlapping the current page's Redis
/// writes; sets no negative-cache markers (an absent SKU changes nothing).
class Warmer {
 public:
  /// `filler` should have `FillOptions::absent_ttl` 0 (no markers).
  Warmer(redis::Pool& redis, db::Store& store, CacheFiller& filler, WarmOptions options = {});

  /// Every SKU of the database, in SKU order.
  WarmCounts WarmAll(const WarmProgress& progress);
  /// These SKUs (duplicates count once).
  WarmCounts WarmSkus(std::span<const std::string> skus, const WarmProgress& progress);

  /// How many SKUs of each kind are listed in `WarmCounts`.
  static constexpr std::size_t kListedSkus = 100;
  /// Pages being installed at once by `WarmAll`.
  static constexpr std::size_t kInstallsAtOnce = 2;

 private:
  struct Page;
  Page ReadPage(const std::string& after);
  /// Tallies fill results; SKUs to read again go to `again`.
  static void Tally(std::span<const std::string> skus, std::span<const FillResult> results,
                    WarmCounts& counts, std::vector<std::string>& again);
  /// Reads and installs `skus` again until they settle or the attempts run out (then skipped).
  void Settle(std::vector<std::string> skus, WarmCounts& counts, int attempts_left);

  redis::Pool& redis_;
  db::Store& store_;
  CacheFiller& filler_;
  WarmOptions options_;
};

}  // namespace invsync::core
