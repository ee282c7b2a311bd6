// invsync-bench: the end-to-end benchmark suite's load generator, peers, audit and report.
//
//   invsync-bench reset                       fresh Redis and database (before each run)
//   invsync-bench run --scenario S --target T [...] --out FILE
//   invsync-bench report --results DIR --doc docs/benchmarks.md --plots docs/bench
//
// scripts/bench-suite runs them in order; `--help` after a subcommand lists its flags.
#include <fmt/format.h>

#include <iostream>
#include <stdexcept>

#include "bench_support.hpp"
#include "common/numbers.hpp"
#include "report.hpp"
#include "scenarios.hpp"

namespace {

using invsync::bench::Flags;

int Reset(int argc, char** argv) {
  Flags flags("invsync-bench reset", "Empties Redis and recreates the database schema.");
  invsync::bench::AddServerFlags(flags);
  if (!flags.Parse(argc, argv)) {
    return 0;
  }
  invsync::bench::ResetState(invsync::bench::ResolveServers(flags));
  return 0;
}

int Run(int argc, char** argv) {
  Flags flags("invsync-bench run",
              "Runs one scenario against one target, audits it and writes the result as JSON.\n"
              "Exits 1 if the audit of invsync or db-only finds a violation (naive-cache's are "
              "findings).");
  invsync::bench::AddServerFlags(flags);
  flags.Add("scenario", "flash-sale", "flash-sale | catalogue | backoffice");
  flags.Add("target", "invsync", "invsync | db-only | naive-cache");
  flags.Add("url", "", "invsync serve's base URL, http://127.0.0.1:PORT (target invsync)");
  flags.Add("serve-pid", "0", "invsync serve's pid, for its peak RSS");
  flags.Add("connections", "64", "concurrent connections (peers: threads)");
  flags.Add("seconds", "10", "measured seconds (flash sale: how long the stock should last)");
  flags.Add("warmup", "2", "unmeasured seconds first");
  flags.Add("skus", "100000", "catalogue size");
  flags.Add("order-rate", "1000", "backoffice: orders per second (open loop)");
  flags.Add("backoffice-rate", "20", "backoffice: SQL changes per second");
  flags.Add("out", "", "result file (JSON)");
  if (!flags.Parse(argc, argv)) {
    return 0;
  }
  invsync::bench::ScenarioOptions options{
      .scenario = flags.String("scenario"),
      .target = invsync::bench::ParseTarget(flags.String("target")),
      .servers = invsync::bench::ResolveServers(flags),
      .serve_pid = static_cast<pid_t>(flags.Int("serve-pid", 0, 1 << 30)),
      .connections = static_cast<int>(flags.Int("connections", 1, 4096)),
      .seconds = flags.Seconds("seconds"),
      .warmup = flags.Seconds("warmup"),
      .skus = flags.Int("skus", 1, 10'000'000),
      .order_rate = static_cast<double>(flags.Int("order-rate", 1, 1'000'000)),
      .backoffice_rate = static_cast<double>(flags.Int("backoffice-rate", 1, 10'000)),
  };
  if (options.target == invsync::bench::Target::kInvsync) {
    const std::string url = flags.String("url");
    const std::string prefix = "http://127.0.0.1:";
    auto port =
        url.starts_with(prefix) ? invsync::ParseInt64(url.substr(prefix.size())) : std::nullopt;
    if (!port || *port <= 0 || *port > 65535) {
      throw std::invalid_argument("--url must be http://127.0.0.1:PORT for target invsync");
    }
    options.port = static_cast<std::uint16_t>(*port);
  }
  auto doc = invsync::bench::RunScenario(options);
  const auto& audit = doc["audit"];
  std::cout << fmt::format(
      "RESULT {} {} c={}: {:.0f} requests/s, {:.0f} orders/s, p50 {:.2f} ms, p99 {:.2f} ms, "
      "p999 {:.2f} ms; audit: {}\n",
      options.scenario, invsync::bench::TargetName(options.target), options.connections,
      doc["requests_per_s"].get<double>(), doc["orders_per_s"].get<double>(),
      doc["latency"]["p50_ms"].get<double>(), doc["latency"]["p99_ms"].get<double>(),
      doc["latency"]["p999_ms"].get<double>(), audit["summary"].get<std::string>());
  for (const auto& example : audit["examples"]) {
    std::cout << "  violation: " << example.get<std::string>() << '\n';
  }
  if (!flags.String("out").empty()) {
    invsync::bench::WriteJson(flags.String("out"), doc);
  }
  const bool expected_clean = options.target != invsync::bench::Target::kNaiveCache;
  return expected_clean && !audit["clean"].get<bool>() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "reset") {
      return Reset(argc - 1, argv + 1);
    }
    if (command == "run") {
      return Run(argc - 1, argv + 1);
    }
    if (command == "report") {
      return invsync::bench::Report(argc - 1, argv + 1);
    }
    std::cerr << "usage: invsync-bench reset|run|report [FLAGS] (--help after one for its flags)\n";
    return 2;
  } catch (const std::invalid_argument& error) {
    std::cerr << "invsync-bench: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "invsync-bench: " << error.what() << '\n';
    return 3;
  }
}
