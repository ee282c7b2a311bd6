#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "history.hpp"

namespace invsync::fault {

/// The load: several client threads sending orders (1 to 3 lines over a few hot SKUs), cancels
/// of orders they placed and restocks, each with a unique id and a short timeout, recording
/// every request and its answer.
struct WorkloadOptions {
  std::vector<std::string> skus;
  std::vector<std::uint16_t> ports;  ///< `invsync serve` instances, used round robin
  int threads = 6;
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds think{3};  ///< pause between a thread's requests
  int cancel_percent = 10;
  int restock_percent = 8;
  std::string id_prefix = "f";
};

/// Runs the clients on their own threads between Start() and Stop().
class Workload {
 public:
  Workload(WorkloadOptions options, History& history);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Start();
  void Stop();
  /// Requests sent so far.
  [[nodiscard]] std::int64_t sent() const { return sent_; }
  /// Sends every request whose first answer was uncertain (none, or 5xx) again with the same
  /// id to `port`, until it gets a definite answer (or `attempts` run out), and records it.
  void RetryUncertain(std::uint16_t port, int attempts = 10);

 private:
  void Client(int index);

  WorkloadOptions options_;
  History& history_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> sent_{0};
  std::vector<std::thread> threads_;
};

/// Sends `op` once to 127.0.0.1:port and returns what came back (status 0 on a transport
/// failure or timeout).
Answer Send(const Op& op, std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace invsync::fault
