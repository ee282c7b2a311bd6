// The `invsync` command line against real servers: outputs, one clear line per error, and the
// documented exit codes (0 ok, 1 refused, 2 invalid, 3 unavailable).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "servers.hpp"

namespace invsync::testing {
namespace {

class CliTest : public ServersTest {
 protected:
  static Outcome Run(const std::vector<std::string>& args) {
    return RunInvsync(INVSYNC_BINARY, args);
  }
};

TEST_F(CliTest, SetGetDeductAndCancelRoundTrip) {
  EXPECT_EQ(Run({"set", "A", "10"}).code, 0);
  auto get = Run({"get", "A"});
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "A 10\n");
  auto deduct = Run({"--json", "deduct", "o1", "A:3"});
  ASSERT_EQ(deduct.code, 0) << deduct.err;
  auto body = nlohmann::json::parse(deduct.out);
  EXPECT_EQ(body["status"], "deducted");
  EXPECT_EQ(body["lines"][0]["remaining"], 7);
  EXPECT_EQ(Run({"cancel", "o1"}).code, 0);
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(CliTest, RefusalsExitOneWithOneLine) {
  ASSERT_EQ(Run({"set", "A", "5"}).code, 0);
  auto short_stock = Run({"deduct", "o1", "A:6"});
  EXPECT_EQ(short_stock.code, 1);
  EXPECT_EQ(short_stock.err,
            "invsync: insufficient stock for A: requested 6, available 5; nothing was deducted\n");
  EXPECT_EQ(Run({"get", "GHOST"}).code, 1);
  EXPECT_EQ(Run({"cancel", "never"}).code, 1);
  ASSERT_EQ(Run({"deduct", "o2", "A:1"}).code, 0);
  auto conflict = Run({"--json", "deduct", "o2", "A:2"});
  EXPECT_EQ(conflict.code, 1);
  EXPECT_EQ(nlohmann::json::parse(conflict.out)["error"]["code"], "order_conflict");
  EXPECT_EQ(RedisQuantity("A"), 4);
}

TEST_F(CliTest, InvalidInputExitsTwoWithOneLineAndChangesNothing) {
  ASSERT_EQ(Run({"set", "A", "5"}).code, 0);
  const std::vector<std::vector<std::string>> bad = {
      {"deduct", "o1", "A"},
      {"deduct", "o1", "A:x"},
      {"deduct", "o1", "A:0"},
      {"deduct", "bad id", "A:1"},
      {"deduct", "o1", "A:1", "A:1"},
      {"restock", "A", "many"},
      {"set", "A", "--", "-5"},
      {"get", std::string(200, 's')},
      {"no-such-command"},
      {},
  };
  for (const auto& args : bad) {
    auto outcome = Run(args);
    std::string shown;
    for (const auto& arg : args) {
      shown += arg + " ";
    }
    EXPECT_EQ(outcome.code, 2) << shown << "\n" << outcome.err;
    EXPECT_GE(CountLines(outcome.err), 1) << shown;
  }
  EXPECT_EQ(RedisQuantity("A"), 5);
  EXPECT_EQ(Redis({"XLEN", "invsync:events"}).AsInteger(), 1);  // only the set
}

// With --json every failure is the error document on standard output, whichever layer finds it:
// the arguments, the configuration, or a server out of reach. Without it, one line on stderr.
TEST_F(CliTest, EveryFailureIsAJsonDocumentWithJson) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"--json", "get"}, 2, "invalid_argument"},
      {{"--json", "no-such-command"}, 2, "invalid_argument"},
      {{"--json", "--persister-batch-size", "0", "status"}, 2, "invalid_configuration"},
      {{"--json", "--redis-url", "redis://127.0.0.1:1", "--redis-timeout", "200ms", "get", "A"},
       3,
       "unavailable"},
  };
  for (const auto& c : cases) {
    auto outcome = Run(c.args);
    SCOPED_TRACE(c.args.back());
    EXPECT_EQ(outcome.code, c.code) << outcome.err;
    const auto document = nlohmann::json::parse(outcome.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(document.is_object()) << "stdout: " << outcome.out << "\nstderr: " << outcome.err;
    EXPECT_EQ(document["error"]["code"], c.error) << outcome.out;
    EXPECT_FALSE(document["error"]["message"].get<std::string>().empty());
  }
  auto plain = Run({"get"});
  EXPECT_EQ(plain.code, 2);
  EXPECT_EQ(CountLines(plain.err), 1) << plain.err;
  EXPECT_TRUE(plain.err.starts_with("invsync: ")) << plain.err;
}

TEST_F(CliTest, BadSettingsNameTheSettingAndExitTwo) {
  auto outcome = Run({"--persister-batch-size", "0", "status"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_NE(outcome.err.find("persister.batch_size"), std::string::npos) << outcome.err;
  EXPECT_EQ(CountLines(outcome.err), 1) << outcome.err;
}

// --listen is --server-listen by a shorter name: both at once is refused, not resolved by a rule
// the user cannot see.
TEST_F(CliTest, ListenGivenUnderBothNamesIsRefused) {
  auto outcome = Run({"--listen", "127.0.0.1:8081", "--server-listen", "127.0.0.1:8082", "status"});
  EXPECT_EQ(outcome.code, 2);
  EXPECT_NE(outcome.err.find("--listen"), std::string::npos) << outcome.err;
  EXPECT_NE(outcome.err.find("--server-listen"), std::string::npos) << outcome.err;
  EXPECT_EQ(CountLines(outcome.err), 1) << outcome.err;
}

TEST_F(CliTest, UnreachableRedisExitsThree) {
  auto outcome =
      Run({"--redis-url", "redis://127.0.0.1:1", "--redis-timeout", "200ms", "get", "A"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_NE(outcome.err.find("unavailable"), std::string::npos) << outcome.err;
}

TEST_F(CliTest, RestockWithTheSameRequestIdChangesStockOnce) {
  ASSERT_EQ(Run({"set", "A", "5"}).code, 0);
  EXPECT_EQ(Run({"restock", "A", "3", "--request-id", "r1"}).out, "A 8\n");
  EXPECT_EQ(Run({"restock", "A", "3", "--request-id", "r1"}).out,
            "A 8 (request already done; nothing changed)\n");
  EXPECT_EQ(RedisQuantity("A"), 8);
}

TEST_F(CliTest, StatusReportsUnpersistedEventsUntilThePersisterDrainsThem) {
  ASSERT_EQ(Run({"set", "A", "5"}).code, 0);
  auto before = nlohmann::json::parse(Run({"--json", "status"}).out);
  EXPECT_EQ(before["persister"]["unpersisted"], 1) << before;
  EXPECT_EQ(before["database"], "ok");
  Drain();
  auto after = Run({"--json", "status"});
  EXPECT_EQ(after.code, 0);
  EXPECT_EQ(nlohmann::json::parse(after.out)["persister"]["unpersisted"], 0);
  auto text = Run({"status"});
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("outbox     0 unapplied"), std::string::npos) << text.out;
  EXPECT_EQ(DatabaseQuantity("A"), 5);
}

TEST_F(CliTest, ServeMigratesPersistsAndStopsCleanlyOnSigterm) {
  ResetDatabase();
  InvsyncProcess serve(INVSYNC_BINARY, {"serve"});
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          return SqlInt("SELECT count(*) FROM invsync_migrations") > 0;
        } catch (const Error&) {
          return false;  // no such table yet
        }
      },
      std::chrono::seconds(30)))
      << "serve did not migrate the database";
  ASSERT_EQ(Run({"set", "A", "10"}).code, 0);
  ASSERT_EQ(Run({"deduct", "o1", "A:3"}).code, 0);
  EXPECT_TRUE(WaitFor([&] { return DatabaseQuantity("A") == 7; }, std::chrono::seconds(15)))
      << "serve's persister did not write the deduction";
  serve.Signal(SIGTERM);
  auto status = serve.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "serve did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

// A service started while Redis is down (it restarts, or comes up after the service) stays up:
// it answers 503 meanwhile, and once Redis is back it takes orders, its persisters write them
// and its syncer applies back-office changes, without being restarted.
TEST_F(CliTest, ServeStartedWhileRedisIsDownWorksOnceRedisIsBack) {
  ASSERT_EQ(Run({"set", "A", "10"}).code, 0);
  Drain();
  RedisOutage outage;
  outage.Begin();
  const std::uint16_t port = FreePort();
  InvsyncProcess serve(INVSYNC_BINARY, {"--listen", fmt::format("127.0.0.1:{}", port),
                                        "--syncer-poll-interval", "100ms", "serve"});
  auto order = [&](const std::string& id) {
    try {
      return HttpClient(port, std::chrono::seconds(5))
          .Send(
              "POST", "/v1/orders",
              nlohmann::json{{"order_id", id}, {"lines", {{{"sku", "A"}, {"quantity", 1}}}}}.dump())
          .status;
    } catch (const std::exception&) {
      return 0;  // not listening (yet)
    }
  };
  int status = 0;
  ASSERT_TRUE(WaitFor([&] { return (status = order("o1")) != 0; }, std::chrono::seconds(20)))
      << "serve did not start listening while Redis was down";
  EXPECT_EQ(status, 503);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(order("o1"), 503) << "serve ended while Redis was down";
  outage.End();
  ASSERT_TRUE(WaitFor(
      [&] {
        try {
          Redis({"PING"});  // the test's own connection broke with the restart
          return true;
        } catch (const Error&) {
          return false;
        }
      },
      std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return order("o1") == 201; }, std::chrono::seconds(20)))
      << "no order was taken after Redis came back";
  EXPECT_TRUE(WaitFor([&] { return DatabaseQuantity("A") == 9; }, std::chrono::seconds(15)))
      << "serve's persisters did not write the order";
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  EXPECT_TRUE(WaitFor([&] { return RedisQuantity("A") == 14; }, std::chrono::seconds(15)))
      << "serve's syncer did not apply the back-office change";
  serve.Signal(SIGTERM);
  auto ended = serve.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(ended.has_value()) << "serve did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*ended) && WEXITSTATUS(*ended) == 0);
}

// `serve --demo` started before its Redis (a compose file starting both at once) waits for it
// and loads the demo catalogue once it answers.
TEST_F(CliTest, ServeDemoStartedBeforeRedisLoadsTheCatalogueOnceRedisIsUp) {
  RedisOutage outage;
  outage.Begin();
  InvsyncProcess serve(INVSYNC_BINARY, {"--listen", "127.0.0.1:0", "serve", "--demo"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  outage.End();
  EXPECT_TRUE(WaitFor([&] { return DatabaseQuantity("SKU-12") == 120; }, std::chrono::seconds(20)))
      << "the demo catalogue was not loaded once Redis was up";
  EXPECT_EQ(DatabaseQuantity("SKU-1"), 10);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM inventory"), 12);
  serve.Signal(SIGTERM);
  auto ended = serve.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(ended.has_value()) << "serve did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*ended) && WEXITSTATUS(*ended) == 0);
}

TEST_F(CliTest, ReconcileReportsRepairsAndExitsByWhatItFound) {
  ASSERT_EQ(Run({"set", "A", "10"}).code, 0);
  Drain();
  auto clean = Run({"reconcile"});
  EXPECT_EQ(clean.code, 0) << clean.err;
  EXPECT_NE(clean.out.find("1 SKUs checked"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("0 drifted"), std::string::npos) << clean.out;

  Redis({"HSET", "inventory:A", "quantity", "3"});
  auto found = Run({"--json", "reconcile"});
  EXPECT_EQ(found.code, 1);
  auto report = nlohmann::json::parse(found.out);
  ASSERT_EQ(report["drifted"].size(), 1U) << report;
  EXPECT_EQ(report["drifted"][0]["sku"], "A");
  EXPECT_EQ(report["drifted"][0]["redis"], "3");
  EXPECT_EQ(report["drifted"][0]["expected"], 10);
  EXPECT_EQ(report["drifted"][0]["repaired"], false);
  EXPECT_EQ(RedisQuantity("A"), 3);

  auto repaired = Run({"reconcile", "--repair"});
  EXPECT_EQ(repaired.code, 0) << repaired.out;
  EXPECT_NE(repaired.out.find("drift     A  redis 3  database 10  expected 10  repaired"),
            std::string::npos)
      << repaired.out;
  EXPECT_EQ(RedisQuantity("A"), 10);
  auto status = nlohmann::json::parse(Run({"--json", "status"}).out);
  EXPECT_EQ(status["last_reconcile"]["repaired"], 1) << status;
}

// The database restored to an earlier point in time: the syncer's cursor in Redis lies ahead of
// every change to come. `status` says so (exit 3), a running syncer neither applies nor prunes the
// changes, and the documented way out, `reconcile --repair --reset-cursor`, brings them to Redis.
TEST_F(CliTest, ACursorAheadOfARestoredDatabaseIsReportedAndResetByReconcile) {
  ASSERT_EQ(Run({"set", "A", "10"}).code, 0);
  Drain();
  const std::int64_t ahead =
      TestOnSqlite()
          ? SqlInt("SELECT seq FROM sqlite_sequence WHERE name = 'invsync_outbox'") + 1000
          : SqlInt("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint") + 1000;
  Redis({"SET", "invsync:outbox:cursor",
         TestOnSqlite() ? fmt::format("0:{}", ahead) : fmt::format("{}:{}", ahead, ahead)});
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  Sql("UPDATE inventory SET quantity = quantity + 5 WHERE sku = 'A'");
  // Older than the retention: only the cursor keeps them from being pruned.
  Sql(TestOnSqlite() ? "UPDATE invsync_outbox SET changed_at = changed_at - 1"
                     : "UPDATE invsync_outbox SET changed_at = changed_at - interval '1 day'");

  auto text = Run({"status"});
  EXPECT_EQ(text.code, 3);
  EXPECT_NE(text.out.find("syncer     PROBLEM: the syncer cursor"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("--reset-cursor"), std::string::npos) << text.out;
  auto document = nlohmann::json::parse(Run({"--json", "status"}).out);
  EXPECT_TRUE(document["syncer"]["problem"].is_string()) << document;
  EXPECT_TRUE(document["outbox"]["unapplied"].is_null()) << document;
  EXPECT_EQ(document["outbox"]["cursor_matches_database"], false) << document;
  {
    InvsyncProcess sync(INVSYNC_BINARY, {"--syncer-poll-interval", "100ms", "sync"});
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    sync.Signal(SIGTERM);
    EXPECT_TRUE(sync.Wait(std::chrono::seconds(10)).has_value());
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_outbox"), 2) << "unapplied changes were pruned";
  EXPECT_EQ(RedisQuantity("A"), 10);

  EXPECT_EQ(Run({"reconcile", "--reset-cursor"}).code, 2) << "a reset without the repair";
  auto reset = Run({"reconcile", "--repair", "--reset-cursor"});
  EXPECT_EQ(reset.code, 0) << reset.out << reset.err;
  EXPECT_EQ(RedisQuantity("A"), 20);
  auto after = Run({"--json", "status"});
  EXPECT_EQ(after.code, 0) << after.out;
  EXPECT_TRUE(nlohmann::json::parse(after.out)["syncer"]["problem"].is_null()) << after.out;
  InvsyncProcess sync(INVSYNC_BINARY, {"--syncer-poll-interval", "100ms", "sync"});
  Sql("UPDATE inventory SET quantity = quantity + 1 WHERE sku = 'A'");
  EXPECT_TRUE(WaitFor([&] { return RedisQuantity("A") == 21; }, std::chrono::seconds(10)))
      << "a change after the reset did not reach Redis";
  sync.Signal(SIGTERM);
  EXPECT_TRUE(sync.Wait(std::chrono::seconds(10)).has_value());
}

TEST_F(CliTest, ServeRunsScheduledReconcilesThatRepairWhenAsked) {
  ASSERT_EQ(Run({"set", "A", "10"}).code, 0);
  Drain();
  InvsyncProcess serve(INVSYNC_BINARY, {"--listen", "127.0.0.1:0", "--reconcile-interval", "200ms",
                                        "--reconcile-repair", "true", "serve"});
  Redis({"HSET", "inventory:A", "quantity", "4"});
  EXPECT_TRUE(WaitFor([&] { return RedisQuantity("A") == 10; }, std::chrono::seconds(10)))
      << "the scheduled reconcile did not repair the drift";
  serve.Signal(SIGTERM);
  EXPECT_TRUE(serve.Wait(std::chrono::seconds(20)).has_value());
}

}  // namespace
}  // namespace invsync::testing
