#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace invsync::bench {

using Clock = std::chrono::steady_clock;

/// When each request of a run is due. Closed loop (rate 0): as soon as a connection is free, so
/// the intended time is the send time. Open loop: request i is intended at start + i / rate,
/// whoever sends it; latency counted from that time includes any wait behind busy connections
/// (no coordinated omission).
class Schedule {
 public:
  /// `rate` requests per second, 0 for closed loop; the run ends at `start + duration` or after
  /// `max_requests` (0: no limit), whichever comes first, or when `Stop` is called.
  Schedule(Clock::time_point start, double rate, Clock::duration duration,
           std::int64_t max_requests = 0)
      : start_(start), rate_(rate), end_(start + duration), max_requests_(max_requests) {}

  struct Ticket {
    std::int64_t index = 0;
    Clock::time_point intended;
  };

  /// The next request for a connection that is free at `now`, or nullopt when the run is over.
  /// In open loop the ticket's intended time may lie ahead: the caller waits for it.
  [[nodiscard]] std::optional<Ticket> Next(Clock::time_point now) {
    if (stopped_.load(std::memory_order_relaxed)) {
      return std::nullopt;
    }
    const std::int64_t index = next_.fetch_add(1, std::memory_order_relaxed);
    if (max_requests_ > 0 && index >= max_requests_) {
      return std::nullopt;
    }
    const Clock::time_point intended = rate_ > 0 ? IntendedTime(index) : now;
    if (intended >= end_ || (rate_ <= 0 && now >= end_)) {
      return std::nullopt;
    }
    return Ticket{index, intended};
  }

  /// Intended time of request `index` in open loop.
  [[nodiscard]] Clock::time_point IntendedTime(std::int64_t index) const {
    return start_ + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(index) / rate_));
  }

  /// Ends the run early (a flash sale sold out): connections finish what they sent.
  void Stop() { stopped_.store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool stopped() const { return stopped_.load(std::memory_order_relaxed); }
  [[nodiscard]] Clock::time_point start() const { return start_; }
  [[nodiscard]] double rate() const { return rate_; }

 private:
  Clock::time_point start_;
  double rate_;
  Clock::time_point end_;
  std::int64_t max_requests_;
  std::atomic<std::int64_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace invsync::bench
