#pragma once

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace invsync::bench {

/// Latencies in a log-linear histogram (as HdrHistogram): 64 sub-buckets per power of two, so a
/// quantile is within 1.6% of the true value at any scale, in constant memory. Not thread-safe:
/// one per connection, merged at the end.
class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(std::chrono::nanoseconds latency);
  void Merge(const LatencyHistogram& other);

  [[nodiscard]] std::int64_t count() const { return count_; }
  [[nodiscard]] std::chrono::nanoseconds max() const { return std::chrono::nanoseconds(max_); }
  [[nodiscard]] double MeanMillis() const;
  /// The q-quantile (0..1, nearest rank) in milliseconds: the upper edge of the bucket holding the
  /// rank, capped at the largest value recorded; 0 when empty.
  [[nodiscard]] double QuantileMillis(double q) const;
  /// (latency ms, fraction of requests at or below it) at each non-empty bucket, for plots.
  [[nodiscard]] std::vector<std::pair<double, double>> Cumulative() const;

 private:
  static std::size_t BucketOf(std::int64_t nanos);
  static std::int64_t UpperEdge(std::size_t bucket);

  std::vector<std::int64_t> buckets_;
  std::int64_t count_ = 0;
  std::int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace invsync::bench
