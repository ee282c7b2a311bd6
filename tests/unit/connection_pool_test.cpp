// The connection pool's rules for connections handed back: a broken one takes the idle ones with
// it, one still inside a transaction is closed alone. The SQLite case runs on a real database file
// (SQLite is embedded: no server needed).
#include "common/connection_pool.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "db/detail/sqlite.hpp"

namespace invsync {
namespace {

using namespace std::chrono_literals;

/// Stands in for a network connection: the test decides when it breaks or sits in a transaction.
struct FakeConnection {
  int id = 0;
  bool broken_now = false;
  bool inside_transaction = false;
  [[nodiscard]] bool broken() const { return broken_now; }
  [[nodiscard]] bool in_transaction() const { return inside_transaction; }
};

class FakePool {
 public:
  explicit FakePool(std::size_t size)
      : pool_([this] { return std::make_unique<FakeConnection>(FakeConnection{++opened_}); }, size,
              50ms, "fake") {}
  ConnectionPool<FakeConnection>& operator*() { return pool_; }
  ConnectionPool<FakeConnection>* operator->() { return &pool_; }
  [[nodiscard]] int opened() const { return opened_; }

 private:
  int opened_ = 0;
  ConnectionPool<FakeConnection> pool_;
};

TEST(ConnectionPoolTest, AnIdleConnectionIsLentAgain) {
  FakePool pool(2);
  { auto lease = pool->Acquire(); }
  auto lease = pool->Acquire();
  EXPECT_EQ(lease->id, 1);
  EXPECT_EQ(pool.opened(), 1);
}

TEST(ConnectionPoolTest, AConnectionHandedBackInsideATransactionIsClosedAndReplaced) {
  FakePool pool(1);
  {
    auto lease = pool->Acquire();
    lease->inside_transaction = true;
  }
  auto lease = pool->Acquire();  // a pool of one: waits forever if the slot was not given back
  EXPECT_EQ(lease->id, 2);
  EXPECT_FALSE(lease->in_transaction());
}

TEST(ConnectionPoolTest, AConnectionInsideATransactionLeavesTheIdleOnesInThePool) {
  FakePool pool(2);
  {
    auto first = pool->Acquire();
    auto second = pool->Acquire();
    second->inside_transaction = true;
  }
  auto lease = pool->Acquire();
  EXPECT_EQ(lease->id, 1);
  EXPECT_EQ(pool.opened(), 2);
}

TEST(ConnectionPoolTest, ABrokenConnectionTakesTheIdleOnesWithIt) {
  FakePool pool(2);
  {
    auto first = pool->Acquire();
    auto second = pool->Acquire();
    first->broken_now = true;  // handed back after the second: the second is idle by then
  }
  auto lease = pool->Acquire();
  EXPECT_EQ(lease->id, 3);
}

TEST(ConnectionPoolTest, AllLentOutMakesTheNextBorrowerWaitThenFailTransiently) {
  FakePool pool(1);
  auto held = pool->Acquire();
  EXPECT_THROW((void)pool->Acquire(), TransientError);
}

class SqliteFile : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path_ + suffix);
    }
  }
  std::unique_ptr<db::detail::SqliteConnection> Open() const {
    return std::make_unique<db::detail::SqliteConnection>(path_, 100ms);
  }
  const std::string path_ = (std::filesystem::temp_directory_path() /
                             ("invsync-pool-" + std::to_string(::getpid()) + ".db"))
                                .string();
};

TEST_F(SqliteFile, ASqliteConnectionLeftInsideAWriteTransactionDoesNotKeepTheWriteLock) {
  ConnectionPool<db::detail::SqliteConnection> pool([this] { return Open(); }, 4, 100ms, "db");
  {
    auto lease = pool.Acquire();
    lease->Exec("CREATE TABLE t (x INTEGER)");
    lease->Exec("BEGIN IMMEDIATE");
    lease->Exec("INSERT INTO t VALUES (1)");
  }                     // handed back holding the write lock, as after a ROLLBACK that failed
  auto other = Open();  // another process's writer
  EXPECT_NO_THROW(other->Exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT"));
  auto lease = pool.Acquire();
  EXPECT_FALSE(lease->in_transaction());
  EXPECT_EQ(lease->QueryInt("SELECT count(*) FROM t"), 1) << "the abandoned insert was kept";
}

TEST_F(SqliteFile, AFailedSqliteTransactionRollsBackAndReportsItsOwnFailure) {
  auto connection = Open();
  connection->Exec("CREATE TABLE t (x INTEGER NOT NULL)");
  auto insert_null = [&] {
    db::detail::InWriteTransaction(*connection, [&] {
      connection->Exec("INSERT INTO t VALUES (1)");
      connection->Exec("INSERT INTO t VALUES (NULL)");
    });
  };
  EXPECT_THROW(insert_null(), RejectedDataError);
  EXPECT_FALSE(connection->in_transaction());
  EXPECT_EQ(connection->QueryInt("SELECT count(*) FROM t"), 0);
}

}  // namespace
}  // namespace invsync
