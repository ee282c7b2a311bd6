#include "core/cache_fill.hpp"

#include <fmt/format.h>

#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::core {

namespace {

std::string RandomToken() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}", engine());
}

std::int64_t ParseQuantity(const std::string& text, const std::string& sku) {
  auto value = ParseInt64(text);
  if (!value) {
    throw PermanentError(
        fmt::format("Redis holds a non-integer quantity \"{}\" for SKU \"{}\"", text, sku));
  }
  return *value;
}

}  // namespace

CacheFiller::CacheFiller(redis::Pool& redis, db::Store& store, const Keys& keys, Scripts& scripts,
                         FillOptions options, CacheCounters& counters)
    : redis_(redis),
      store_(store),
      keys_(keys),
      scripts_(scripts),
      options_(options),
      counters_(counters) {}

std::optional<std::int64_t> CacheFiller::Fill(const std::string& sku) {
  return flights_.Do(sku, [&] { return FillOnce(sku); });
}

std::optional<std::int64_t> CacheFiller::FillOnce(const std::string& sku) {
  const auto deadline = std::chrono::steady_clock::now() + options_.wait;
  const std::string token = RandomToken();
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (auto result = TryFill(sku, token)) {
      return *result;
    }
    if (std::chrono::steady_clock::now() + pause > deadline) {
      throw TransientError(fmt::format(
          "SKU \"{}\" could not be loaded into Redis within {} ms (another process holds the "
          "load, or events for it are still being persisted)",
          sku, options_.wait.count()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

std::optional<std::optional<std::int64_t>> CacheFiller::TryFill(const std::string& sku,
                                                                const std::string& token) {
  const std::string inventory_key = keys_.Inventory(sku);
  const std::string absent_key = Keys::Absent(sku);
  const std::string lock_key = Keys::FillLock(sku);
  const std::string lock_ms = std::to_string(std::max<std::int64_t>(1, options_.lock_ttl.count()));
  std::vector<redis::Value> state;
  {
    auto conn = redis_.Acquire();
    state = conn->Pipeline({{"HGET", inventory_key, "quantity"},
                            {"EXISTS", absent_key},
                            {"HGET", Keys::kInflight, sku},
                            {"HGET", Keys::kPersisted, sku},
                            {"SET", lock_key, token, "NX", "PX", lock_ms}});
  }
  for (const auto& value : state) {
    redis::ThrowIfError(value, "fill state");
  }
  const bool locked = !state[4].IsNil();
  auto release = [&] {
    if (locked) {
      auto conn = redis_.Acquire();
      scripts_.unlock.Run(*conn, {{lock_key}, {token}});
    }
  };
  if (auto cached = state[0].AsOptionalString()) {
    release();
    return std::optional<std::int64_t>(ParseQuantity(*cached, sku));
  }
  if (state[1].AsInteger() == 1) {
    release();
    counters_.absent_hits.fetch_add(1, std::memory_order_relaxed);
    return std::optional<std::int64_t>(std::nullopt);
  }
  if (!locked || state[2].AsOptionalInteger().value_or(0) > 0) {
    // Another process is loading it, or its events are not in the database yet: wait.
    release();
    return std::nullopt;
  }
  std::string persisted_before = state[3].AsOptionalString().value_or("0");
  try {
    counters_.database_reads.fetch_add(1, std::memory_order_relaxed);
    const auto started = std::chrono::steady_clock::now();
    auto snapshot = store_.LoadStock(sku);
    auto installed = TooOld(started) ? std::nullopt : Install(sku, snapshot, persisted_before);
    release();
    return installed;
  } catch (...) {
    try {
      release();
    } catch (const Error&) {
      // The lock expires by itself; the original failure matters more.
    }
    throw;
  }
}

bool CacheFiller::TooOld(std::chrono::steady_clock::time_point read_started) {
  // Changes applied meanwhile are remembered for Keys::kRecentChangesTtl; a read older than half
  // of that might miss some, so it is read again.
  return std::chrono::steady_clock::now() - read_started > Keys::kRecentChangesTtl / 2;
}

std::optional<std::optional<std::int64_t>> CacheFiller::Install(
    const std::string& sku, const db::StockSnapshot& snapshot,
    const std::string& persisted_before) {
  auto conn = redis_.Acquire();
  return Interpret(scripts_.fill.Run(*conn, FillCall(sku, snapshot, persisted_before)), sku);
}

redis::ScriptCall CacheFiller::FillCall(const std::string& sku, const db::StockSnapshot& snapshot,
                                        const std::string& persisted_before) const {
  return {{keys_.Inventory(sku), std::string(Keys::kInflight), std::string(Keys::kPersisted),
           Keys::Absent(sku), Keys::RecentChanges(sku), std::string(Keys::kFillPositions)},
          {sku, snapshot.quantity ? std::to_string(*snapshot.quantity) : std::string(),
           persisted_before, std::to_string(options_.absent_ttl.count()),
           std::to_string(snapshot.change_seq)}};
}

std::optional<std::optional<std::int64_t>> CacheFiller::Interpret(const redis::Value& reply,
                                                                  const std::string& sku) {
  const std::string& outcome = reply.At(0).AsString();
  if (outcome == "cached" || outcome == "filled") {
    return std::optional<std::int64_t>(ParseQuantity(reply.At(1).AsString(), sku));
  }
  if (outcome == "absent") {
    return std::optional<std::int64_t>(std::nullopt);
  }
  return std::nullopt;  // "inflight" or "retry"
}

std::map<std::string, std::int64_t> CacheFiller::FillMany(std::span<const std::string> skus) {
  std::map<std::string, std::int64_t> found;
  if (skus.empty()) {
    return found;
  }
  // Args are views: the key strings must outlive the pipeline call.
  std::vector<std::string> absent_keys;
  absent_keys.reserve(skus.size());
  for (const auto& sku : skus) {
    absent_keys.push_back(Keys::Absent(sku));
  }
  std::vector<redis::Args> commands;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    commands.push_back({"EXISTS", absent_keys[i]});
    commands.push_back({"HGET", Keys::kInflight, skus[i]});
    commands.push_back({"HGET", Keys::kPersisted, skus[i]});
  }
  std::vector<redis::Value> state;
  {
    auto conn = redis_.Acquire();
    state = conn->Pipeline(commands);
  }
  std::vector<std::string> candidates;
  std::vector<std::string> persisted_before;
  std::vector<std::string> one_by_one;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    redis::ThrowIfError(state[3 * i], "EXISTS");
    if (state[3 * i].AsInteger() == 1) {
      counters_.absent_hits.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (state[3 * i + 1].AsOptionalInteger().value_or(0) > 0) {
      one_by_one.push_back(skus[i]);
      continue;
    }
    candidates.push_back(skus[i]);
    persisted_before.push_back(state[3 * i + 2].AsOptionalString().value_or("0"));
  }
  std::map<std::string, db::StockSnapshot> loaded;
  const auto started = std::chrono::steady_clock::now();
  if (!candidates.empty()) {
    counters_.database_reads.fetch_add(1, std::memory_order_relaxed);
    loaded = store_.LoadStocks(candidates);
  }
  std::vector<redis::ScriptCall> calls;
  calls.reserve(candidates.size());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    calls.push_back(FillCall(candidates[i], loaded[candidates[i]], persisted_before[i]));
  }
  std::vector<redis::Value> replies;
  if (TooOld(started)) {
    calls.clear();
    one_by_one.insert(one_by_one.end(), candidates.begin(), candidates.end());
    candidates.clear();
  }
  if (!calls.empty()) {
    auto conn = redis_.Acquire();
    replies = scripts_.fill.RunMany(*conn, calls);
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    redis::ThrowIfError(replies[i], "fill");
    auto installed = Interpret(replies[i], candidates[i]);
    if (!installed) {
      one_by_one.push_back(candidates[i]);
    } else if (*installed) {
      found.emplace(candidates[i], **installed);
    }
  }
  for (const auto& sku : one_by_one) {
    if (auto quantity = Fill(sku)) {
      found.emplace(sku, *quantity);
    }
  }
  return found;
}

}  // namespace invsync::core
