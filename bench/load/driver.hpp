#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "schedule.hpp"
#include "workload.hpp"

namespace invsync::bench {

/// What one run of requests produced, every request's outcome included.
struct RunResult {
  double seconds = 0;  ///< first intended send to last answer
  std::int64_t requests = 0;
  std::array<std::int64_t, 4> outcomes{};  ///< by Outcome
  std::map<int, std::int64_t> statuses;    ///< by HTTP status (0: no answer)
  LatencyHistogram all;
  LatencyHistogram reads;
  LatencyHistogram orders;
  LatencyHistogram cancels;
  std::vector<Record> records;  ///< orders and cancels, for the audit

  void Merge(RunResult&& other);
  [[nodiscard]] std::int64_t Count(Outcome outcome) const {
    return outcomes[static_cast<std::size_t>(outcome)];
  }
  [[nodiscard]] nlohmann::json ToJson() const;
};

/// How a run is driven.
struct DriveOptions {
  int connections = 64;
  /// A flash sale: the run stops at the first refusal that reports no stock left.
  bool stop_when_sold_out = false;
  std::uint64_t seed = 1;
};

/// Shared by every connection loop: records a request's outcome and lets the workload and the
/// schedule react to it. One per connection (no locking).
class Recorder {
 public:
  Recorder(Workload& workload, Schedule& schedule, const DriveOptions& options)
      : workload_(workload), schedule_(schedule), options_(options) {}

  void Done(Operation&& op, const Answer& answer, Clock::time_point intended,
            Clock::time_point done);
  [[nodiscard]] RunResult Take(Clock::time_point end) &&;

 private:
  Workload& workload_;
  Schedule& schedule_;
  const DriveOptions& options_;
  RunResult result_;
};

/// A client with one blocking connection to its stores (a peer: the shop's own code).
class BlockingClient {
 public:
  virtual ~BlockingClient() = default;
  /// Runs one request; never throws (failures are answers).
  virtual Answer Execute(const Operation& op) = 0;
};
using ClientFactory = std::function<std::unique_ptr<BlockingClient>()>;

/// Runs the workload on `connections` threads, each with its own client.
[[nodiscard]] RunResult DriveBlocking(const ClientFactory& factory, Workload& workload,
                                      Schedule& schedule, const DriveOptions& options);

/// Runs the workload over HTTP/1.1 keep-alive connections to invsync serve at host:port, all
/// from one thread's event loop (asynchronous, as wrk does).
[[nodiscard]] RunResult DriveHttp(const std::string& host, std::uint16_t port, Workload& workload,
                                  Schedule& schedule, const DriveOptions& options);

}  // namespace invsync::bench
