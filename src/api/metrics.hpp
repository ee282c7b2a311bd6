#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace invsync::api {

/// Prometheus metrics of the HTTP layer, plus whatever other parts contribute through
/// `AddSource` (cache, persister). Thread-safe; rendering takes a consistent copy.
class Metrics {
 public:
  /// Upper bounds of the latency histogram buckets, in seconds.
  static constexpr std::array<double, 13> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

  void RecordRequest(std::string_view method, std::string_view route, int status,
                     std::chrono::nanoseconds latency);
  /// Outcome of an order: "accepted", "replayed", "insufficient_stock", "order_conflict",
  /// "unknown_sku", "invalid".
  void RecordDeduction(std::string_view outcome);
  /// Failures by kind: "transient" (Redis or database unreachable), "internal".
  void RecordError(std::string_view kind);
  /// A request the I/O thread tried to answer alone (a cached read, an order): answered there,
  /// or handed to a worker (SKU not cached, Redis error or unreachable).
  void RecordFastPath(bool answered) {
    (answered ? fast_answered_ : fast_handed_over_).fetch_add(1, std::memory_order_relaxed);
  }
  /// A function appending more exposition text (called at each scrape).
  void AddSource(std::function<void(std::string&)> source);

  /// The Prometheus text exposition format (version 0.0.4).
  [[nodiscard]] std::string Render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, std::uint64_t> deductions_;
  std::map<std::string, std::uint64_t> errors_;
  std::vector<std::function<void(std::string&)>> sources_;
  std::atomic<std::uint64_t> fast_answered_{0};
  std::atomic<std::uint64_t> fast_handed_over_{0};
};

/// Appends one sample line: `name{labels} value`.
void AppendSample(std::string& out, std::string_view name, std::string_view labels, double value);
/// Appends a family's `# HELP` and `# TYPE` lines (`type`: "counter" or "gauge").
void AppendFamily(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help);
/// Appends a family of one unlabelled sample: its HELP and TYPE lines, then the sample.
void AppendMetric(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, double value);

}  // namespace invsync::api
