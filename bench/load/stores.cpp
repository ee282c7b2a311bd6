#include "stores.hpp"

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/numbers.hpp"
#include "core/stock_service.hpp"
#include "db/detail/pg.hpp"
#include "db/detail/sqlite.hpp"
#include "db/postgres_store.hpp"
#include "db/sqlite_store.hpp"
#include "persister/persister.hpp"
#include "schedule.hpp"
#include "syncer/syncer.hpp"

namespace invsync::bench {

namespace {

constexpr std::size_t kChunk = 1000;

redis::Connection Redis(const Servers& servers) {
  return {redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(30)};
}

void WarmThroughInvsync(const Servers& servers, const std::vector<std::string>& skus) {
  redis::Pool pool(redis::Endpoint::Parse(servers.redis_url), 4, std::chrono::seconds(30));
  auto store = db::OpenStore(servers.database_url, 2);
  core::StockService stock(pool, *store, core::Keys(), {});
  for (std::size_t at = 0; at < skus.size(); at += kChunk) {
    std::span<const std::string> chunk(skus.data() + at, std::min(kChunk, skus.size() - at));
    auto result = stock.GetMany(chunk);
    if (result.status != core::StockStatus::kOk || !result.unknown.empty()) {
      throw std::runtime_error(fmt::format("warming the cache failed at {}", chunk.front()));
    }
  }
}

void WarmNaively(const Servers& servers, const std::map<std::string, std::int64_t>& stock) {
  auto redis = Redis(servers);
  std::vector<std::string> texts;
  std::vector<redis::Args> commands;
  auto flush = [&] {
    redis.Pipeline(commands);
    commands.clear();
    texts.clear();
  };
  texts.reserve(2 * kChunk);
  for (const auto& [sku, quantity] : stock) {
    texts.push_back("inventory:" + sku);
    texts.push_back(std::to_string(quantity));
    commands.push_back(
        {"HSET", texts[texts.size() - 2], "product_id", sku, "quantity", texts.back()});
    if (commands.size() == kChunk) {
      flush();
    }
  }
  flush();
}

using Rows = std::vector<std::vector<std::string>>;

// The `columns` columns of a query without parameters, as text, from either store.
Rows ReadRows(const std::string& database_url, std::string_view sql, int columns) {
  Rows rows;
  if (IsSqliteUrl(database_url)) {
    db::detail::SqliteConnection sqlite(SqlitePath(database_url), std::chrono::seconds(30));
    db::detail::SqliteStatement query(sqlite, sql);
    while (query.Step()) {
      auto& row = rows.emplace_back();
      for (int column = 0; column < columns; ++column) {
        row.push_back(query.Text(column));
      }
    }
    return rows;
  }
  db::detail::PgConnection pg(database_url);
  auto result = pg.Exec(sql);
  for (int row = 0; row < result.rows(); ++row) {
    auto& out = rows.emplace_back();
    for (int column = 0; column < columns; ++column) {
      out.emplace_back(result.Text(row, column));
    }
  }
  return rows;
}

// The rows as invsync's persister writes them: in one transaction that also deletes what the
// capture triggers recorded of it (SQLite has no session marker the triggers could test).
void SeedSqlite(const std::string& database_url, const std::map<std::string, std::int64_t>& stock) {
  db::detail::SqliteConnection sqlite(SqlitePath(database_url), std::chrono::seconds(30));
  db::detail::InWriteTransaction(sqlite, [&] {
    db::detail::SqliteStatement insert(
        sqlite,
        "INSERT INTO inventory (sku, quantity) VALUES (?, ?) ON CONFLICT (sku) DO "
        "UPDATE SET quantity = excluded.quantity");
    for (const auto& [sku, quantity] : stock) {
      insert.Bind(1, sku).Bind(2, quantity).Run();
    }
    sqlite.Exec("DELETE FROM invsync_outbox");
  });
}

}  // namespace

Target ParseTarget(const std::string& name) {
  if (name == "invsync") {
    return Target::kInvsync;
  }
  if (name == "db-only") {
    return Target::kDbOnly;
  }
  if (name == "naive-cache") {
    return Target::kNaiveCache;
  }
  throw std::invalid_argument(
      fmt::format("--target must be invsync, db-only or naive-cache (got \"{}\")", name));
}

std::string TargetName(Target target) {
  switch (target) {
    case Target::kInvsync:
      return "invsync";
    case Target::kDbOnly:
      return "db-only";
    case Target::kNaiveCache:
      return "naive-cache";
  }
  return "?";
}

void Seed(Target target, const Servers& servers, const std::map<std::string, std::int64_t>& stock) {
  if (IsSqliteUrl(servers.database_url)) {
    if (target != Target::kInvsync) {
      throw std::invalid_argument("the peers run on PostgreSQL only: --target must be invsync");
    }
    SeedSqlite(servers.database_url, stock);
    std::vector<std::string> skus;
    skus.reserve(stock.size());
    for (const auto& entry : stock) {
      skus.push_back(entry.first);
    }
    WarmThroughInvsync(servers, skus);
    return;
  }
  db::detail::PgConnection pg(servers.database_url);
  if (target != Target::kInvsync) {
    pg.ExecScript("DROP TRIGGER IF EXISTS invsync_capture ON inventory");
  }
  std::string rows;
  std::vector<std::string> skus;
  for (const auto& [sku, quantity] : stock) {
    rows += fmt::format("{}\t{}\n", sku, quantity);
    skus.push_back(sku);
  }
  // Marked as the persister marks its writes: these rows are already where invsync wants them.
  pg.ExecScript("SET invsync.origin = 'redis'");
  pg.CopyIn("COPY inventory (sku, quantity) FROM STDIN", rows);
  if (target == Target::kInvsync) {
    WarmThroughInvsync(servers, skus);
  } else if (target == Target::kNaiveCache) {
    WarmNaively(servers, stock);
  }
}

double WaitDrained(const Servers& servers, std::chrono::seconds limit) {
  const auto start = Clock::now();
  auto redis = Redis(servers);
  core::Scripts scripts;
  auto store = db::OpenStore(servers.database_url, 1);
  while (true) {
    const auto lag = persister::ReadLag(redis, scripts);
    const auto backlog = store->ReadChangeBacklog(syncer::ReadSyncState(redis).cursor);
    if (lag.unpersisted() == 0 && backlog.rows == 0) {
      return SecondsSince(start);
    }
    if (Clock::now() - start > limit) {
      throw std::runtime_error(
          fmt::format("not drained after {} s: {} unpersisted events, {} unapplied outbox rows",
                      limit.count(), lag.unpersisted(), backlog.rows));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Observed ReadObserved(const Servers& servers, const std::set<std::string>& skus, bool with_redis) {
  Observed observed;
  for (const auto& row : ReadRows(servers.database_url,
                                  "SELECT event_id, sku, delta FROM invsync_ledger "
                                  "WHERE kind IN ('deduct', 'cancel')",
                                  3)) {
    observed.ledger[row[0]][row[1]] += ParseInt64(row[2]).value_or(0);
  }
  const std::vector<std::string> list(skus.begin(), skus.end());
  for (const auto& sku : list) {
    observed.database[sku] = std::nullopt;
  }
  for (const auto& row : ReadRows(servers.database_url, "SELECT sku, quantity FROM inventory", 2)) {
    if (skus.contains(row[0])) {
      observed.database[row[0]] = ParseInt64(row[1]);
    }
  }
  if (!with_redis) {
    return observed;
  }
  auto redis = Redis(servers);
  for (std::size_t at = 0; at < list.size(); at += kChunk) {
    std::vector<std::string> keys;
    std::vector<redis::Args> commands;
    const std::size_t end = std::min(list.size(), at + kChunk);
    keys.reserve(end - at);
    for (std::size_t i = at; i < end; ++i) {
      keys.push_back("inventory:" + list[i]);
      commands.push_back({"HGET", keys.back(), "quantity"});
    }
    auto replies = redis.Pipeline(commands);
    for (std::size_t i = at; i < end; ++i) {
      auto text = replies[i - at].AsOptionalString();
      observed.redis[list[i]] = text ? ParseInt64(*text) : std::nullopt;
    }
  }
  return observed;
}

std::int64_t RedisUsedMemory(const Servers& servers) {
  auto redis = Redis(servers);
  const std::string info = redis.Command({"INFO", "memory"}).AsString();
  const std::string_view field = "used_memory:";
  auto at = info.find(field);
  if (at == std::string::npos) {
    return 0;
  }
  return std::strtoll(info.c_str() + at + field.size(), nullptr, 10);
}

std::optional<std::int64_t> PeakRssKib(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) {
      return std::strtoll(line.c_str() + 6, nullptr, 10);
    }
  }
  return std::nullopt;
}

}  // namespace invsync::bench
