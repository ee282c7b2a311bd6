// The zero-configuration run: no Redis and no database configured, so `invsync serve` runs on the
// embedded SQLite store in its data directory with a redis-server of its own, which it restarts
// when it dies (no stock lost: AOF) and stops when it stops.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "process.hpp"
#include "redis/client.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;

class ZeroConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("invsync-zero-config-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Outcome Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data-dir", dir_.string()});
    return RunInvsync(INVSYNC_BINARY, args, Servers::kOwn);
  }

  /// The managed Redis's process id, nullopt if it does not answer.
  std::optional<std::int64_t> RedisPid() {
    try {
      redis::Endpoint endpoint;
      endpoint.unix_path = (dir_ / "redis.sock").string();
      redis::Connection connection(endpoint, 200ms);
      const auto info = connection.Command({"INFO", "server"}).AsString();
      const auto at = info.find("process_id:");
      return ParseInt64(info.substr(at + 11, info.find('\r', at) - at - 11));
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  /// A process's state letter from /proc (R, S, T stopped, Z zombie, ...); 'X' when it is gone.
  static char State(std::int64_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
      return 'X';
    }
    const auto state = line.rfind(") ");
    return state == std::string::npos || state + 2 >= line.size() ? 'X' : line.at(state + 2);
  }

  /// Whether a process has ended (a zombie counts: it is gone but for its exit status).
  static bool Ended(std::int64_t pid) { return State(pid) == 'X' || State(pid) == 'Z'; }

  /// How many TCP sockets `pid` holds: the managed Redis listens on none (port 0, unix socket).
  static int TcpSocketsHeldBy(std::int64_t pid) {
    std::set<std::string> tcp;  // socket inodes
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream file(table);
      std::string line;
      std::getline(file, line);  // header
      while (std::getline(file, line)) {
        std::istringstream fields(line);
        std::string field;
        for (int i = 0; i < 10 && fields >> field; ++i) {
        }
        tcp.insert("socket:[" + field + "]");
      }
    }
    int held = 0;
    const auto fds = std::filesystem::path("/proc") / std::to_string(pid) / "fd";
    for (const auto& entry : std::filesystem::directory_iterator(fds)) {
      std::error_code error;
      held += tcp.contains(std::filesystem::read_symlink(entry.path(), error).string()) ? 1 : 0;
    }
    return held;
  }

  std::filesystem::path dir_;
};

TEST_F(ZeroConfigTest, ServeRunsItsOwnRedisOnSqliteRestartsItAndStopsIt) {
  InvsyncProcess serve(INVSYNC_BINARY,
                       {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve", "--demo"},
                       Servers::kOwn);
  std::optional<std::int64_t> first;
  ASSERT_TRUE(WaitFor([&] { return (first = RedisPid()).has_value(); }, 20s))
      << "serve did not start its Redis";
  EXPECT_FALSE(std::filesystem::exists(dir_ / "redis.sock") &&
               std::filesystem::is_regular_file(dir_ / "redis.sock"));
  // The demo catalogue, through the CLI on the same directory (no URLs either).
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cli({"get", "SKU-3"}).out == "SKU-3 30\n";
      },
      10s))
      << Cli({"get", "SKU-3"}).err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "invsync.db"));
  auto deducted = Cli({"deduct", "o1", "SKU-3:2"});
  ASSERT_EQ(deducted.code, 0) << deducted.err;
  std::this_thread::sleep_for(1500ms);  // appendfsync everysec

  ASSERT_EQ(kill(static_cast<pid_t>(*first), SIGKILL), 0);
  std::optional<std::int64_t> second;
  ASSERT_TRUE(WaitFor([&] { return (second = RedisPid()) && *second != *first; }, 10s))
      << "the managed Redis was not restarted";
  auto after = Cli({"get", "SKU-3"});
  EXPECT_EQ(after.out, "SKU-3 28\n") << after.err;  // nothing lost across the restart
  // Started while the service listens and has clients: it must not hold their sockets (a
  // connection the service closes would stay open for its client).
  EXPECT_EQ(TcpSocketsHeldBy(*second), 0);

  // A back-office change made with the sqlite3 tool reaches Redis.
  const std::string update = "sqlite3 " + (dir_ / "invsync.db").string() +
                             " \"UPDATE inventory SET quantity = quantity + 100 WHERE sku = "
                             "'SKU-3'\"";
  ASSERT_EQ(std::system(update.c_str()), 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return Cli({"get", "SKU-3"}).out == "SKU-3 128\n";
      },
      1s))
      << Cli({"get", "SKU-3"}).out;

  serve.Signal(SIGTERM);
  auto status = serve.Wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_TRUE(WaitFor([&] { return kill(static_cast<pid_t>(*second), 0) != 0; }, 5s))
      << "the managed Redis outlived the service";
}

TEST_F(ZeroConfigTest, TheManagedRedisDiesWithAKilledService) {
  InvsyncProcess serve(INVSYNC_BINARY,
                       {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve"},
                       Servers::kOwn);
  std::optional<std::int64_t> pid;
  ASSERT_TRUE(WaitFor([&] { return (pid = RedisPid()).has_value(); }, 20s));
  serve.Signal(SIGKILL);
  serve.Wait(10s);
  EXPECT_TRUE(WaitFor([&] { return kill(static_cast<pid_t>(*pid), 0) != 0; }, 5s))
      << "the managed Redis outlived a killed service";
}

// Two services on one data directory share the Redis the first one runs; when that one ends, the
// other runs its own on the same data, and nothing is lost.
TEST_F(ZeroConfigTest, ASecondServiceOnTheDirectoryTakesOverItsRedisWhenTheFirstEnds) {
  InvsyncProcess first(INVSYNC_BINARY,
                       {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve", "--demo"},
                       Servers::kOwn);
  std::optional<std::int64_t> before;
  ASSERT_TRUE(WaitFor([&] { return (before = RedisPid()).has_value(); }, 20s));
  ASSERT_TRUE(WaitFor([&] { return Cli({"get", "SKU-3"}).out == "SKU-3 30\n"; }, 10s));
  InvsyncProcess second(INVSYNC_BINARY,
                        {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve"},
                        Servers::kOwn);
  std::this_thread::sleep_for(2s);  // the second is up, using the first one's Redis
  EXPECT_EQ(RedisPid(), before);
  auto deducted = Cli({"deduct", "o1", "SKU-3:2"});
  ASSERT_EQ(deducted.code, 0) << deducted.err;

  first.Signal(SIGTERM);
  ASSERT_TRUE(first.Wait(30s).has_value());
  std::optional<std::int64_t> after;
  ASSERT_TRUE(WaitFor([&] { return (after = RedisPid()) && *after != *before; }, 10s))
      << "no Redis after the first service ended";
  EXPECT_EQ(Cli({"get", "SKU-3"}).out, "SKU-3 28\n");

  second.Signal(SIGTERM);
  ASSERT_TRUE(second.Wait(30s).has_value());
  EXPECT_TRUE(WaitFor([&] { return kill(static_cast<pid_t>(*after), 0) != 0; }, 5s))
      << "the Redis the second service started outlived it";
}

// The service that ran the Redis is killed while its Redis is slow to exit (busy with a script
// here; in life, writing its AOF): the other one waits for that Redis to be gone before starting
// its own, since the old one removes the socket path as it exits, which would cut the new one off
// for good.
TEST_F(ZeroConfigTest, TheServiceTakingOverWaitsForTheOldRedisToExit) {
  auto first = std::make_unique<InvsyncProcess>(
      INVSYNC_BINARY,
      std::vector<std::string>{"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve",
                               "--demo"},
      Servers::kOwn);
  std::optional<std::int64_t> old_redis;
  ASSERT_TRUE(WaitFor([&] { return (old_redis = RedisPid()).has_value(); }, 20s));
  ASSERT_TRUE(WaitFor([&] { return Cli({"get", "SKU-3"}).out == "SKU-3 30\n"; }, 10s));
  InvsyncProcess second(INVSYNC_BINARY,
                        {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve"},
                        Servers::kOwn);
  std::this_thread::sleep_for(2s);  // the second is up, using the first one's Redis
  std::jthread busy([this] {
    try {
      redis::Endpoint endpoint;
      endpoint.unix_path = (dir_ / "redis.sock").string();
      redis::Connection connection(endpoint, 30s);
      // Four seconds of a script that wrote (so it cannot be killed): Redis answers BUSY
      // meanwhile and acts on a SIGTERM only after it.
      (void)connection.Command({"EVAL",
                                "redis.call('SET', KEYS[1], '1') "
                                "local stop_at = tonumber(redis.call('TIME')[1]) + 4 "
                                "while tonumber(redis.call('TIME')[1]) < stop_at do end return 1",
                                "1", "zero-config-test:busy"});
    } catch (const Error&) {
    }
  });
  std::this_thread::sleep_for(500ms);
  first->Signal(
      SIGKILL);  // its Redis gets SIGTERM (parent-death signal) and exits after the script
  first->Wait(10s);
  ASSERT_TRUE(WaitFor([&] { return Ended(*old_redis); }, 20s));
  std::optional<std::int64_t> new_redis;
  ASSERT_TRUE(WaitFor([&] { return (new_redis = RedisPid()) && *new_redis != *old_redis; }, 10s))
      << "no Redis after the old one exited";
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(RedisPid(), new_redis);  // still answering on the socket path
  EXPECT_EQ(Cli({"get", "SKU-3"}).out, "SKU-3 30\n");
  second.Signal(SIGTERM);
  ASSERT_TRUE(second.Wait(30s).has_value());
}

// A Redis of the service's own that runs but cannot be reached (its socket file removed) is
// restarted rather than left while every request fails.
TEST_F(ZeroConfigTest, ARunningRedisThatCannotBeReachedIsRestarted) {
  InvsyncProcess serve(INVSYNC_BINARY,
                       {"--data-dir", dir_.string(), "--listen", "127.0.0.1:0", "serve", "--demo"},
                       Servers::kOwn);
  std::optional<std::int64_t> first;
  ASSERT_TRUE(WaitFor([&] { return (first = RedisPid()).has_value(); }, 20s));
  ASSERT_TRUE(WaitFor([&] { return Cli({"get", "SKU-3"}).out == "SKU-3 30\n"; }, 10s));
  std::filesystem::remove(dir_ / "redis.sock");
  std::optional<std::int64_t> second;
  ASSERT_TRUE(WaitFor([&] { return (second = RedisPid()) && *second != *first; }, 40s))
      << "the unreachable Redis was not restarted";
  EXPECT_TRUE(Ended(*first));
  EXPECT_EQ(Cli({"get", "SKU-3"}).out, "SKU-3 30\n");
  serve.Signal(SIGTERM);
  ASSERT_TRUE(serve.Wait(30s).has_value());
}

TEST_F(ZeroConfigTest, AMistypedSqlitePathIsAConfigurationErrorAndCreatesNoFile) {
  std::filesystem::create_directories(dir_);
  const auto typo = dir_ / "invsnyc.db";
  auto outcome = Cli({"--database-url", "sqlite://" + typo.string(), "get", "A"});
  EXPECT_EQ(outcome.code, 2) << outcome.err;  // not 3: retrying would not help
  EXPECT_NE(outcome.err.find(typo.string()), std::string::npos) << outcome.err;
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
  EXPECT_FALSE(std::filesystem::exists(typo));
}

TEST_F(ZeroConfigTest, AServiceGivenASqliteFileInAMissingDirectoryStopsAtOnceWithOneLine) {
  const auto missing = dir_ / "no-such-dir";
  for (const char* command : {"migrate", "serve"}) {
    const auto started = std::chrono::steady_clock::now();
    auto outcome =
        Cli({"--database-url", "sqlite://" + (missing / "invsync.db").string(), command});
    EXPECT_EQ(outcome.code, 2) << command << ": " << outcome.err;  // not a minute of retries
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10)) << command;
    EXPECT_NE(outcome.err.find(missing.string()), std::string::npos) << outcome.err;
    EXPECT_EQ(CountLines(outcome.err), 1) << outcome.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_));  // no data directory, Redis or database made
}

TEST_F(ZeroConfigTest, ACommandWithoutADatabaseSaysHowToGetOne) {
  auto outcome = Cli({"get", "A"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_NE(outcome.err.find("invsync serve"), std::string::npos) << outcome.err;
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
  EXPECT_FALSE(std::filesystem::exists(dir_));  // and created nothing
}

}  // namespace
}  // namespace invsync::testing
