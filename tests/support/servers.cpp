#include "servers.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "core/keys.hpp"
#include "db/detail/pg.hpp"
#include "db/detail/sqlite.hpp"
#include "db/sqlite_store.hpp"
#include "process.hpp"

namespace invsync::testing {

namespace {

std::string RequireEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << name
                  << " is not set: integration tests run under scripts/with-services "
                     "(see README)";
    throw std::runtime_error(std::string("missing ") + name);
  }
  return value;
}

}  // namespace

std::string TestRedisUrl() { return RequireEnv("INVSYNC_TEST_REDIS_URL"); }

bool TestOnSqlite() {
  const char* kind = std::getenv("INVSYNC_TEST_STORE");
  return kind != nullptr && std::string_view(kind) == "sqlite";
}

std::string TestDatabaseUrl() {
  if (TestOnSqlite()) {
    static const std::string path =
        (std::filesystem::temp_directory_path() / fmt::format("invsync-test-{}.db", getpid()))
            .string();
    return "sqlite://" + path;
  }
  return RequireEnv("INVSYNC_TEST_DATABASE_URL");
}

void ResetDatabase() {
  if (TestOnSqlite()) {
    const std::string path = TestDatabaseUrl().substr(std::string_view("sqlite://").size());
    for (const char* suffix : {"", "-wal", "-shm", ".syncer-lock"}) {
      std::filesystem::remove(path + suffix);
    }
    return;
  }
  db::detail::PgConnection pg(TestDatabaseUrl());
  pg.ExecScript("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;");
}

SqlSession::SqlSession() {
  const std::string url = TestDatabaseUrl();
  if (TestOnSqlite()) {
    sqlite_ = std::make_unique<db::detail::SqliteConnection>(
        url.substr(std::string_view("sqlite://").size()), std::chrono::seconds(10));
  } else {
    pg_ = std::make_unique<db::detail::PgConnection>(url);
  }
}

SqlSession::~SqlSession() = default;

std::vector<SqlSession::Row> SqlSession::Query(const std::string& statement) {
  std::vector<Row> rows;
  if (sqlite_) {
    db::detail::SqliteStatement query(*sqlite_, statement);
    while (query.Step()) {
      Row& row = rows.emplace_back();
      for (int column = 0; column < query.columns(); ++column) {
        row.push_back(query.IsNull(column) ? std::nullopt
                                           : std::optional<std::string>(query.Text(column)));
      }
    }
    return rows;
  }
  auto result = pg_->Exec(statement);
  for (int index = 0; index < result.rows(); ++index) {
    Row& row = rows.emplace_back();
    for (int column = 0; column < result.columns(); ++column) {
      row.push_back(result.IsNull(index, column)
                        ? std::nullopt
                        : std::optional<std::string>(result.Text(index, column)));
    }
  }
  return rows;
}

void RunServerControl(const char* name) {
  std::string command = RequireEnv(name);
  ASSERT_EQ(std::system(command.c_str()), 0) << name << " failed: " << command;
}

ServersTest::~ServersTest() {
  stock_.reset();
  store_.reset();
  if (TestOnSqlite()) {
    try {
      ResetDatabase();
    } catch (const std::exception& error) {
      ADD_FAILURE() << "could not remove the test database: " << error.what();
    }
  }
}

void ServersTest::SetUp() {
  // spdlog's registry is a function-local static inside the uninstrumented libspdlog.so: built on
  // this thread before the test starts any other, so ThreadSanitizer sees it ordered before every
  // use (it cannot see a later thread pass the static's guard, and would report a false race).
  spdlog::default_logger_raw();
  stock_options.fill.wait = std::chrono::seconds(10);
  persister_options.batch_size = 500;
  persister_options.batch_wait = std::chrono::milliseconds(2);
  persister_options.claim_idle = std::chrono::milliseconds(500);
  persister_options.max_backoff = std::chrono::milliseconds(500);
  persister_options.poll = std::chrono::milliseconds(100);
  redis::Connection redis(redis::Endpoint::Parse(TestRedisUrl()), std::chrono::seconds(5));
  redis.Command({"FLUSHALL"});
  store_.reset();  // a SQLite store would keep the removed file open
  ResetDatabase();
  store().Migrate();
}

redis::Pool& ServersTest::pool() {
  std::lock_guard lock(parts_mutex_);
  if (!pool_) {
    pool_ = std::make_unique<redis::Pool>(redis::Endpoint::Parse(TestRedisUrl()), 64,
                                          std::chrono::seconds(5));
  }
  return *pool_;
}

db::Store& ServersTest::store() {
  std::lock_guard lock(parts_mutex_);
  if (!store_) {
    store_ = db::OpenStore(TestDatabaseUrl(), 8);
  }
  return *store_;
}

core::StockService& ServersTest::stock() {
  auto& redis = pool();
  auto& database = store();
  std::lock_guard lock(parts_mutex_);
  if (!stock_) {
    stock_ = std::make_unique<core::StockService>(redis, database, core::Keys(), stock_options);
  }
  return *stock_;
}

std::unique_ptr<core::StockService> ServersTest::NewService(db::Store& store) {
  static std::vector<std::unique_ptr<redis::Pool>> pools;  // outlive the services using them
  pools.push_back(std::make_unique<redis::Pool>(redis::Endpoint::Parse(TestRedisUrl()), 32,
                                                std::chrono::seconds(5)));
  return std::make_unique<core::StockService>(*pools.back(), store, core::Keys(), stock_options);
}

std::optional<std::string> ServersTest::Sql(const std::string& statement) {
  auto rows = SqlSession().Query(statement);
  if (rows.empty() || rows.front().empty()) {
    return std::nullopt;
  }
  return rows.front().front();
}

std::int64_t ServersTest::SqlInt(const std::string& statement) {
  auto text = Sql(statement);
  return text ? ParseInt64(*text).value_or(-999999) : 0;
}

std::optional<std::int64_t> ServersTest::DatabaseQuantity(const std::string& sku) {
  auto text = Sql("SELECT quantity FROM inventory WHERE sku = '" + sku + "'");
  if (!text) {
    return std::nullopt;
  }
  return ParseInt64(*text);
}

std::optional<std::int64_t> ServersTest::RedisQuantity(const std::string& sku) {
  auto value = Redis({"HGET", "inventory:" + sku, "quantity"}).AsOptionalString();
  if (!value) {
    return std::nullopt;
  }
  return ParseInt64(*value);
}

void ServersTest::InstallAsAnotherFill(const std::string& sku, std::int64_t quantity) {
  const auto position =
      SqlInt(fmt::format("SELECT COALESCE(max(id), 0) FROM invsync_outbox WHERE sku = '{}'", sku));
  Redis({"HSET", "inventory:" + sku, "product_id", sku, "quantity", std::to_string(quantity)});
  Redis({"HSET", core::Keys::kFillPositions, sku, std::to_string(position)});
}

redis::Value ServersTest::Redis(const redis::Args& args) {
  auto conn = pool().Acquire();
  return conn->Command(args);
}

std::int64_t ServersTest::Unpersisted() {
  auto conn = pool().Acquire();
  return persister::ReadLag(*conn, stock().scripts()).unpersisted();
}

void ServersTest::Drain(std::chrono::seconds limit) {
  persister::Persister persister(pool(), store(), persister_options);
  const auto deadline = std::chrono::steady_clock::now() + Scaled(limit);
  while (Unpersisted() > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "persister did not drain in time";
    try {
      persister.RunOnce(std::chrono::milliseconds(50));
    } catch (const TransientError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::size_t ServersTest::PersistThenLoseRedis() {
  auto lose_data = [&](persister::FaultPoint at, std::span<const db::StockEvent> /*events*/) {
    if (at == persister::FaultPoint::kAfterCommit) {
      Redis({"FLUSHALL"});
    }
  };
  persister::Persister persister(pool(), store(), persister_options, lose_data);
  return persister.RunOnce(std::chrono::seconds(1));
}

}  // namespace invsync::testing
