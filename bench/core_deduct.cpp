// invsync-bench-core: drives core::StockService::Deduct directly (no HTTP) on one hot SKU from
// many threads and reports orders/s and the latency of each call, then checks that Redis lost
// exactly one unit per accepted order.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "common/error.hpp"
#include "core/stock_service.hpp"
#include "db/postgres_store.hpp"
#include "redis/client.hpp"

namespace {

using namespace invsync;
using Clock = std::chrono::steady_clock;

// Far more than any run can sell, and well under core::kMaxStock.
constexpr std::int64_t kSeed = 1'000'000'000'000;

struct Options {
  int workers = 64;
  double seconds = 5;
  double warmup = 1;
  int repeat = 1;
  std::string sku = "HOT";
  std::string json_path;
};

enum Phase : int { kWarmup, kMeasure, kStop };

// One worker's tallies, on its own cache lines so workers do not slow each other down.
struct alignas(64) WorkerStats {
  std::int64_t accepted = 0;  ///< every accepted order, warm-up included (for the stock check)
  std::int64_t measured = 0;  ///< accepted orders that completed inside the measured window
  std::int64_t refused = 0;   ///< any result other than a fresh kOk
  std::int64_t errors = 0;    ///< exceptions (infrastructure failures)
  std::string first_error;
  std::vector<std::int64_t> latency_ns;  ///< of calls completed inside the window
};

struct Repetition {
  double orders_per_s = 0;
  double window_s = 0;
  std::int64_t measured = 0;
  std::int64_t accepted = 0;
  std::int64_t refused = 0;
  std::int64_t errors = 0;
  std::int64_t p50_us = 0;
  std::int64_t p90_us = 0;
  std::int64_t p99_us = 0;
  std::int64_t p999_us = 0;
  std::int64_t max_us = 0;
  double client_cpu_s = 0;
  double redis_cpu_s = 0;
  std::int64_t redis_quantity = 0;
  std::int64_t stream_length = 0;
  bool check_ok = false;
  std::string check;
};

void Work(core::StockService& stock, const Options& options, int rep, int worker,
          const std::atomic<int>& phase, WorkerStats& stats) {
  stats.latency_ns.reserve(1 << 16);
  std::vector<core::Line> lines;
  for (std::int64_t n = 0; phase.load(std::memory_order_relaxed) != kStop; ++n) {
    const std::string order_id = fmt::format("bench-{}-{}-{}", rep, worker, n);
    lines.assign(1, core::Line{options.sku, 1});
    const auto start = Clock::now();
    try {
      auto result = stock.Deduct(order_id, std::move(lines));
      const auto elapsed = Clock::now() - start;
      if (result.status != core::StockStatus::kOk || result.replayed) {
        ++stats.refused;
        continue;
      }
      ++stats.accepted;
      if (phase.load(std::memory_order_relaxed) == kMeasure) {
        ++stats.measured;
        stats.latency_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
      }
    } catch (const Error& error) {
      if (stats.errors++ == 0) {
        stats.first_error = error.what();
      }
    }
  }
}

// Adds up the workers' tallies and latencies into `result`; returns the first error seen.
std::string Tally(const std::vector<WorkerStats>& stats, Repetition& result) {
  std::vector<std::int64_t> latencies;
  std::string first_error;
  for (const auto& s : stats) {
    result.accepted += s.accepted;
    result.measured += s.measured;
    result.refused += s.refused;
    result.errors += s.errors;
    latencies.insert(latencies.end(), s.latency_ns.begin(), s.latency_ns.end());
    if (first_error.empty()) {
      first_error = s.first_error;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  auto us = [&](double q) { return bench::Quantile(latencies, q) / 1000; };
  result.p50_us = us(0.50);
  result.p90_us = us(0.90);
  result.p99_us = us(0.99);
  result.p999_us = us(0.999);
  result.max_us = latencies.empty() ? 0 : latencies.back() / 1000;
  result.orders_per_s = static_cast<double>(result.measured) / result.window_s;
  return first_error;
}

// Exactly one unit per accepted order, and one stream event per change (the seed's included).
void CheckStock(core::StockService& stock, redis::Connection& observer, const Options& options,
                const std::string& first_error, Repetition& result) {
  auto quantity = stock.Get(options.sku);
  result.redis_quantity = quantity.quantity;
  result.stream_length = observer.Command({"XLEN", core::Keys::kEvents}).AsInteger();
  const std::int64_t expected = kSeed - result.accepted;
  result.check_ok =
      quantity.status == core::StockStatus::kOk && result.redis_quantity == expected &&
      result.stream_length == result.accepted + 1 && result.refused == 0 && result.errors == 0;
  result.check = fmt::format(
      "Redis {} = {} {} seed {} - accepted {} = {}; stream {} {} accepted + 1; refused {}, "
      "errors {}{}",
      options.sku, result.redis_quantity, result.redis_quantity == expected ? "==" : "!=", kSeed,
      result.accepted, expected, result.stream_length,
      result.stream_length == result.accepted + 1 ? "==" : "!=", result.refused, result.errors,
      first_error.empty() ? "" : fmt::format(" (first: {})", first_error));
}

Repetition RunRepetition(const bench::Servers& servers, const Options& options, int rep) {
  bench::ResetState(servers);
  // One connection per worker, so the pool is never what workers wait for.
  redis::Pool pool(redis::Endpoint::Parse(servers.redis_url),
                   static_cast<std::size_t>(options.workers) + 2, std::chrono::seconds(10));
  db::PostgresStore store(servers.database_url, 2);
  core::StockService stock(pool, store, core::Keys(), core::StockOptions{});
  auto seeded = stock.Set(options.sku, kSeed, fmt::format("bench-seed-{}", rep));
  if (seeded.status != core::StockStatus::kOk || seeded.quantity != kSeed) {
    throw PermanentError(
        fmt::format("seeding {} failed: {}", options.sku, core::StatusName(seeded.status)));
  }
  redis::Connection observer(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(10));

  std::atomic<int> phase{kWarmup};
  std::vector<WorkerStats> stats(static_cast<std::size_t>(options.workers));
  std::vector<std::jthread> workers;
  workers.reserve(stats.size());
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back(Work, std::ref(stock), std::cref(options), rep, w, std::cref(phase),
                         std::ref(stats[static_cast<std::size_t>(w)]));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup));
  const double redis_cpu_before = bench::RedisCpuSeconds(observer);
  const double client_cpu_before = bench::ProcessCpuSeconds();
  const auto window_start = Clock::now();
  phase.store(kMeasure);
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  phase.store(kStop);
  Repetition result;
  result.window_s = bench::SecondsSince(window_start);
  result.client_cpu_s = bench::ProcessCpuSeconds() - client_cpu_before;
  result.redis_cpu_s = bench::RedisCpuSeconds(observer) - redis_cpu_before;
  workers.clear();  // joins
  const std::string first_error = Tally(stats, result);
  CheckStock(stock, observer, options, first_error, result);
  return result;
}

nlohmann::json ToJson(const Repetition& r) {
  return {{"orders_per_s", r.orders_per_s},
          {"window_s", r.window_s},
          {"measured_orders", r.measured},
          {"accepted_orders", r.accepted},
          {"refused", r.refused},
          {"errors", r.errors},
          {"latency_us",
           {{"p50", r.p50_us},
            {"p90", r.p90_us},
            {"p99", r.p99_us},
            {"p99.9", r.p999_us},
            {"max", r.max_us}}},
          {"client_cpu_s", r.client_cpu_s},
          {"redis_cpu_s", r.redis_cpu_s},
          {"redis_quantity", r.redis_quantity},
          {"stream_length", r.stream_length},
          {"check_ok", r.check_ok},
          {"check", r.check}};
}

std::optional<Options> ParseOptions(int argc, char** argv, bench::Servers& servers) {
  bench::Flags flags("invsync-bench-core",
                     "Deducts single-line orders of 1 unit of one hot SKU through "
                     "core::StockService::Deduct from many threads; reports orders/s and latency.");
  flags.Add("workers", "64", "concurrent worker threads (the Redis pool gets workers + 2)");
  flags.Add("seconds", "5", "measured seconds per repetition");
  flags.Add("warmup", "1", "seconds of load before measuring");
  flags.Add("repeat", "1", "repetitions, each on freshly reset servers");
  flags.Add("sku", "HOT", "the hot SKU");
  flags.Add("json", "", "also write the figures to this JSON file");
  bench::AddServerFlags(flags);
  if (!flags.Parse(argc, argv)) {
    return std::nullopt;
  }
  Options options;
  options.workers = static_cast<int>(flags.Int("workers", 1, 4096));
  options.seconds = flags.Seconds("seconds");
  options.warmup = flags.Seconds("warmup");
  options.repeat = static_cast<int>(flags.Int("repeat", 1, 1000));
  options.sku = flags.String("sku");
  options.json_path = flags.String("json");
  servers = bench::ResolveServers(flags);
  return options;
}

// Medians over the repetitions.
struct Summary {
  double orders_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double client_cpu_per_order_us = 0;
  double redis_cpu_per_order_us = 0;
  bool checks_ok = true;
};

Summary Summarize(const std::vector<Repetition>& reps) {
  auto median = [&](auto field) {
    std::vector<double> values;
    values.reserve(reps.size());
    for (const auto& r : reps) {
      values.push_back(static_cast<double>(field(r)));
    }
    return bench::Median(values);
  };
  Summary summary;
  summary.orders_per_s = median([](const Repetition& r) { return r.orders_per_s; });
  summary.p50_us = median([](const Repetition& r) { return r.p50_us; });
  summary.p99_us = median([](const Repetition& r) { return r.p99_us; });
  summary.client_cpu_per_order_us = median([](const Repetition& r) {
    return r.client_cpu_s / static_cast<double>(std::max<std::int64_t>(1, r.measured)) * 1e6;
  });
  summary.redis_cpu_per_order_us = median([](const Repetition& r) {
    return r.redis_cpu_s / static_cast<double>(std::max<std::int64_t>(1, r.measured)) * 1e6;
  });
  for (const auto& r : reps) {
    summary.checks_ok = summary.checks_ok && r.check_ok;
  }
  return summary;
}

nlohmann::json ToJson(const Options& options, const Summary& summary,
                      const std::vector<Repetition>& reps) {
  nlohmann::json document;
  document["benchmark"] = "core_deduct";
  document["workers"] = options.workers;
  document["seconds"] = options.seconds;
  document["warmup_s"] = options.warmup;
  document["sku"] = options.sku;
  document["seed"] = kSeed;
  document["median"] = {{"orders_per_s", summary.orders_per_s},
                        {"p50_us", summary.p50_us},
                        {"p99_us", summary.p99_us},
                        {"client_cpu_per_order_us", summary.client_cpu_per_order_us},
                        {"redis_cpu_per_order_us", summary.redis_cpu_per_order_us}};
  document["checks_ok"] = summary.checks_ok;
  document["repetitions"] = nlohmann::json::array();
  for (const auto& r : reps) {
    document["repetitions"].push_back(ToJson(r));
  }
  return document;
}

int Run(int argc, char** argv) {
  bench::Servers servers;
  const auto parsed = ParseOptions(argc, argv, servers);
  if (!parsed) {
    return 0;
  }
  const Options& options = *parsed;
  std::cout << fmt::format(
      "invsync-bench-core: {} workers, {} s warm-up + {} s measured, {} repetition(s), SKU {}\n",
      options.workers, options.warmup, options.seconds, options.repeat, options.sku);
  std::vector<Repetition> reps;
  for (int rep = 1; rep <= options.repeat; ++rep) {
    const auto& r = reps.emplace_back(RunRepetition(servers, options, rep));
    std::cout << fmt::format(
        "rep {}: {:.0f} orders/s ({} in {:.2f} s); latency p50 {} us, p90 {} us, p99 {} us, "
        "p99.9 {} us, max {} us; CPU client {:.2f} s, redis {:.2f} s\n  check {}: {}\n",
        rep, r.orders_per_s, r.measured, r.window_s, r.p50_us, r.p90_us, r.p99_us, r.p999_us,
        r.max_us, r.client_cpu_s, r.redis_cpu_s, r.check_ok ? "OK" : "FAILED", r.check);
  }
  const Summary s = Summarize(reps);
  std::cout << fmt::format(
      "median of {}: {:.0f} orders/s, p50 {:.0f} us, p99 {:.0f} us; CPU per order: client "
      "{:.1f} us, redis {:.1f} us; checks {}\n",
      reps.size(), s.orders_per_s, s.p50_us, s.p99_us, s.client_cpu_per_order_us,
      s.redis_cpu_per_order_us, s.checks_ok ? "OK" : "FAILED");
  // One line for scripts to parse.
  std::cout << fmt::format(
      "RESULT orders_per_s={:.0f} p50_us={:.0f} p99_us={:.0f} client_cpu_per_order_us={:.2f} "
      "redis_cpu_per_order_us={:.2f} checks={}\n",
      s.orders_per_s, s.p50_us, s.p99_us, s.client_cpu_per_order_us, s.redis_cpu_per_order_us,
      s.checks_ok ? "ok" : "failed");
  if (!options.json_path.empty()) {
    bench::WriteJson(options.json_path, ToJson(options, s, reps));
  }
  return s.checks_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::invalid_argument& error) {
    std::cerr << "invsync-bench-core: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "invsync-bench-core: " << error.what() << '\n';
    return 1;
  }
}
