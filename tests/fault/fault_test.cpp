// The fault schedules: each drives `invsync serve` over HTTP with the workload, injects one kind
// of fault, heals, waits for the drain and checks the history against both stores (see
// docs/reliability.md). Run by scripts/fault-suite, each under its own scripts/with-services.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "fault_fixture.hpp"
#include "http_client.hpp"
#include "proxy.hpp"
#include "redis/client.hpp"

namespace invsync::fault {
namespace {

using namespace std::chrono_literals;

constexpr int kSkus = 8;
constexpr std::int64_t kInitialStock = 300;

std::uint16_t EnvPort(const char* name) {
  const char* value = std::getenv(name);
  EXPECT_NE(value, nullptr) << name << " is not set (run under scripts/with-services)";
  return value == nullptr ? 0 : static_cast<std::uint16_t>(std::stoi(value));
}

redis::Connection DirectRedis() { return {redis::Endpoint::Parse(testing::TestRedisUrl()), 5s}; }

// How far the wall clock of the serve on `port` is ahead of ours, judged by the time stamp of
// its last scheduled reconcile (taken with std::time).
std::chrono::seconds LastReconcileAheadBy(std::uint16_t port) {
  testing::HttpClient client(port, 2s);
  const auto status = nlohmann::json::parse(client.Send("GET", "/v1/status").body);
  std::tm stamp{};
  std::istringstream text(status["last_reconcile"]["finished_at"].get<std::string>());
  text >> std::get_time(&stamp, "%Y-%m-%dT%H:%M:%SZ");
  EXPECT_FALSE(text.fail()) << status.dump();
  return std::chrono::seconds(timegm(&stamp) - std::time(nullptr));
}

class Fault : public FaultTest {
 protected:
  // Kills redis-server with SIGKILL under load with the given appendfsync policy, restarts it.
  void RedisKilled(const std::string& fsync, const std::string& schedule) {
    // scripts/fault-suite starts the servers with the policy; set it here too, so that the test
    // means the same when run under a plain with-services.
    DirectRedis().Command({"CONFIG", "SET", "appendfsync", fsync});
    ASSERT_EQ(DirectRedis().Command({"CONFIG", "GET", "appendfsync"}).At(1).AsString(), fsync);
    CreateStock(kSkus, kInitialStock);
    StartServe();
    StartLoad();
    Run(2500ms);
    const auto killed_at = std::chrono::steady_clock::now();
    KillRedis();
    Run(1500ms);
    StartRedis();
    Run(3000ms);
    CheckOptions options;
    if (fsync == "everysec") {
      options.redis_killed_at = killed_at;  // the AOF writes Redis may have been holding back
    }
    Finish(schedule, options);
  }

  // Flaky network between the service and `proxy`'s server: delay, cuts, a stall beyond the
  // clients' timeouts and the service's own, then cuts again.
  static std::int64_t NetworkFaults(Proxy& proxy) {
    Run(2000ms);
    proxy.SetDelay(40ms);
    Run(2000ms);
    proxy.SetDelay(0ms);
    for (int i = 0; i < 3; ++i) {
      proxy.CutAll();
      Run(700ms);
    }
    proxy.SetStalled(true);
    Run(3000ms);
    proxy.SetStalled(false);
    proxy.CutAll();
    Run(500ms);
    proxy.SetRefusing(true);
    Run(1000ms);
    proxy.SetRefusing(false);
    Run(2500ms);
    return 7;  // delay, 3 cuts, stall (+ cut), refusal
  }
};

TEST_F(Fault, ServeKilledUnderLoad) {
  CreateStock(kSkus, kInitialStock);
  const auto serve = StartServe();
  StartLoad();
  for (int i = 0; i < 2; ++i) {
    Run(2500ms);
    KillServe(serve);
    Run(500ms);
    RestartServe(serve);
  }
  Run(2500ms);
  Finish("serve-kill", {}, 2);
}

TEST_F(Fault, RedisKilledAppendfsyncEverysec) { RedisKilled("everysec", "redis-kill-everysec"); }

TEST_F(Fault, RedisKilledAppendfsyncAlways) { RedisKilled("always", "redis-kill-always"); }

TEST_F(Fault, PostgresStoppedTenSeconds) {
  CreateStock(kSkus, kInitialStock);
  StartServe();
  StartLoad();
  Run(2500ms);
  testing::DatabaseOutage outage;
  outage.Begin();
  Run(10s);
  outage.End();
  Run(3000ms);
  Finish("postgres-stop");
}

TEST_F(Fault, PostgresCrashedMidBatch) {
  CreateStock(kSkus, kInitialStock);
  // Every commit of the service's sessions waits 50 ms before its WAL flush, so that with four
  // persister threads under load an immediate shutdown almost always lands during a COMMIT.
  Sql("ALTER DATABASE invsync SET commit_delay = 50000");
  Sql("ALTER DATABASE invsync SET commit_siblings = 0");
  StartServe({"--persister-batch-wait", "20ms"});
  StartLoad();
  for (int i = 0; i < 3; ++i) {
    Run(2000ms);
    CrashPostgres();
    StartPostgres();
  }
  Run(2500ms);
  Sql("ALTER DATABASE invsync RESET commit_delay");
  Sql("ALTER DATABASE invsync RESET commit_siblings");
  Finish("postgres-crash", {}, 3);
}

// SQLite has one writer at a time: a tool that holds the write lock (an open write transaction
// of a back office, a migration) keeps the persister from writing until it lets go. The
// persister's writes wait out their busy timeout and are retried with backoff; orders of cached
// SKUs keep being answered, and the backlog is written once the lock is released.
TEST_F(Fault, SqliteWriteLockedTenSeconds) {
  CreateStock(kSkus, kInitialStock);
  StartServe();
  StartLoad();
  Run(2500ms);
  {
    testing::SqlSession tool;
    tool.Query("BEGIN IMMEDIATE");
    Run(10s);
    const std::int64_t held_back = Unpersisted();
    std::cout << "events waiting for the lock when it was released: " << held_back << "\n";
    EXPECT_GT(held_back, 0) << "the held lock kept nothing from the database";
    tool.Query("COMMIT");
  }
  Run(3000ms);
  Finish("write-lock");
}

TEST_F(Fault, RedisFlushallUnderLoad) {
  CreateStock(kSkus, kInitialStock);
  StartServe();
  StartLoad();
  Run(2500ms);
  DirectRedis().Command({"FLUSHALL"});
  Run(3000ms);
  Finish("redis-flushall", {.redis_data_loss = true});
}

TEST_F(Fault, SyncerLeaderKilledWithStandby) {
  CreateStock(kSkus, kInitialStock);
  StartServe();
  StartServe();
  StartLoad();
  std::atomic<bool> stop{false};
  std::thread backoffice([&] {
    testing::SqlSession database;
    std::mt19937 random(7);
    while (!stop) {
      const std::string sku = skus_[random() % skus_.size()];
      const std::int64_t delta = 1 + random() % 5;
      database.Query(fmt::format("UPDATE inventory SET quantity = quantity + {} WHERE sku = '{}'",
                                 delta, sku));
      AddBackoffice(sku, delta);
      std::this_thread::sleep_for(20ms);
    }
  });
  for (int i = 0; i < 2; ++i) {
    Run(2500ms);
    std::string leader;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          try {
            testing::HttpClient client(serve(0).port, 2s);
            auto status = nlohmann::json::parse(client.Send("GET", "/v1/status").body);
            const auto& named = status["syncer"]["leader"];
            leader = named.is_string() ? named.get<std::string>() : std::string();
          } catch (const std::exception&) {
            leader.clear();
          }
          return !leader.empty();
        },
        10s));
    const pid_t pid = std::stoi(leader.substr(leader.rfind('-') + 1));
    const std::size_t index = serve(0).process->pid() == pid ? 0 : 1;
    ASSERT_EQ(serve(index).process->pid(), pid) << "leader " << leader << " is no child of ours";
    KillServe(index);
    Run(2500ms);
    RestartServe(index);
  }
  Run(1500ms);
  stop = true;
  backoffice.join();
  Finish("syncer-leader-kill", {}, 2);
}

TEST_F(Fault, RedisNetworkDelayAndCuts) {
  CreateStock(kSkus, kInitialStock);
  Proxy proxy("127.0.0.1", EnvPort("INVSYNC_TEST_REDIS_PORT"));
  StartServe({"--redis-url", fmt::format("redis://127.0.0.1:{}/0", proxy.port())});
  StartLoad();
  const auto faults = NetworkFaults(proxy);
  Finish("redis-network", {}, faults);
}

TEST_F(Fault, PostgresNetworkDelayAndCuts) {
  CreateStock(kSkus, kInitialStock);
  Proxy proxy("127.0.0.1", EnvPort("INVSYNC_TEST_PG_PORT"));
  StartServe(
      {"--database-url", fmt::format("postgresql://invsync@127.0.0.1:{}/invsync", proxy.port())});
  StartLoad();
  const auto faults = NetworkFaults(proxy);
  Finish("postgres-network", {}, faults);
}

// The wall clock of the service jumps an hour forward, back, and an hour behind, while it
// serves. Its monotonic clock is left alone: a clock step by NTP or an operator moves only
// CLOCK_REALTIME. Reconciles every second inside serve stamp their reports with the process's
// wall clock: they show the jump reached it.
TEST_F(Fault, WallClockJumps) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("faketime-{}", getpid());
  std::filesystem::create_directories(dir);
  const auto file = (dir / "offset").string();
  const auto jump = [&](const char* offset) { std::ofstream(file) << offset << "\n"; };
  jump("+0");
  CreateStock(kSkus, kInitialStock);
  StartServe({"--reconcile-interval", "1s"},
             {"LD_PRELOAD=" INVSYNC_LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE=" + file,
              "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"});
  StartLoad();
  Run(2000ms);
  jump("+1h");
  Run(2500ms);
  EXPECT_GT(LastReconcileAheadBy(serve(0).port), 50min) << "the clock jump did not reach serve";
  jump("+0");
  Run(2500ms);
  jump("-1h");
  Run(2500ms);
  jump("+0");
  Run(1500ms);
  Finish("clock-jump", {}, 3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace invsync::fault
