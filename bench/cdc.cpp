// invsync-bench-cdc: change capture and rebuild, each figure beside a peer measured in the same
// run.
//   warm:        core::Warmer (what `invsync warm --all` runs) loading every SKU into an empty
//                Redis; peers: the same rows read from PostgreSQL with the same paged query alone,
//                and a raw pipelined HSET of the same hashes, taking turns with the warm
//                (--warm-repetitions times; medians reported).
//   drain:       the syncer (syncer::Syncer::Run, default options) applying a backlog of one
//                outbox row per SKU (one UPDATE over every row, the syncer stopped), while cache
//                misses are filled at a steady rate (each fill announces a database read, as a
//                service's misses do); peers: the same rows read with the syncer's paged query
//                alone, and a raw pipelined HINCRBY (by 0) of the same keys.
//   propagation: back-office `UPDATE ... quantity + 1` on random cached SKUs at a fixed rate (open
//                loop) from a few connections, the syncer running; latency from the intended send
//                time to the commit (the peer) and to the syncer having applied the change.
// Each prints human-readable lines and one line "RESULT {json}"; after each, Redis is compared
// with the database for every SKU, and the exit status is 1 if any check failed.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_support.hpp"
#include "common/error.hpp"
#include "core/cache_fill.hpp"
#include "core/keys.hpp"
#include "core/stock_service.hpp"
#include "core/warm.hpp"
#include "db/detail/pg.hpp"
#include "db/postgres_store.hpp"
#include "redis/client.hpp"
#include "syncer/syncer.hpp"

namespace {

using namespace invsync;
using Clock = std::chrono::steady_clock;
using bench::Check;
using core::Keys;
using nlohmann::json;

struct Options {
  std::int64_t skus = 1'000'000;
  int rate = 1000;
  double seconds = 10;
  int connections = 4;
  int drain_fills = 10;
  int warm_repetitions = 3;
  std::size_t page_size = 2000;
  std::set<std::string> only;
  std::string json_path;
};

// SKU names and seed quantities, as the seeding statement makes them.
std::string SkuName(std::int64_t i) { return fmt::format("SKU-{:07}", i); }

// Seeds the SKUs as persisted rows (marked as coming from Redis, so no outbox rows).
void Seed(const bench::Servers& servers, std::int64_t skus) {
  const auto start = Clock::now();
  db::detail::PgConnection pg(servers.database_url);
  pg.ExecScript(fmt::format(
      "BEGIN; SET LOCAL invsync.origin = 'redis'; "
      "INSERT INTO inventory (sku, quantity) SELECT 'SKU-' || lpad(g::text, 7, '0'), 1000 + g % "
      "1000 FROM generate_series(0, {}) g; COMMIT;",
      skus - 1));
  pg.ExecScript("VACUUM ANALYZE inventory");
  bench::Checkpoint(servers.database_url);
  std::cout << fmt::format("seeded {} SKUs in {:.2f} s\n", skus, bench::SecondsSince(start));
}

// Redis against the database for every SKU (and no extra inventory keys); adds the check.
void CompareAll(db::Store& store, redis::Connection& redis, Check& check, const std::string& when) {
  std::int64_t rows = 0;
  std::int64_t differ = 0;
  std::string first;
  std::string after;
  while (true) {
    auto page = store.LoadStockPage(after, 10'000);
    std::vector<std::string> keys;
    keys.reserve(page.size());
    for (const auto& row : page) {
      keys.push_back(Keys().Inventory(row.sku));
    }
    std::vector<redis::Args> commands;
    commands.reserve(keys.size());
    for (const auto& key : keys) {
      commands.push_back({"HGET", key, "quantity"});
    }
    auto values = redis.Pipeline(commands);
    for (std::size_t i = 0; i < page.size(); ++i) {
      if (values[i].AsOptionalInteger() != page[i].snapshot.quantity && differ++ == 0) {
        first = fmt::format(" (first: {} Redis {} database {})", page[i].sku,
                            values[i].AsOptionalString().value_or("none"),
                            page[i].snapshot.quantity.value_or(-1));
      }
    }
    rows += static_cast<std::int64_t>(page.size());
    if (page.size() < 10'000) {
      break;
    }
    after = page.back().sku;
  }
  const std::int64_t keys = redis.Command({"DBSIZE"}).AsInteger();
  check.Expect(differ == 0, fmt::format("{}: Redis = database for all {} SKUs; {} differ{}", when,
                                        rows, differ, first));
  std::cout << "  check " << check.lines.back() << fmt::format(" ({} Redis keys)\n", keys);
}

// Sends `commands` in pipelined chunks of `chunk` over one connection; returns seconds taken.
double Pipelined(redis::Connection& redis, const std::vector<redis::Args>& commands,
                 std::size_t chunk) {
  const auto start = Clock::now();
  for (std::size_t first = 0; first < commands.size(); first += chunk) {
    const auto last = std::min(commands.size(), first + chunk);
    const std::vector<redis::Args> part(commands.begin() + static_cast<std::ptrdiff_t>(first),
                                        commands.begin() + static_cast<std::ptrdiff_t>(last));
    for (const auto& reply : redis.Pipeline(part)) {
      redis::ThrowIfError(reply, "pipelined command");
    }
  }
  return bench::SecondsSince(start);
}

void PrintResult(const json& result) { std::cout << "RESULT " << result.dump() << '\n'; }

// ---- warm ------------------------------------------------------------------------------------

// One repetition of the warm measurement: the pipelined-HSET peer into an empty Redis, then the
// warm into an empty Redis (left filled).
struct WarmRepetition {
  double warm_s = 0;
  double hset_s = 0;
  core::WarmCounts counts;
};

WarmRepetition WarmBesideHset(redis::Connection& conn, core::Warmer& warmer,
                              const std::vector<redis::Args>& hsets, std::size_t chunk) {
  WarmRepetition rep;
  conn.Command({"FLUSHALL"});
  rep.hset_s = Pipelined(conn, hsets, chunk);
  conn.Command({"FLUSHALL"});
  const auto warm_start = Clock::now();
  rep.counts = warmer.WarmAll({});
  rep.warm_s = bench::SecondsSince(warm_start);
  return rep;
}

json MeasureWarm(redis::Pool& pool, db::Store& store, core::Scripts& scripts,
                 const Options& options, Check& check) {
  auto conn = pool.Acquire();
  // Peer 1: the database alone, the same paged query.
  std::vector<db::SkuStock> rows;
  const auto read_start = Clock::now();
  for (std::string after;;) {
    auto page = store.LoadStockPage(after, options.page_size);
    rows.insert(rows.end(), page.begin(), page.end());
    if (page.size() < options.page_size) {
      break;
    }
    after = page.back().sku;
  }
  const double read_s = bench::SecondsSince(read_start);
  // Peer 2: Redis alone, the same hashes written with pipelined HSET.
  std::vector<redis::Args> hsets;
  hsets.reserve(rows.size());
  for (const auto& row : rows) {
    hsets.push_back({"HSET", Keys().Inventory(row.sku), "product_id", row.sku, "quantity",
                     std::to_string(*row.snapshot.quantity)});
  }
  core::CacheCounters counters;
  const Keys keys_in_use;  // the filler keeps a reference
  core::CacheFiller filler(pool, store, keys_in_use, scripts,
                           {.absent_ttl = std::chrono::milliseconds(0)}, counters);
  core::Warmer warmer(pool, store, filler, {.page_size = options.page_size});
  // The peer and the warm itself (into the empty Redis) take turns, so that both see the same
  // moments of a shared machine; the last warm leaves every SKU cached for what follows.
  const auto n = static_cast<double>(rows.size());
  std::vector<double> warm_rates;
  std::vector<double> hset_rates;
  std::vector<double> ratios;
  std::int64_t loaded = 0;
  for (int rep = 1; rep <= options.warm_repetitions; ++rep) {
    const auto [warm_s, hset_s, counts] = WarmBesideHset(*conn, warmer, hsets, options.page_size);
    loaded = counts.loaded;
    warm_rates.push_back(n / warm_s);
    hset_rates.push_back(n / hset_s);
    ratios.push_back(hset_s / warm_s);
    std::cout << fmt::format(
        "warm {}: {} SKUs in {:.2f} s = {:.0f} SKUs/s ({} loaded, {} cached, {} skipped, {} "
        "absent); pipelined HSET alone {:.2f} s = {:.0f} hashes/s\n",
        rep, counts.done(), warm_s, n / warm_s, counts.loaded, counts.cached, counts.skipped,
        counts.absent, hset_s, n / hset_s);
    check.Expect(counts.loaded == options.skus,
                 fmt::format("warm {} loaded {} of {} SKUs", rep, counts.loaded, options.skus));
    std::cout << "  check " << check.lines.back() << '\n';
  }
  const double warm_rate = bench::Median(warm_rates);
  const double hset_rate = bench::Median(hset_rates);
  std::cout << fmt::format(
      "warm: median {:.0f} SKUs/s over {} repetitions, {:.1f}% of pipelined HSET (median of the "
      "repetitions' ratios; HSET median {:.0f} hashes/s)\n"
      "  peer: PostgreSQL paged read alone {:.2f} s = {:.0f} rows/s\n",
      warm_rate, warm_rates.size(), 100 * bench::Median(ratios), hset_rate, read_s, n / read_s);
  CompareAll(store, *conn, check, "after warm");
  return {{"measurement", "warm"},
          {"skus", rows.size()},
          {"page_size", options.page_size},
          {"repetitions", warm_rates.size()},
          {"skus_per_s", warm_rate},
          {"skus_per_s_reps", warm_rates},
          {"loaded", loaded},
          {"read_seconds", read_s},
          {"read_rows_per_s", n / read_s},
          {"hset_per_s", hset_rate},
          {"hset_per_s_reps", hset_rates},
          {"warm_over_hset", bench::Median(ratios)}};
}

// ---- drain -----------------------------------------------------------------------------------

json MeasureDrain(const bench::Servers& servers, redis::Pool& pool, db::Store& store,
                  core::Scripts& scripts, const Options& options, Check& check) {
  auto conn = pool.Acquire();
  db::detail::PgConnection pg(servers.database_url);
  const db::OutboxPosition start_position = syncer::ReadSyncState(*conn).cursor;
  const auto update_start = Clock::now();
  const std::int64_t rows = pg.Exec("UPDATE inventory SET quantity = quantity + 1").AffectedRows();
  const double update_s = bench::SecondsSince(update_start);
  bench::Checkpoint(servers.database_url);
  std::cout << fmt::format("drain: backlog of {} outbox rows made in {:.2f} s\n", rows, update_s);

  syncer::Syncer syncer(pool, store, {});
  // Cache misses meanwhile: SKUs the database does not have, so that the drain's own keys stay as
  // they are; each fill announces its read all the same.
  core::CacheCounters fill_counters;
  const Keys keys_in_use;  // the filler keeps a reference
  core::CacheFiller filler(pool, store, keys_in_use, scripts, {}, fill_counters);
  std::int64_t fills = 0;
  std::int64_t fill_failures = 0;
  const auto drain_start = Clock::now();
  {
    std::jthread filling([&](const std::stop_token& stop) {
      if (options.drain_fills == 0) {
        return;
      }
      const auto every = std::chrono::microseconds(1'000'000 / options.drain_fills);
      for (auto due = Clock::now(); !stop.stop_requested(); due += every) {
        try {
          filler.Fill(fmt::format("drain-miss-{}", fills++));
        } catch (const Error& error) {
          ++fill_failures;
          std::cerr << "drain: a fill failed: " << error.what() << '\n';
        }
        std::this_thread::sleep_until(due + every);
      }
    });
    std::jthread running([&syncer](const std::stop_token& stop) { syncer.Run(stop); });
    while (syncer.counters().rows.load() < rows) {
      if (bench::SecondsSince(drain_start) > 1800) {
        throw TransientError("the syncer did not drain the outbox within 30 minutes");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  const double drain_s = bench::SecondsSince(drain_start);
  const auto note_counts =
      conn->Pipeline({{"HLEN", Keys::kCachedChanges}, {"HLEN", Keys::kPreviousCachedChanges}});
  const auto noted = note_counts[0].AsInteger() + note_counts[1].AsInteger();

  // Peer 1: the same rows read with the syncer's paged query alone.
  const auto read_start = Clock::now();
  std::int64_t read = 0;
  std::vector<std::string> keys;
  for (db::OutboxPosition after = start_position;;) {
    auto batch = store.ReadChanges(after, 2000);
    for (const auto& change : batch.changes) {
      keys.push_back(Keys().Inventory(change.sku));
    }
    read += static_cast<std::int64_t>(batch.changes.size());
    if (batch.changes.empty()) {
      break;
    }
    after = batch.changes.back().position;
  }
  const double read_s = bench::SecondsSince(read_start);
  // Peer 2: Redis alone, a pipelined HINCRBY of the same keys (by 0: the same work, no change).
  std::vector<redis::Args> increments;
  increments.reserve(keys.size());
  for (const auto& key : keys) {
    increments.push_back({"HINCRBY", key, "quantity", "0"});
  }
  const double hincrby_s = Pipelined(*conn, increments, 2000);
  const auto n = static_cast<double>(rows);
  std::cout << fmt::format(
      "  syncer applied {} rows in {:.2f} s = {:.0f} rows/s ({} batches; {} cache misses filled "
      "meanwhile, {} changes to cached SKUs noted for them)\n"
      "  peers: paged outbox read alone {} rows in {:.2f} s = {:.0f} rows/s; pipelined HINCRBY "
      "alone {:.2f} s = {:.0f}/s\n",
      syncer.counters().rows.load(), drain_s, n / drain_s, syncer.counters().batches.load(), fills,
      noted, read, read_s, static_cast<double>(read) / read_s, hincrby_s, n / hincrby_s);
  check.Expect(
      syncer.counters().rows.load() == rows && syncer.counters().cached_rows.load() == rows,
      fmt::format("syncer applied {} rows, {} to cached keys, of {}", syncer.counters().rows.load(),
                  syncer.counters().cached_rows.load(), rows));
  std::cout << "  check " << check.lines.back() << '\n';
  check.Expect(fill_failures == 0,
               fmt::format("{} of {} fills during the drain failed", fill_failures, fills));
  std::cout << "  check " << check.lines.back() << '\n';
  CompareAll(store, *conn, check, "after drain");
  return {{"measurement", "drain"},
          {"rows", rows},
          {"seconds", drain_s},
          {"rows_per_s", n / drain_s},
          {"backlog_update_seconds", update_s},
          {"fills_per_s", options.drain_fills},
          {"fills", fills},
          {"noted_changes", noted},
          {"read_seconds", read_s},
          {"read_rows_per_s", static_cast<double>(read) / read_s},
          {"hincrby_seconds", hincrby_s},
          {"hincrby_per_s", n / hincrby_s}};
}

// ---- propagation -----------------------------------------------------------------------------

struct Sent {
  Clock::time_point intended;
  Clock::time_point committed;
  std::int64_t id = 0;  ///< the change's outbox id
};

// One connection's share of the back-office updates: change i is due at start + i * interval;
// connection c sends the changes i ≡ c (mod connections) and learns each one's outbox id from
// currval (the trigger's insert in the same session).
void SendShare(const bench::Servers& servers, const Options& options, int c,
               Clock::time_point start, std::chrono::duration<double> interval,
               std::vector<Sent>& sent) {
  db::detail::PgConnection pg(servers.database_url);
  std::mt19937_64 random(static_cast<std::uint64_t>(c) + 1);
  for (auto i = static_cast<std::size_t>(c); i < sent.size();
       i += static_cast<std::size_t>(options.connections)) {
    auto& change = sent[i];
    change.intended =
        start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
    std::this_thread::sleep_until(change.intended);
    const std::string sku = SkuName(static_cast<std::int64_t>(random() % options.skus));
    pg.Exec("UPDATE inventory SET quantity = quantity + 1 WHERE sku = $1", {sku});
    change.committed = Clock::now();
    change.id = pg.Exec("SELECT currval('invsync_outbox_id_seq')").Int64(0, 0);
  }
}

// Back-office updates at options.rate per second (open loop) from options.connections
// connections.
std::vector<Sent> SendChanges(const bench::Servers& servers, const Options& options,
                              std::int64_t total, Clock::time_point start) {
  std::vector<Sent> sent(static_cast<std::size_t>(total));
  const auto interval = std::chrono::duration<double>(1.0 / options.rate);
  std::mutex mutex;
  std::exception_ptr failure;
  std::vector<std::jthread> senders;
  for (int c = 0; c < options.connections; ++c) {
    senders.emplace_back([&, c] {
      try {
        SendShare(servers, options, c, start, interval, sent);
      } catch (...) {
        std::lock_guard lock(mutex);
        failure = std::current_exception();
      }
    });
  }
  senders.clear();  // joins: every change is sent (or a sender failed)
  if (failure) {
    std::rethrow_exception(failure);
  }
  return sent;
}

struct Quantiles {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

Quantiles Summarize(std::vector<std::int64_t> micros) {
  std::sort(micros.begin(), micros.end());
  return {static_cast<double>(bench::Quantile(micros, 0.50)) / 1000,
          static_cast<double>(bench::Quantile(micros, 0.99)) / 1000,
          micros.empty() ? 0 : static_cast<double>(micros.back()) / 1000};
}

json MeasurePropagation(const bench::Servers& servers, redis::Pool& pool, db::Store& store,
                        const Options& options, Check& check) {
  // The drain's million-row UPDATE left a vacuum due (a million dead row versions, a million
  // outbox rows): done now, before the clock starts, so that autovacuum does not land at a random
  // moment of the timed changes (one full run saw commits' p99 at 124 ms and propagation's at
  // 327 ms). No CHECKPOINT here: each change's first write to a page after one logs the whole
  // page, which made the changes' own commits ten times slower.
  db::detail::PgConnection(servers.database_url)
      .ExecScript("VACUUM ANALYZE inventory, invsync_outbox");
  // The moment each change was applied: right after the syncer's apply script returned (an upper
  // bound of when it became visible in Redis).
  std::mutex mutex;
  std::unordered_map<std::int64_t, Clock::time_point> applied;
  syncer::Syncer syncer(pool, store, {},
                        [&](syncer::FaultPoint point, std::span<const db::Change> changes) {
                          if (point != syncer::FaultPoint::kAfterApply) {
                            return;
                          }
                          const auto now = Clock::now();
                          std::lock_guard lock(mutex);
                          for (const auto& change : changes) {
                            applied.emplace(change.position.id, now);
                          }
                        });
  std::jthread running([&syncer](const std::stop_token& stop) { syncer.Run(stop); });
  while (!syncer.counters().leader.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto total = static_cast<std::int64_t>(options.rate * options.seconds);
  const auto sent =
      SendChanges(servers, options, total, Clock::now() + std::chrono::milliseconds(200));
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  auto all_applied = [&] {
    std::lock_guard lock(mutex);
    return std::all_of(sent.begin(), sent.end(),
                       [&](const Sent& change) { return applied.contains(change.id); });
  };
  while (!all_applied() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  running = {};
  std::vector<std::int64_t> commit_us;
  std::vector<std::int64_t> visible_us;
  std::vector<std::int64_t> after_commit_us;
  std::int64_t missing = 0;
  for (const auto& change : sent) {
    auto micros = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    };
    commit_us.push_back(micros(change.committed - change.intended));
    auto found = applied.find(change.id);
    if (found == applied.end()) {
      ++missing;
      continue;
    }
    visible_us.push_back(micros(found->second - change.intended));
    after_commit_us.push_back(micros(found->second - change.committed));
  }
  const auto commit = Summarize(commit_us);
  const auto visible = Summarize(visible_us);
  const auto syncer_share = Summarize(after_commit_us);
  std::cout << fmt::format(
      "propagation: {} changes at {}/s from {} connections\n"
      "  commit → applied in Redis: p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n"
      "  intended send → applied:   p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n"
      "  peer, intended send → commit: p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
      total, options.rate, options.connections, syncer_share.p50, syncer_share.p99,
      syncer_share.max, visible.p50, visible.p99, visible.max, commit.p50, commit.p99, commit.max);
  check.Expect(missing == 0, fmt::format("{} of {} changes applied within 30 s of the last send",
                                         total - missing, total));
  std::cout << "  check " << check.lines.back() << '\n';
  auto conn = pool.Acquire();
  CompareAll(store, *conn, check, "after propagation");
  return {{"measurement", "propagation"},
          {"changes", total},
          {"rate_per_s", options.rate},
          {"connections", options.connections},
          {"after_commit_p50_ms", syncer_share.p50},
          {"after_commit_p99_ms", syncer_share.p99},
          {"after_commit_max_ms", syncer_share.max},
          {"visible_p50_ms", visible.p50},
          {"visible_p99_ms", visible.p99},
          {"visible_max_ms", visible.max},
          {"commit_p50_ms", commit.p50},
          {"commit_p99_ms", commit.p99},
          {"commit_max_ms", commit.max}};
}

// ---- main ------------------------------------------------------------------------------------

std::optional<Options> ParseOptions(int argc, char** argv, bench::Servers& servers) {
  bench::Flags flags("invsync-bench-cdc",
                     "Times warm, the syncer draining an outbox backlog and back-office change "
                     "propagation, each beside a peer measured in the same run.");
  bench::AddServerFlags(flags);
  flags.Add("json", "", "also write all results to this JSON file");
  flags.Add("skus", "1000000", "SKUs seeded, warmed, and updated once each for the drain");
  flags.Add("rate", "1000", "back-office changes per second for the propagation latency");
  flags.Add("seconds", "10", "how long the propagation run sends changes");
  flags.Add("connections", "4", "database connections sending the back-office changes");
  flags.Add("page-size", "2000", "SKUs per database page for warm and its read peer");
  flags.Add("drain-fills", "10", "cache misses filled per second while the syncer drains");
  flags.Add("warm-repetitions", "3",
            "warms (each after its pipelined-HSET peer, interleaved) of which the median counts");
  flags.Add("only", "warm,drain,propagation", "measurements to run (comma-separated)");
  if (!flags.Parse(argc, argv)) {
    return std::nullopt;
  }
  Options options;
  options.skus = flags.Int("skus", 1, 100'000'000);
  options.rate = static_cast<int>(flags.Int("rate", 1, 100'000));
  options.seconds = flags.Seconds("seconds");
  options.connections = static_cast<int>(flags.Int("connections", 1, 256));
  options.page_size = static_cast<std::size_t>(flags.Int("page-size", 1, 100'000));
  options.drain_fills = static_cast<int>(flags.Int("drain-fills", 0, 1000));
  options.warm_repetitions = static_cast<int>(flags.Int("warm-repetitions", 1, 100));
  options.json_path = flags.String("json");
  std::string only = flags.String("only");
  for (std::size_t start = 0; start <= only.size();) {
    const auto comma = std::min(only.find(',', start), only.size());
    const std::string name = only.substr(start, comma - start);
    if (name != "warm" && name != "drain" && name != "propagation") {
      throw std::invalid_argument(fmt::format("--only: unknown measurement \"{}\"", name));
    }
    options.only.insert(name);
    start = comma + 1;
  }
  servers = bench::ResolveServers(flags);
  return options;
}

int Run(int argc, char** argv) {
  bench::Servers servers;
  const auto parsed = ParseOptions(argc, argv, servers);
  if (!parsed) {
    return 0;
  }
  const Options& options = *parsed;
  bench::ResetState(servers);
  Seed(servers, options.skus);
  redis::Pool pool(redis::Endpoint::Parse(servers.redis_url), 8, std::chrono::seconds(60));
  db::PostgresStore store(servers.database_url, 8);
  core::Scripts scripts;
  Check check;
  json results = json::array();
  // Warm first: it also caches every SKU, which the other two need.
  if (options.only.contains("warm")) {
    results.push_back(MeasureWarm(pool, store, scripts, options, check));
    PrintResult(results.back());
  } else {
    core::CacheCounters counters;
    const Keys keys_in_use;  // the filler keeps a reference
    core::CacheFiller filler(pool, store, keys_in_use, scripts, {}, counters);
    core::Warmer(pool, store, filler).WarmAll({});
  }
  if (options.only.contains("drain")) {
    results.push_back(MeasureDrain(servers, pool, store, scripts, options, check));
    PrintResult(results.back());
  }
  if (options.only.contains("propagation")) {
    results.push_back(MeasurePropagation(servers, pool, store, options, check));
    PrintResult(results.back());
  }
  std::cout << fmt::format("checks {}\n", check.ok ? "OK" : "FAILED");
  if (!options.json_path.empty()) {
    bench::WriteJson(options.json_path, {{"benchmark", "cdc"},
                                         {"skus", options.skus},
                                         {"results", results},
                                         {"checks_ok", check.ok},
                                         {"checks", check.lines}});
  }
  return check.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return bench::Main("invsync-bench-cdc", [&] { return Run(argc, argv); });
}
