#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/stock_service.hpp"
#include "db/store.hpp"
#include "persister/persister.hpp"
#include "redis/client.hpp"

namespace invsync::db::detail {
class PgConnection;
class SqliteConnection;
}  // namespace invsync::db::detail

namespace invsync::testing {

/// URL of the test Redis / database from INVSYNC_TEST_REDIS_URL / INVSYNC_TEST_DATABASE_URL
/// (exported by scripts/with-services). Integration tests never skip: without them they fail.
/// With INVSYNC_TEST_STORE=sqlite the database is a SQLite file of this process instead (CTest
/// runs the integration suites both ways).
std::string TestRedisUrl();
std::string TestDatabaseUrl();
bool TestOnSqlite();
/// Empties the test database (drops the schema, or removes the SQLite file).
void ResetDatabase();

/// One connection to the test database, on whichever store the tests run: plain SQL, as a back
/// office or another tool would send it. Keep one for statements that share a session (a
/// transaction held open) or that run often.
class SqlSession {
 public:
  using Row = std::vector<std::optional<std::string>>;  ///< cells as text, NULL as nullopt

  SqlSession();
  ~SqlSession();
  SqlSession(const SqlSession&) = delete;
  SqlSession& operator=(const SqlSession&) = delete;

  /// Runs one statement; returns its rows (none for a statement that returns none).
  std::vector<Row> Query(const std::string& statement);

 private:
  std::unique_ptr<db::detail::PgConnection> pg_;
  std::unique_ptr<db::detail::SqliteConnection> sqlite_;
};

/// Runs a shell command from the environment variable `name` (e.g. INVSYNC_TEST_PG_STOP) and
/// fails the test if it is missing or fails.
void RunServerControl(const char* name);

/// Stops a test server with Begin() (the command in the environment variable `stop`), starts it
/// again with End() (`start`) or, if a failed assertion left the test early, in the destructor, so
/// the next test finds it running.
class ServerOutage {
 public:
  ServerOutage(const char* stop, const char* start) : stop_(stop), start_(start) {}
  ServerOutage(const ServerOutage&) = delete;
  ServerOutage& operator=(const ServerOutage&) = delete;
  ~ServerOutage() { End(); }

  void Begin() {
    RunServerControl(stop_);
    down_ = true;
  }
  void End() {
    if (down_.exchange(false)) {
      RunServerControl(start_);
    }
  }
  [[nodiscard]] bool down() const { return down_.load(); }

 private:
  const char* stop_;
  const char* start_;
  std::atomic<bool> down_{false};
};

/// An outage of the test PostgreSQL.
class DatabaseOutage : public ServerOutage {
 public:
  DatabaseOutage() : ServerOutage("INVSYNC_TEST_PG_STOP", "INVSYNC_TEST_PG_START") {}
};

/// An outage of the test Redis.
class RedisOutage : public ServerOutage {
 public:
  RedisOutage() : ServerOutage("INVSYNC_TEST_REDIS_STOP", "INVSYNC_TEST_REDIS_START") {}
};

/// Base of the integration tests: clean Redis and a fresh schema before each test, and helpers
/// to look at both sides directly.
class ServersTest : public ::testing::Test {
 protected:
  /// Closes the parts and, on SQLite, removes the test's database file: after the fixture's own
  /// members (servers, threads using the parts) are gone.
  ~ServersTest() override;
  void SetUp() override;

  /// Options used by `stock()`; tests may change them before the first call.
  core::StockOptions stock_options;
  persister::PersisterOptions persister_options;

  redis::Pool& pool();
  db::Store& store();
  core::StockService& stock();
  /// A second service with its own pool and store, as another process would have.
  std::unique_ptr<core::StockService> NewService(db::Store& store);

  /// Runs a raw SQL statement on a fresh connection; returns the first cell or nullopt.
  std::optional<std::string> Sql(const std::string& statement);
  std::int64_t SqlInt(const std::string& statement);
  /// Quantity in the database, nullopt without a row.
  std::optional<std::int64_t> DatabaseQuantity(const std::string& sku);
  /// Quantity in Redis, nullopt if the key is missing.
  std::optional<std::int64_t> RedisQuantity(const std::string& sku);
  redis::Value Redis(const redis::Args& args);
  /// What another process's cache fill leaves behind when it loads `sku` at `quantity` from a
  /// database read that included the SKU's latest change: the key and the read's position. (A
  /// real fill from this process would also announce its read: see CacheFiller::AnnounceRead.)
  void InstallAsAnotherFill(const std::string& sku, std::int64_t quantity);

  /// Runs a persister until every event is persisted (or fails the test after `Scaled(limit)`).
  void Drain(std::chrono::seconds limit = std::chrono::seconds(60));
  /// Runs one persister batch and empties Redis (FLUSHALL) between its commit and its
  /// acknowledgement, as a Redis restarted without persistence would: the database keeps the
  /// batch, Redis forgets everything but what the acknowledgement writes again. Returns the number
  /// of events the batch persisted.
  std::size_t PersistThenLoseRedis();
  /// Unpersisted events right now.
  std::int64_t Unpersisted();

 private:
  std::mutex parts_mutex_;  ///< tests call the accessors from many threads
  std::unique_ptr<redis::Pool> pool_;
  std::unique_ptr<db::Store> store_;
  std::unique_ptr<core::StockService> stock_;
};

}  // namespace invsync::testing
