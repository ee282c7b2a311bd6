#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "checker.hpp"
#include "history.hpp"
#include "process.hpp"
#include "servers.hpp"
#include "workload.hpp"

namespace invsync::fault {

/// One `invsync serve` child on a fixed port, so that a restart comes back where clients
/// expect it.
struct ServeInstance {
  std::uint16_t port = 0;
  std::vector<std::string> args;
  std::vector<std::string> env;  ///< NAME=VALUE added to the child's environment
  std::unique_ptr<testing::InvsyncProcess> process;
};

/// Base of the fault schedules: stock in the database, `invsync serve` children, the workload,
/// the fault helpers, and Finish(): heal, retry, drain, observe, check.
class FaultTest : public testing::ServersTest {
 protected:
  void SetUp() override;
  void TearDown() override;

  /// Inserts `count` SKUs with `quantity` each (plain SQL, as a back office would).
  void CreateStock(int count, std::int64_t quantity);
  /// Starts one more `invsync serve` on a free port with `extra` flags before `serve`; returns
  /// its index. Waits until /healthz answers.
  std::size_t StartServe(std::vector<std::string> extra = {}, std::vector<std::string> env = {});
  void KillServe(std::size_t index);  ///< SIGKILL, reaped
  void RestartServe(std::size_t index);
  [[nodiscard]] ServeInstance& serve(std::size_t index) { return serves_.at(index); }

  /// Starts the clients against every serve started so far.
  void StartLoad(WorkloadOptions options = {});
  /// Lets the load run for `duration`.
  static void Run(std::chrono::milliseconds duration);

  /// SIGKILL to redis-server (pid from the with-services work dir), then waits until it is gone.
  static void KillRedis();
  static void StartRedis();
  /// PostgreSQL's immediate shutdown (SIGQUIT to the postmaster: no checkpoint, crash recovery
  /// on the next start), then waits until it is gone.
  static void CrashPostgres();
  static void StopPostgres();
  static void StartPostgres();
  /// Records a back-office delta the test committed in SQL.
  void AddBackoffice(const std::string& sku, std::int64_t delta);

  /// Stops the load, retries the uncertain requests, waits for the drain, reads both stores,
  /// runs `invsync reconcile` and checks the history. Prints the report (and writes it to
  /// $INVSYNC_FAULT_REPORT_DIR/<schedule>.json if set); fails the test on any violation. The
  /// schedule is `name`, prefixed with `sqlite:` on the SQLite store.
  Report Finish(const std::string& name, CheckOptions options = {}, std::int64_t faults = 1);

  std::vector<std::string> skus_;
  History history_;

 private:
  bool WaitDrained(std::chrono::seconds limit);
  Observed Observe();
  std::uint16_t LivePort();

  std::string store_name_;  ///< "sqlite:" on the SQLite store, else empty
  std::map<std::string, std::int64_t> initial_;
  std::mutex backoffice_mutex_;
  std::map<std::string, std::int64_t> backoffice_;
  std::vector<ServeInstance> serves_;
  std::unique_ptr<Workload> workload_;
};

/// The pid in the first line of `path` (a pid file), or -1.
pid_t ReadPidFile(const std::string& path);
/// Waits until `pid` is gone or a zombie (not our child: cannot be reaped here).
bool WaitGone(pid_t pid, std::chrono::milliseconds limit);

}  // namespace invsync::fault
