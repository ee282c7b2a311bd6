#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_support.hpp"
#include "stores.hpp"

namespace invsync::bench {

struct ScenarioOptions {
  std::string scenario;  ///< flash-sale | catalogue | backoffice
  Target target = Target::kInvsync;
  Servers servers;
  std::string host = "127.0.0.1";  ///< invsync serve (target invsync)
  std::uint16_t port = 0;
  pid_t serve_pid = 0;  ///< for its peak RSS; 0: not measured
  int connections = 64;
  double seconds = 10;          ///< measured part (a flash sale: the time its stock should last)
  double warmup = 2;            ///< unmeasured run first (connections, pools, caches)
  std::int64_t skus = 100'000;  ///< catalogue size
  std::int64_t catalogue_stock = 20'000;
  double order_rate = 1000;     ///< backoffice: orders per second (open loop)
  double backoffice_rate = 20;  ///< backoffice: SQL changes per second
  std::uint64_t seed = 1;
};

/// Runs a scenario against a target on servers reset beforehand (and, for invsync, a running
/// `invsync serve` on them), waits for invsync to drain, audits, and returns the result document:
/// figures, every outcome counted, latency quantiles and distribution, the audit.
[[nodiscard]] nlohmann::json RunScenario(const ScenarioOptions& options);

}  // namespace invsync::bench
