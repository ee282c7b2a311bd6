#include "fault_fixture.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/numbers.hpp"
#include "http_client.hpp"
#include "redis/client.hpp"

namespace invsync::fault {

using namespace std::chrono_literals;

namespace {

std::string WorkDir() {
  const char* dir = std::getenv("INVSYNC_TEST_WORKDIR");
  return dir == nullptr ? "" : dir;
}

bool Healthy(std::uint16_t port) {
  try {
    testing::HttpClient client(port, 1s);
    return client.Send("GET", "/healthz").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

pid_t ReadPidFile(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  if (!std::getline(file, line)) {
    return -1;
  }
  return static_cast<pid_t>(ParseInt64(line).value_or(-1));
}

bool WaitGone(pid_t pid, std::chrono::milliseconds limit) {
  return testing::WaitFor(
      [&] {
        std::ifstream stat(fmt::format("/proc/{}/stat", pid));
        std::string text;
        if (!std::getline(stat, text)) {
          return true;
        }
        auto paren = text.rfind(')');
        return paren != std::string::npos && paren + 2 < text.size() &&
               (text[paren + 2] == 'Z' || text[paren + 2] == 'X');
      },
      limit);
}

void FaultTest::SetUp() {
  ServersTest::SetUp();
  store_name_ = testing::TestOnSqlite() ? "sqlite:" : "";
}

void FaultTest::TearDown() {
  if (workload_) {
    workload_->Stop();
  }
  for (auto& instance : serves_) {
    instance.process.reset();
  }
}

void FaultTest::CreateStock(int count, std::int64_t quantity) {
  std::string values;
  for (int i = 0; i < count; ++i) {
    skus_.push_back(fmt::format("HOT-{}", i));
    initial_[skus_.back()] = quantity;
    values += fmt::format("{}('{}', {})", i == 0 ? "" : ", ", skus_.back(), quantity);
  }
  Sql("INSERT INTO inventory (sku, quantity) VALUES " + values);
}

std::size_t FaultTest::StartServe(std::vector<std::string> extra, std::vector<std::string> env) {
  ServeInstance instance;
  instance.port = testing::FreePort();
  instance.args = {"--listen",
                   fmt::format("127.0.0.1:{}", instance.port),
                   "--log-level",
                   "warn",
                   "--persister-claim-idle",
                   "1s",
                   "--syncer-poll-interval",
                   "200ms",
                   "--server-request-deadline",
                   "3s"};
  instance.args.insert(instance.args.end(), extra.begin(), extra.end());
  instance.args.emplace_back("serve");
  instance.env = std::move(env);
  serves_.push_back(std::move(instance));
  RestartServe(serves_.size() - 1);
  return serves_.size() - 1;
}

void FaultTest::KillServe(std::size_t index) {
  auto& instance = serves_.at(index);
  instance.process->Signal(SIGKILL);
  EXPECT_TRUE(instance.process->Wait(10s).has_value());
  instance.process.reset();
}

void FaultTest::RestartServe(std::size_t index) {
  auto& instance = serves_.at(index);
  // The child copies this process's environment at spawn; the additions are for it alone.
  std::vector<std::string> names;
  for (const auto& entry : instance.env) {
    const auto equals = entry.find('=');
    names.push_back(entry.substr(0, equals));
    setenv(names.back().c_str(), entry.substr(equals + 1).c_str(), 1);
  }
  instance.process = std::make_unique<testing::InvsyncProcess>(INVSYNC_BINARY, instance.args);
  for (const auto& name : names) {
    unsetenv(name.c_str());
  }
  ASSERT_TRUE(testing::WaitFor([&] { return Healthy(instance.port); }, 30s))
      << "invsync serve on port " << instance.port << " did not come up";
}

void FaultTest::StartLoad(WorkloadOptions options) {
  options.skus = skus_;
  for (const auto& instance : serves_) {
    options.ports.push_back(instance.port);
  }
  workload_ = std::make_unique<Workload>(std::move(options), history_);
  workload_->Start();
}

void FaultTest::Run(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

void FaultTest::KillRedis() {
  const pid_t pid = ReadPidFile(WorkDir() + "/redis.pid");
  ASSERT_GT(pid, 0) << "no redis.pid in INVSYNC_TEST_WORKDIR (run under scripts/with-services)";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitGone(pid, 10s));
}

void FaultTest::StartRedis() { testing::RunServerControl("INVSYNC_TEST_REDIS_START"); }

void FaultTest::CrashPostgres() {
  const pid_t pid = ReadPidFile(WorkDir() + "/postgres/data/postmaster.pid");
  ASSERT_GT(pid, 0)
      << "no postmaster.pid in INVSYNC_TEST_WORKDIR (run under scripts/with-services)";
  ASSERT_EQ(kill(pid, SIGQUIT), 0);
  ASSERT_TRUE(WaitGone(pid, 20s));
}

void FaultTest::StopPostgres() { testing::RunServerControl("INVSYNC_TEST_PG_STOP"); }

void FaultTest::StartPostgres() { testing::RunServerControl("INVSYNC_TEST_PG_START"); }

void FaultTest::AddBackoffice(const std::string& sku, std::int64_t delta) {
  std::lock_guard lock(backoffice_mutex_);
  backoffice_[sku] += delta;
}

std::uint16_t FaultTest::LivePort() {
  for (const auto& instance : serves_) {
    if (instance.process) {
      return instance.port;
    }
  }
  ADD_FAILURE() << "no invsync serve is running";
  return 0;
}

bool FaultTest::WaitDrained(std::chrono::seconds limit) {
  int quiet = 0;
  const bool drained = testing::WaitFor(
      [&] {
        std::this_thread::sleep_for(100ms);
        try {
          testing::HttpClient client(LivePort(), 2s);
          auto status = nlohmann::json::parse(client.Send("GET", "/v1/status").body);
          const bool idle = status["redis"] == "ok" && status["database"] == "ok" &&
                            status["persister"]["unpersisted"] == 0 &&
                            status["outbox"]["unapplied"] == 0;
          quiet = idle ? quiet + 1 : 0;
        } catch (const std::exception&) {
          quiet = 0;
        }
        return quiet >= 3;
      },
      limit);
  return drained;
}

Observed FaultTest::Observe() {
  Observed observed;
  observed.initial = initial_;
  {
    std::lock_guard lock(backoffice_mutex_);
    observed.backoffice = backoffice_;
  }
  testing::SqlSession database;
  for (const auto& row : database.Query("SELECT kind, ref, sku, delta FROM invsync_ledger")) {
    observed.ledger.push_back({row.at(0).value(), row.at(1).value(), row.at(2).value(),
                               ParseInt64(row.at(3).value()).value()});
  }
  for (const auto& row : database.Query("SELECT sku, quantity FROM inventory")) {
    observed.database[row.at(0).value()] = ParseInt64(row.at(1).value()).value();
  }
  // A SKU whose key Redis lost is loaded by a read first, as any client would.
  redis::Connection redis(redis::Endpoint::Parse(testing::TestRedisUrl()), 5s);
  testing::HttpClient client(LivePort(), 5s);
  for (const auto& sku : skus_) {
    EXPECT_EQ(client.Send("GET", "/v1/inventory/" + sku).status, 200) << sku;
    auto value = redis.Command({"HGET", "inventory:" + sku, "quantity"}).AsOptionalString();
    observed.redis[sku] = value ? ParseInt64(*value) : std::nullopt;
  }
  auto reconcile = testing::RunInvsync(INVSYNC_BINARY, {"reconcile", "--json"});
  observed.reconcile_clean = reconcile.code == 0;
  observed.reconcile_summary = reconcile.out + reconcile.err;
  return observed;
}

Report FaultTest::Finish(const std::string& name, CheckOptions options, std::int64_t faults) {
  const std::string schedule = store_name_ + name;
  if (workload_) {
    workload_->Stop();
    workload_->RetryUncertain(LivePort());
  }
  Observed observed;
  observed.drained = WaitDrained(90s);
  EXPECT_TRUE(observed.drained) << "persister or syncer did not drain";
  // Redis = database is judged once nothing is in flight; a second look after a pause would
  // catch a late echo that the first look raced with.
  std::this_thread::sleep_for(300ms);
  auto seen = Observe();
  seen.drained = observed.drained;
  Report report = Check(history_.Ops(), seen, options);
  report.faults = faults;
  std::cout << report.Format(schedule) << std::flush;
  if (const char* dir = std::getenv("INVSYNC_FAULT_REPORT_DIR"); dir != nullptr && *dir != '\0') {
    std::ofstream(fmt::format("{}/{}.json", dir, schedule)) << report.Json(schedule) << "\n";
    std::ofstream(fmt::format("{}/{}.txt", dir, schedule)) << report.Format(schedule);
  }
  EXPECT_TRUE(report.violations.empty()) << report.Format(schedule);
  EXPECT_GT(report.orders.ok, 100) << "the workload placed too few orders to judge";
  return report;
}

}  // namespace invsync::fault
