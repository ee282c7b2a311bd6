#include "core/warm.hpp"

#include <deque>
#include <future>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace invsync::core {

namespace {

void Note(std::vector<std::string>& listed, const std::string& sku) {
  if (listed.size() < Warmer::kListedSkus) {
    listed.push_back(sku);
  }
}

}  // namespace

struct Warmer::Page {
  std::vector<std::string> skus;
  std::vector<FillInput> inputs;
  std::chrono::steady_clock::time_point read_started;
  Epoch epoch_before;  ///< read before the page, no later than its persisted counts
  bool last = false;
};

Warmer::Warmer(redis::Pool& redis, db::Store& store, CacheFiller& filler, WarmOptions options)
    : redis_(redis), store_(store), filler_(filler), options_(options) {}

Warmer::Page Warmer::ReadPage(const std::string& after) {
  // fill.lua needs Redis's epoch (read with the announcement) and each SKU's persisted count from
  // before the database read. While no SKU has one (a warm into an emptied Redis before any event
  // is persisted), each is "0". Otherwise the page's SKUs, known only from the read itself, are
  // listed first (a cheap index-only scan) and their counts read; a SKU inserted between list and
  // read has no count and is read again (kUnknownPersisted).
  std::vector<std::string> listed;
  std::vector<std::string> persisted;
  AnnouncedRead announced;
  {
    auto conn = redis_.Acquire();
    announced = CacheFiller::AnnounceRead(*conn);
    if (announced.any_persisted) {
      listed = store_.ListSkus(after, options_.page_size);
      persisted = CacheFiller::PersistedCounts(*conn, listed).counts;
    }
  }
  const bool any_persisted = announced.any_persisted;
  Page page;
  page.epoch_before = std::move(announced.epoch);
  page.read_started = std::chrono::steady_clock::now();
  auto rows = store_.LoadStockPage(after, options_.page_size);
  page.last = rows.size() < options_.page_size;
  std::unordered_map<std::string_view, std::size_t> index;  // built only if list and read differ
  auto persisted_before = [&](std::size_t i, const std::string& sku) -> std::string_view {
    if (!any_persisted) {
      return "0";
    }
    if (i < listed.size() && listed[i] == sku) {
      return persisted[i];
    }
    if (index.empty()) {
      for (std::size_t j = 0; j < listed.size(); ++j) {
        index.emplace(listed[j], j);
      }
    }
    const auto found = index.find(sku);
    return found == index.end() ? CacheFiller::kUnknownPersisted
                                : std::string_view(persisted[found->second]);
  };
  page.skus.reserve(rows.size());
  page.inputs.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto& row = rows[i];
    const std::string_view before = persisted_before(i, row.sku);
    page.skus.push_back(row.sku);
    page.inputs.push_back({std::move(row.sku), row.snapshot, std::string(before)});
  }
  return page;
}

void Warmer::Tally(std::span<const std::string> skus, std::span<const FillResult> results,
                   WarmCounts& counts, std::vector<std::string>& again) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    switch (results[i].outcome) {
      case FillOutcome::kCached:
        ++counts.cached;
        break;
      case FillOutcome::kFilled:
        ++counts.loaded;
        break;
      case FillOutcome::kAbsent:
        ++counts.absent;
        Note(counts.absent_skus, skus[i]);
        break;
      case FillOutcome::kInflight:
        ++counts.skipped;
        Note(counts.skipped_skus, skus[i]);
        break;
      case FillOutcome::kRetry:
        again.push_back(skus[i]);
        break;
    }
  }
}

void Warmer::Settle(std::vector<std::string> skus, WarmCounts& counts, int attempts_left) {
  while (!skus.empty()) {
    if (attempts_left <= 0) {
      for (const auto& sku : skus) {
        ++counts.skipped;
        Note(counts.skipped_skus, sku);
      }
      return;
    }
    --attempts_left;
    // What made the reads stale (a persister batch, a database-side insert) is usually over soon.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::vector<std::string> again;
    const std::span<const std::string> all(skus);
    for (std::size_t first = 0; first < all.size(); first += options_.page_size) {
      auto chunk = all.subspan(first, std::min(options_.page_size, all.size() - first));
      Tally(chunk, filler_.LoadAndInstall(chunk), counts, again);
    }
    skus = std::move(again);
  }
}

WarmCounts Warmer::WarmAll(const WarmProgress& progress) {
  WarmCounts counts;
  const std::int64_t total = store_.CountSkus();
  std::vector<std::string> again;
  // The next page's database read and two pages' installs run at once: while Redis runs one
  // page's script, this process builds or reads the other's.
  std::deque<std::future<std::pair<std::vector<std::string>, std::vector<FillResult>>>> installs;
  auto tally_oldest = [&] {
    auto [skus, results] = installs.front().get();
    installs.pop_front();
    Tally(skus, results, counts, again);
    if (progress) {
      progress(counts, total);
    }
  };
  auto next = std::async(std::launch::async, [this] { return ReadPage(""); });
  for (bool last = false; !last;) {
    Page page = next.get();
    last = page.last;
    if (!last) {
      next = std::async(std::launch::async,
                        [this, after = page.skus.back()] { return ReadPage(after); });
    }
    installs.push_back(std::async(std::launch::async, [this, page = std::move(page)] {
      return std::pair(page.skus,
                       filler_.Install(page.inputs, page.read_started, page.epoch_before));
    }));
    if (installs.size() >= kInstallsAtOnce) {
      tally_oldest();
    }
  }
  while (!installs.empty()) {
    tally_oldest();
  }
  Settle(std::move(again), counts, options_.attempts - 1);
  if (progress) {
    progress(counts, total);
  }
  return counts;
}

WarmCounts Warmer::WarmSkus(std::span<const std::string> skus, const WarmProgress& progress) {
  std::vector<std::string> unique;
  std::unordered_set<std::string_view> seen;
  for (const auto& sku : skus) {
    if (seen.insert(sku).second) {
      unique.push_back(sku);
    }
  }
  const auto total = static_cast<std::int64_t>(unique.size());
  WarmCounts counts;
  std::vector<std::string> again;
  const std::span<const std::string> all(unique);
  for (std::size_t first = 0; first < all.size(); first += options_.page_size) {
    auto chunk = all.subspan(first, std::min(options_.page_size, all.size() - first));
    Tally(chunk, filler_.LoadAndInstall(chunk), counts, again);
    if (progress) {
      progress(counts, total);
    }
  }
  Settle(std::move(again), counts, options_.attempts - 1);
  if (progress) {
    progress(counts, total);
  }
  return counts;
}

}  // namespace invsync::core
