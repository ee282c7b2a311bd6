// invsync-bench-drain: builds a backlog of deduct events in the Redis stream with no persister
// running, then times one persister::Persister draining it, and checks the database agrees with
// Redis afterwards. As the peer for that figure it also times PostgreSQL itself accepting the same
// rows in batched INSERT transactions into an equivalent ledger table.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "common/error.hpp"
#include "common/numbers.hpp"
#include "core/keys.hpp"
#include "core/stock_service.hpp"
#include "db/detail/pg.hpp"
#include "db/forwarding_store.hpp"
#include "db/postgres_store.hpp"
#include "persister/persister.hpp"
#include "redis/client.hpp"
#include "redis/script.hpp"

namespace {

using namespace invsync;
using Clock = std::chrono::steady_clock;
using bench::Check;
using core::Keys;

constexpr std::int64_t kSeed = 1'000'000'000;

struct Options {
  std::int64_t events = 1'000'000;
  int skus = 1000;
  int persisters = 4;
  int batch_size = 1000;
  int chunk = 1000;
  int raw_batch = 1000;
  double timeout_s = 1800;
  std::string json_path;
};

std::string SkuName(std::int64_t i) { return fmt::format("SKU-{:05}", i); }
std::string OrderId(std::int64_t n) { return fmt::format("drain-{}", n); }

struct Backlog {
  double seconds = 0;
  std::vector<std::int64_t> sold;  ///< units deducted per SKU
};

// Appends `events` single-line deduct orders (1 unit, round-robin over the SKUs) by pipelining
// EVALSHA of the real deduct script in chunks over one connection.
Backlog BuildBacklog(const bench::Servers& servers, core::Scripts& scripts,
                     const Options& options) {
  redis::Connection conn(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(60));
  const std::string retention = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 7)).count());
  Backlog backlog;
  backlog.sold.assign(static_cast<std::size_t>(options.skus), 0);
  const auto start = Clock::now();
  std::vector<redis::ScriptCall> calls;
  for (std::int64_t first = 0; first < options.events; first += options.chunk) {
    const std::int64_t last = std::min<std::int64_t>(options.events, first + options.chunk);
    calls.clear();
    for (std::int64_t n = first; n < last; ++n) {
      const std::string id = OrderId(n);
      const std::string sku = SkuName(n % options.skus);
      calls.push_back({{Keys::Order(id), std::string(Keys::kEvents), std::string(Keys::kInflight),
                        Keys().Inventory(sku)},
                       {id, fmt::format("{} 1\n", sku), retention, sku, "1"}});
      ++backlog.sold[static_cast<std::size_t>(n % options.skus)];
    }
    auto replies = scripts.deduct.RunMany(conn, calls);
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const auto& reply = replies[i];
      if (!reply.IsArray() || reply.elements.empty() || reply.At(0).str != "ok") {
        throw PermanentError(fmt::format("deduct of {} answered {}",
                                         OrderId(first + static_cast<std::int64_t>(i)),
                                         reply.Describe()));
      }
    }
  }
  backlog.seconds = bench::SecondsSince(start);
  return backlog;
}

// Wraps the real store to time ApplyEvents: the database's share of the drain.
class TimedStore final : public db::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  db::ApplyOutcome ApplyEvents(std::span<const db::StockEvent> events) override {
    const auto start = Clock::now();
    auto outcome = inner().ApplyEvents(events);
    std::lock_guard lock(mutex_);
    apply_s_ += bench::SecondsSince(start);
    return outcome;
  }

  /// Summed over persisters: with several, this can exceed the wall time.
  [[nodiscard]] double ApplySeconds() const {
    std::lock_guard lock(mutex_);
    return apply_s_;
  }

 private:
  mutable std::mutex mutex_;
  double apply_s_ = 0;
};

struct CommandStat {
  std::int64_t calls = 0;
  std::int64_t usec = 0;
};

// Redis's own account of its time since CONFIG RESETSTAT (INFO commandstats); the commands a
// script calls are counted both on their own and inside the script's EVALSHA.
std::map<std::string, CommandStat> CommandStats(redis::Connection& conn) {
  std::map<std::string, CommandStat> stats;
  const std::string info = conn.Command({"INFO", "commandstats"}).AsString();
  std::string_view rest = info;
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    constexpr std::string_view kPrefix = "cmdstat_";  // cmdstat_xack:calls=10,usec=12,...
    const auto colon = line.find(':');
    if (!line.starts_with(kPrefix) || colon == std::string_view::npos) {
      continue;
    }
    auto field = [&](std::string_view name) -> std::int64_t {
      auto at = line.find(name, colon);
      if (at == std::string_view::npos) {
        return 0;
      }
      at += name.size();
      return ParseInt64(line.substr(at, line.find(',', at) - at)).value_or(0);
    };
    stats[std::string(line.substr(kPrefix.size(), colon - kPrefix.size()))] = {field("calls="),
                                                                               field("usec=")};
  }
  return stats;
}

struct Drain {
  double seconds = 0;
  std::int64_t events = 0;
  std::int64_t batches = 0;
  std::int64_t duplicate_rows = 0;
  std::int64_t dead_letters = 0;
  double apply_s = 0;     ///< inside Store::ApplyEvents (the database)
  double read_lag_s = 0;  ///< the loop's own ReadLag calls
  double client_cpu_s = 0;
  double redis_cpu_s = 0;
  std::int64_t aof_rewrites = 0;  ///< Redis append-only file rewrites during the drain
  std::map<std::string, CommandStat> redis_commands;
};

// The persisters (each its own consumer, taking turns to gather, as `persister.threads` runs
// them), RunOnce in a loop until the stream has nothing unpersisted.
Drain RunDrain(redis::Pool& pool, db::Store& store, core::Scripts& scripts,
               const Options& options) {
  TimedStore timed(store);
  std::vector<std::unique_ptr<persister::Persister>> persisters;
  const auto turn = std::make_shared<persister::GatherTurn>();
  for (int i = 0; i < options.persisters; ++i) {
    persister::PersisterOptions persister_options;
    persister_options.turn = turn;
    persister_options.consumer = fmt::format("bench-drain-{}", i);
    persister_options.batch_size = options.batch_size;
    persisters.push_back(std::make_unique<persister::Persister>(pool, timed, persister_options));
  }
  auto conn = pool.Acquire();
  // Building the backlog grew the append-only file; the rewrite that growth calls for is done
  // before the clock starts (those the drain's own writes call for are counted).
  bench::CompactAof(*conn);
  conn->Command({"CONFIG", "RESETSTAT"});
  const std::int64_t rewrites_before = bench::AofRewrites(*conn);
  Drain drain;
  const double redis_cpu_before = bench::RedisCpuSeconds(*conn);
  const double client_cpu_before = bench::ProcessCpuSeconds();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(options.timeout_s);
  {
    std::vector<std::jthread> threads;
    for (auto& persister : persisters) {
      threads.emplace_back([&persister](const std::stop_token& stop) {
        while (!stop.stop_requested()) {
          persister->RunOnce(std::chrono::milliseconds(20));
        }
      });
    }
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const auto lag_start = Clock::now();
      const bool done = persister::ReadLag(*conn, scripts).unpersisted() == 0;
      drain.read_lag_s += bench::SecondsSince(lag_start);
      if (done) {
        break;
      }
      if (Clock::now() > deadline) {
        throw TransientError(
            fmt::format("persisters did not drain within {} s", options.timeout_s));
      }
    }
    drain.seconds = bench::SecondsSince(start);
  }
  drain.client_cpu_s = bench::ProcessCpuSeconds() - client_cpu_before;
  drain.redis_cpu_s = bench::RedisCpuSeconds(*conn) - redis_cpu_before;
  drain.aof_rewrites = bench::AofRewrites(*conn) - rewrites_before;
  drain.redis_commands = CommandStats(*conn);
  drain.apply_s = timed.ApplySeconds();
  for (const auto& persister : persisters) {
    drain.events += persister->counters().events.load();
    drain.batches += persister->counters().batches.load();
    drain.duplicate_rows += persister->counters().duplicate_rows.load();
    drain.dead_letters += persister->counters().dead_letters.load();
  }
  return drain;
}

void PrintDrain(const Drain& drain) {
  std::cout << fmt::format(
      "drain: {} events in {:.2f} s = {:.0f} events/s ({} batches); CPU: bench process {:.2f} s, "
      "redis {:.2f} s; Redis append-only file rewrites during the drain: {}\n"
      "  time: Store::ApplyEvents {:.2f} s ({:.0f}%, summed over persisters), the loop's ReadLag "
      "{:.2f} s ({:.0f}%), rest "
      "of RunOnce (XREADGROUP, decode, ack script, trim) {:.2f} s ({:.0f}%)\n",
      drain.events, drain.seconds, static_cast<double>(drain.events) / drain.seconds, drain.batches,
      drain.client_cpu_s, drain.redis_cpu_s, drain.aof_rewrites, drain.apply_s,
      drain.apply_s / drain.seconds * 100, drain.read_lag_s, drain.read_lag_s / drain.seconds * 100,
      drain.seconds - drain.apply_s - drain.read_lag_s,
      (drain.seconds - drain.apply_s - drain.read_lag_s) / drain.seconds * 100);
  std::vector<std::pair<std::int64_t, std::string>> by_time;
  for (const auto& [name, stat] : drain.redis_commands) {
    by_time.emplace_back(stat.usec, name);
  }
  std::sort(by_time.rbegin(), by_time.rend());
  std::cout << "  Redis time by command:";
  for (std::size_t i = 0; i < by_time.size() && i < 10; ++i) {
    const auto& stat = drain.redis_commands.at(by_time[i].second);
    std::cout << fmt::format("{} {} {:.3f} s / {} calls", i == 0 ? "" : ",", by_time[i].second,
                             static_cast<double>(stat.usec) / 1e6, stat.calls);
  }
  std::cout << '\n';
}

// Ledger count = events + seeds; per SKU: database = Redis = seed - sold; nothing in flight.
Check Verify(const bench::Servers& servers, const Options& options, const Backlog& backlog,
             const Drain& drain) {
  Check check;
  db::detail::PgConnection pg(servers.database_url);
  const std::int64_t ledger = pg.Exec("SELECT count(*) FROM invsync_ledger").Int64(0, 0);
  check.Expect(
      ledger == options.events + options.skus,
      fmt::format("ledger rows {} == events {} + seeds {}", ledger, options.events, options.skus));
  check.Expect(drain.events == options.events + options.skus,
               fmt::format("persister acknowledged {} == events + seeds", drain.events));
  check.Expect(
      drain.dead_letters == 0 && drain.duplicate_rows == 0,
      fmt::format("dead letters {}, duplicate rows {}", drain.dead_letters, drain.duplicate_rows));
  std::map<std::string, std::int64_t> database;
  auto rows = pg.Exec("SELECT sku, quantity FROM inventory");
  for (int row = 0; row < rows.rows(); ++row) {
    database.emplace(std::string(rows.Text(row, 0)), rows.Int64(row, 1));
  }
  redis::Connection redis(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(30));
  std::vector<std::string> keys;
  std::vector<redis::Args> commands;
  keys.reserve(static_cast<std::size_t>(options.skus));
  commands.reserve(keys.capacity());
  for (int i = 0; i < options.skus; ++i) {
    keys.push_back(Keys().Inventory(SkuName(i)));
  }
  for (const auto& key : keys) {
    commands.push_back({"HGET", key, "quantity"});
  }
  auto replies = redis.Pipeline(commands);
  int mismatched = 0;
  std::string first_mismatch;
  for (int i = 0; i < options.skus; ++i) {
    const std::string sku = SkuName(i);
    const auto cached = replies[static_cast<std::size_t>(i)].AsOptionalString();
    const std::optional<std::int64_t> in_redis = cached ? ParseInt64(*cached) : std::nullopt;
    const auto it = database.find(sku);
    const std::optional<std::int64_t> in_database =
        it == database.end() ? std::nullopt : std::optional(it->second);
    const std::int64_t expected = kSeed - backlog.sold[static_cast<std::size_t>(i)];
    if (in_redis != expected || in_database != expected) {
      if (mismatched++ == 0) {
        first_mismatch = fmt::format(" (first: {} redis {} database {} expected {})", sku,
                                     in_redis.value_or(-1), in_database.value_or(-1), expected);
      }
    }
  }
  check.Expect(mismatched == 0 && database.size() == static_cast<std::size_t>(options.skus),
               fmt::format("{} SKUs: database quantity == Redis quantity == seed - sold; {} "
                           "differ{}; {} database rows",
                           options.skus, mismatched, first_mismatch, database.size()));
  const std::int64_t inflight = redis.Command({"HLEN", Keys::kInflight}).AsInteger();
  check.Expect(inflight == 0, fmt::format("in-flight hash empty ({} SKUs left)", inflight));
  return check;
}

struct RawInsert {
  std::int64_t rows = 0;
  double seconds = 0;
  std::int64_t transactions = 0;
};

// The peer: PostgreSQL accepting the same ledger rows as batched INSERT ... SELECT FROM unnest(...)
// transactions into a scratch copy of the ledger table (same columns, primary key and index).
RawInsert RunRawInsert(const bench::Servers& servers, const Options& options) {
  db::detail::PgConnection pg(servers.database_url);
  pg.ExecScript(
      "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_raw_ledger; "
      "CREATE TABLE bench_raw_ledger (LIKE invsync_ledger INCLUDING ALL);");
  bench::Checkpoint(servers.database_url);
  constexpr std::string_view kInsert = R"sql(
INSERT INTO bench_raw_ledger (event_id, sku, delta, kind, ref, stream_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
)sql";
  RawInsert raw;
  const auto start = Clock::now();
  std::vector<std::string> event_ids;
  std::vector<std::string> skus;
  std::vector<std::string> deltas;
  std::vector<std::string> kinds;
  std::vector<std::string> refs;
  std::vector<std::string> stream_ids;
  for (std::int64_t first = 0; first < options.events; first += options.raw_batch) {
    const std::int64_t last = std::min<std::int64_t>(options.events, first + options.raw_batch);
    for (auto* column : {&event_ids, &skus, &deltas, &kinds, &refs, &stream_ids}) {
      column->clear();
    }
    for (std::int64_t n = first; n < last; ++n) {
      const std::string ref = OrderId(n);
      event_ids.push_back("deduct:" + ref);
      skus.push_back(SkuName(n % options.skus));
      deltas.emplace_back("-1");
      kinds.emplace_back("deduct");
      refs.push_back(ref);
      stream_ids.push_back(fmt::format("1700000000000-{}", n));
    }
    pg.ExecScript("BEGIN");
    pg.Exec(kInsert, {db::detail::ArrayLiteral(event_ids), db::detail::ArrayLiteral(skus),
                      db::detail::ArrayLiteral(deltas), db::detail::ArrayLiteral(kinds),
                      db::detail::ArrayLiteral(refs), db::detail::ArrayLiteral(stream_ids)});
    pg.ExecScript("COMMIT");
    raw.rows += last - first;
    ++raw.transactions;
  }
  raw.seconds = bench::SecondsSince(start);
  const std::int64_t stored = pg.Exec("SELECT count(*) FROM bench_raw_ledger").Int64(0, 0);
  if (stored != raw.rows) {
    throw PermanentError(fmt::format("raw insert stored {} rows, not {}", stored, raw.rows));
  }
  pg.ExecScript("DROP TABLE bench_raw_ledger");
  return raw;
}

std::optional<Options> ParseOptions(int argc, char** argv, bench::Servers& servers) {
  bench::Flags flags("invsync-bench-drain",
                     "Times one persister draining a backlog of deduct events from the Redis "
                     "stream into PostgreSQL, beside PostgreSQL's own batched insert rate.");
  flags.Add("events", "1000000", "deduct events in the backlog");
  flags.Add("skus", "1000", "SKUs the events are spread over (round-robin)");
  flags.Add("batch-size", "4000", "persister batch size (persister.batch_size)");
  flags.Add("persisters", "4", "persisters draining side by side (persister.threads)");
  flags.Add("chunk", "1000", "EVALSHA calls per pipelined round trip when building the backlog");
  flags.Add("raw-batch", "1000", "rows per transaction in the raw insert peer");
  flags.Add("timeout", "1800", "give up if the drain takes longer (seconds)");
  flags.Add("json", "", "also write the figures to this JSON file");
  bench::AddServerFlags(flags);
  if (!flags.Parse(argc, argv)) {
    return std::nullopt;
  }
  Options options;
  options.events = flags.Int("events", 1, 100'000'000);
  options.skus = static_cast<int>(flags.Int("skus", 1, 100'000));
  options.batch_size = static_cast<int>(flags.Int("batch-size", 1, 100'000));
  options.persisters = static_cast<int>(flags.Int("persisters", 1, 64));
  options.chunk = static_cast<int>(flags.Int("chunk", 1, 100'000));
  options.raw_batch = static_cast<int>(flags.Int("raw-batch", 1, 100'000));
  options.timeout_s = flags.Seconds("timeout");
  options.json_path = flags.String("json");
  servers = bench::ResolveServers(flags);
  return options;
}

// Every SKU set to kSeed through the service (one `set` event each).
void Seed(core::StockService& stock, const Options& options) {
  const auto start = Clock::now();
  for (int i = 0; i < options.skus; ++i) {
    auto seeded = stock.Set(SkuName(i), kSeed, fmt::format("seed-{}", SkuName(i)));
    if (seeded.status != core::StockStatus::kOk) {
      throw PermanentError(
          fmt::format("seeding {} failed: {}", SkuName(i), core::StatusName(seeded.status)));
    }
  }
  std::cout << fmt::format("seeded {} SKUs in {:.2f} s\n", options.skus,
                           bench::SecondsSince(start));
}

nlohmann::json ToJson(const Options& options, const Backlog& backlog, const Drain& drain,
                      const RawInsert& raw, const Check& check) {
  const double drain_rate = static_cast<double>(drain.events) / drain.seconds;
  const double raw_rate = static_cast<double>(raw.rows) / raw.seconds;
  nlohmann::json redis_commands = nlohmann::json::object();
  for (const auto& [name, stat] : drain.redis_commands) {
    redis_commands[name] = {{"calls", stat.calls}, {"usec", stat.usec}};
  }
  nlohmann::json document;
  document["benchmark"] = "persister_drain";
  document["events"] = options.events;
  document["skus"] = options.skus;
  document["batch_size"] = options.batch_size;
  document["persisters"] = options.persisters;
  document["backlog"] = {{"seconds", backlog.seconds},
                         {"evalsha_per_s", static_cast<double>(options.events) / backlog.seconds},
                         {"pipeline_chunk", options.chunk}};
  document["drain"] = {{"events", drain.events},
                       {"seconds", drain.seconds},
                       {"events_per_s", drain_rate},
                       {"batches", drain.batches},
                       {"apply_events_s", drain.apply_s},
                       {"read_lag_s", drain.read_lag_s},
                       {"client_cpu_s", drain.client_cpu_s},
                       {"redis_cpu_s", drain.redis_cpu_s},
                       {"redis_commands", redis_commands}};
  document["raw_insert"] = {{"rows", raw.rows},
                            {"transactions", raw.transactions},
                            {"rows_per_transaction", options.raw_batch},
                            {"seconds", raw.seconds},
                            {"rows_per_s", raw_rate}};
  document["drain_to_raw_ratio"] = drain_rate / raw_rate;
  document["checks_ok"] = check.ok;
  document["checks"] = check.lines;
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
      "invsync-bench-drain: {} events over {} SKUs, persister batch {}, raw insert batch {}\n",
      options.events, options.skus, options.batch_size, options.raw_batch);
  bench::ResetState(servers);
  redis::Pool pool(redis::Endpoint::Parse(servers.redis_url), 16, std::chrono::seconds(60));
  db::PostgresStore store(servers.database_url, 2);
  core::StockService stock(pool, store, Keys(), core::StockOptions{});
  Seed(stock, options);

  const Backlog backlog = BuildBacklog(servers, stock.scripts(), options);
  const double backlog_rate = static_cast<double>(options.events) / backlog.seconds;
  std::cout << fmt::format("backlog: {} events in {:.2f} s ({:.0f} pipelined EVALSHA/s)\n",
                           options.events, backlog.seconds, backlog_rate);

  bench::Checkpoint(servers.database_url);
  const Drain drain = RunDrain(pool, store, stock.scripts(), options);
  PrintDrain(drain);
  const Check check = Verify(servers, options, backlog, drain);
  for (const auto& line : check.lines) {
    std::cout << "  check " << line << '\n';
  }

  // Nor does a rewrite the drain's writes called for run on into the peer's time.
  bench::CompactAof(*pool.Acquire());
  const RawInsert raw = RunRawInsert(servers, options);
  const double drain_rate = static_cast<double>(drain.events) / drain.seconds;
  const double raw_rate = static_cast<double>(raw.rows) / raw.seconds;
  std::cout << fmt::format(
      "raw batched insert: {} rows in {} transactions in {:.2f} s = {:.0f} rows/s\n"
      "persister drains at {:.0f} events/s = {:.0f}% of the raw batched insert rate; checks {}\n",
      raw.rows, raw.transactions, raw.seconds, raw_rate, drain_rate, drain_rate / raw_rate * 100,
      check.ok ? "OK" : "FAILED");
  // One line for scripts to parse.
  std::cout << fmt::format(
      "RESULT drain_events_per_s={:.0f} raw_rows_per_s={:.0f} ratio={:.4f} "
      "backlog_evalsha_per_s={:.0f} drain_s={:.2f} raw_s={:.2f} apply_s={:.2f} checks={}\n",
      drain_rate, raw_rate, drain_rate / raw_rate, backlog_rate, drain.seconds, raw.seconds,
      drain.apply_s, check.ok ? "ok" : "failed");
  if (!options.json_path.empty()) {
    bench::WriteJson(options.json_path, ToJson(options, backlog, drain, raw, check));
  }
  return check.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::invalid_argument& error) {
    std::cerr << "invsync-bench-drain: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "invsync-bench-drain: " << error.what() << '\n';
    return 1;
  }
}
