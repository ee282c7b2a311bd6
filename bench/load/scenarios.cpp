#include "scenarios.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <thread>

#include "common/numbers.hpp"
#include "db/detail/pg.hpp"
#include "driver.hpp"
#include "peers.hpp"
#include "persister/persister.hpp"
#include "stores.hpp"

namespace invsync::bench {

namespace {

using Stock = std::map<std::string, std::int64_t>;

constexpr std::int64_t kUnlimited = 1'000'000'000'000;  // more than any run sells

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

RunResult Drive(const ScenarioOptions& options, Workload& workload, Schedule& schedule,
                bool stop_when_sold_out) {
  const DriveOptions drive{.connections = options.connections,
                           .stop_when_sold_out = stop_when_sold_out,
                           .seed = options.seed};
  switch (options.target) {
    case Target::kInvsync:
      return DriveHttp(options.host, options.port, workload, schedule, drive);
    case Target::kDbOnly:
      return DriveBlocking(DbOnlyClients(options.servers), workload, schedule, drive);
    case Target::kNaiveCache:
      return DriveBlocking(NaiveCacheClients(options.servers), workload, schedule, drive);
  }
  throw std::logic_error("unknown target");
}

// A closed-loop run of `seconds` (or until sold out), started now.
RunResult DriveFor(const ScenarioOptions& options, Workload& workload, double seconds,
                   bool stop_when_sold_out = false) {
  Schedule schedule(Clock::now(), 0, Seconds(seconds));
  return Drive(options, workload, schedule, stop_when_sold_out);
}

struct ScenarioRun {
  RunResult measured;
  std::vector<Record> unmeasured;  ///< warm-up orders: audited too
  AuditInput audit;
  nlohmann::json extra = nlohmann::json::object();
};

ScenarioRun FlashSale(const ScenarioOptions& options) {
  ScenarioRun out;
  out.audit.initial = {{"WARMUP", kUnlimited}};
  Seed(options.target, options.servers, out.audit.initial);
  Workload warm({.skus = {"WARMUP"}, .tag = "warm"});
  RunResult warmup = DriveFor(options, warm, options.warmup);
  // Stock for about `seconds` of selling at the warm-up's pace (2 units per order on average).
  const double rate = static_cast<double>(warmup.orders.count()) / std::max(warmup.seconds, 1e-3);
  const auto stock = std::max<std::int64_t>(100, std::llround(rate * options.seconds * 2));
  Seed(options.target, options.servers, {{"FLASH", stock}});
  out.audit.initial["FLASH"] = stock;
  out.audit.expect_sold_out = {"FLASH"};
  Workload sale({.skus = {"FLASH"}, .tag = "flash"});
  out.measured = DriveFor(options, sale, options.seconds * 4 + 10, /*stop_when_sold_out=*/true);
  out.unmeasured = std::move(warmup.records);
  out.extra = {{"stock", stock}, {"warmup_orders_per_s", rate}};
  return out;
}

ScenarioRun Catalogue(const ScenarioOptions& options) {
  ScenarioRun out;
  const auto skus = CatalogueSkus(static_cast<std::size_t>(options.skus));
  for (const auto& sku : skus) {
    out.audit.initial[sku] = options.catalogue_stock;
  }
  const bool cached = options.target != Target::kDbOnly;
  const std::int64_t before = cached ? RedisUsedMemory(options.servers) : 0;
  const auto seeding = Clock::now();
  Seed(options.target, options.servers, out.audit.initial);
  out.extra["seed_s"] = SecondsSince(seeding);
  if (cached) {
    const std::int64_t after = RedisUsedMemory(options.servers);
    out.extra["redis_bytes_per_sku"] =
        static_cast<double>(after - before) / static_cast<double>(options.skus);
  }
  WorkloadOptions mix{.skus = skus,
                      .zipf_s = 1.1,
                      .min_lines = 1,
                      .max_lines = 5,
                      .min_units = 1,
                      .max_units = 2,
                      .read_share = 0.90,
                      .cancel_share = 0.01,
                      .tag = "warm"};
  Workload warm(mix);
  out.unmeasured = std::move(DriveFor(options, warm, options.warmup).records);
  mix.tag = "cat";
  Workload workload(mix);
  out.measured = DriveFor(options, workload, options.seconds);
  out.extra["skus"] = options.skus;
  return out;
}

// The back office: at a fixed rate, alternately a change to a probe SKU that no order touches
// (timed until Redis shows the value the UPDATE returned) and one to a SKU orders are buying.
class BackOffice {
 public:
  BackOffice(const ScenarioOptions& options, std::vector<std::string> probes,
             const std::vector<std::string>& ordered)
      : options_(options), probes_(std::move(probes)), ordered_(ordered) {}

  void Run(Clock::time_point start, Clock::time_point end) {
    db::detail::PgConnection pg(options_.servers.database_url);
    std::optional<redis::Connection> redis;
    if (options_.target == Target::kInvsync) {
      redis.emplace(redis::Endpoint::Parse(options_.servers.redis_url), std::chrono::seconds(10));
    }
    std::mt19937_64 rng(options_.seed);
    ZipfSampler popular(ordered_.size(), 1.1);
    for (std::int64_t i = 0;; ++i) {
      const auto due = start + Seconds(static_cast<double>(i) / options_.backoffice_rate);
      if (due >= end) {
        return;
      }
      std::this_thread::sleep_until(due);
      const bool probe = i % 2 == 0;
      const std::string& sku = probe ? probes_[static_cast<std::size_t>(i / 2) % probes_.size()]
                                     : ordered_[popular.Sample(rng)];
      const std::int64_t k = std::uniform_int_distribution<std::int64_t>(1, 10)(rng);
      auto result =
          pg.Exec("UPDATE inventory SET quantity = quantity + $2 WHERE sku = $1 RETURNING quantity",
                  {sku, std::to_string(k)});
      const auto committed = Clock::now();
      adjustments[sku] += k;
      ++changes;
      if (probe && redis) {
        Await(*redis, sku, result.Int64(0, 0), committed);
      }
    }
  }

  Stock adjustments;
  std::int64_t changes = 0;
  LatencyHistogram propagation;
  std::int64_t not_seen = 0;  ///< probe changes Redis did not show within the limit

 private:
  void Await(redis::Connection& redis, const std::string& sku, std::int64_t expected,
             Clock::time_point committed) {
    const std::string key = "inventory:" + sku;
    while (Clock::now() - committed < std::chrono::seconds(5)) {
      auto text = redis.Command({"HGET", key, "quantity"}).AsOptionalString();
      if (text && ParseInt64(*text) == expected) {
        propagation.Record(Clock::now() - committed);
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ++not_seen;
  }

  const ScenarioOptions& options_;
  std::vector<std::string> probes_;
  const std::vector<std::string>& ordered_;
};

ScenarioRun Backoffice(const ScenarioOptions& options) {
  ScenarioRun out;
  const auto skus = CatalogueSkus(1000);
  std::vector<std::string> probes;
  probes.reserve(20);
  for (int i = 0; i < 20; ++i) {
    probes.push_back(fmt::format("PROBE-{}", i));
  }
  for (const auto& sku : skus) {
    out.audit.initial[sku] = 1'000'000;
  }
  for (const auto& sku : probes) {
    out.audit.initial[sku] = 1'000'000;
  }
  Seed(options.target, options.servers, out.audit.initial);
  WorkloadOptions mix{
      .skus = skus, .max_lines = 3, .max_units = 2, .cancel_share = 0.02, .tag = "warm"};
  Workload warm(mix);
  out.unmeasured = std::move(DriveFor(options, warm, options.warmup).records);
  mix.tag = "bo";
  Workload workload(mix);
  BackOffice office(options, probes, skus);
  const auto start = Clock::now();
  Schedule schedule(start, options.order_rate, Seconds(options.seconds));
  std::jthread writer([&] { office.Run(start, start + Seconds(options.seconds)); });
  out.measured = Drive(options, workload, schedule, false);
  writer.join();
  out.audit.adjustments = office.adjustments;
  const auto& p = office.propagation;
  out.extra = {{"order_rate", options.order_rate},
               {"backoffice_rate", options.backoffice_rate},
               {"backoffice_changes", office.changes},
               {"propagation",
                {{"measured", options.target == Target::kInvsync},
                 {"count", p.count()},
                 {"not_seen_within_5s", office.not_seen},
                 {"p50_ms", p.QuantileMillis(0.5)},
                 {"p99_ms", p.QuantileMillis(0.99)},
                 {"max_ms", static_cast<double>(p.max().count()) / 1e6}}}};
  return out;
}

}  // namespace

// Samples the age of the oldest event not yet in the database every 250 ms while it lives: how
// far the persister fell behind the orders.
class LagSampler {
 public:
  explicit LagSampler(const Servers& servers)
      : thread_([this, &servers](const std::stop_token& stop) { Sample(servers, stop); }) {}

  /// The largest age seen, in ms; stops sampling.
  double StopAndMaxMillis() {
    thread_.request_stop();
    thread_.join();
    return static_cast<double>(max_.count());
  }

 private:
  void Sample(const Servers& servers, const std::stop_token& stop) {
    redis::Connection redis(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(10));
    core::Scripts scripts;
    while (!stop.stop_requested()) {
      if (auto age = persister::ReadLag(redis, scripts).oldest_age) {
        max_ = std::max(max_, *age);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  std::chrono::milliseconds max_{0};
  std::jthread thread_;
};

nlohmann::json RunScenario(const ScenarioOptions& options) {
  if (IsSqliteUrl(options.servers.database_url) &&
      (options.target != Target::kInvsync || options.scenario == "backoffice")) {
    throw std::invalid_argument(
        "on a SQLite database only invsync's flash-sale and catalogue run (the peers and the "
        "back office's SQL are PostgreSQL's)");
  }
  std::optional<LagSampler> lag;
  if (options.target == Target::kInvsync) {
    lag.emplace(options.servers);
  }
  ScenarioRun out;
  if (options.scenario == "flash-sale") {
    out = FlashSale(options);
  } else if (options.scenario == "catalogue") {
    out = Catalogue(options);
  } else if (options.scenario == "backoffice") {
    out = Backoffice(options);
  } else {
    throw std::invalid_argument(fmt::format(
        "--scenario must be flash-sale, catalogue or backoffice (got \"{}\")", options.scenario));
  }
  nlohmann::json doc = out.measured.ToJson();
  doc.update(out.extra);
  doc["scenario"] = options.scenario;
  doc["target"] = TargetName(options.target);
  doc["connections"] = options.connections;
  if (options.target == Target::kInvsync) {
    doc["persist_lag_max_ms"] = lag->StopAndMaxMillis();
    doc["drain_s"] = WaitDrained(options.servers, std::chrono::seconds(180));
  }
  doc["store"] = IsSqliteUrl(options.servers.database_url) ? "sqlite" : "postgresql";
  std::vector<Record> records = std::move(out.unmeasured);
  records.insert(records.end(), std::make_move_iterator(out.measured.records.begin()),
                 std::make_move_iterator(out.measured.records.end()));
  out.audit.records = records;
  out.audit.has_cache = options.target != Target::kDbOnly;
  const auto observed = ReadObserved(options.servers, TouchedSkus(out.audit), out.audit.has_cache);
  doc["audit"] = Judge(out.audit, observed).ToJson();
  if (options.serve_pid > 0) {
    if (auto rss = PeakRssKib(options.serve_pid)) {
      doc["serve_peak_rss_kib"] = *rss;
    }
  }
  return doc;
}

}  // namespace invsync::bench
