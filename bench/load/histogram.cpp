#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace invsync::bench {

namespace {

constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
constexpr std::int64_t kSub = std::int64_t{1} << kSubBits;
constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

std::size_t LatencyHistogram::BucketOf(std::int64_t nanos) {
  const auto value = static_cast<std::uint64_t>(std::max<std::int64_t>(nanos, 0));
  if (value < static_cast<std::uint64_t>(kSub)) {
    return static_cast<std::size_t>(value);
  }
  // Values in [2^k, 2^(k+1)) with k >= kSubBits split into kSub equal sub-buckets.
  const int k = static_cast<int>(std::bit_width(value)) - 1;
  const int shift = k - kSubBits;
  const auto sub = static_cast<std::size_t>((value >> shift) - static_cast<std::uint64_t>(kSub));
  return static_cast<std::size_t>(shift + 1) * kSub + sub;
}

std::int64_t LatencyHistogram::UpperEdge(std::size_t bucket) {
  const auto group = static_cast<std::int64_t>(bucket) / kSub;
  const auto sub = static_cast<std::int64_t>(bucket) % kSub;
  if (group == 0) {
    return sub;
  }
  const std::int64_t shift = group - 1;
  return ((kSub + sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  const std::int64_t nanos = std::max<std::int64_t>(latency.count(), 0);
  ++buckets_[BucketOf(nanos)];
  ++count_;
  max_ = std::max(max_, nanos);
  sum_ += static_cast<double>(nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    buckets_[i] += other.buckets_[i];
  }
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::MeanMillis() const {
  return count_ == 0 ? 0 : sum_ / static_cast<double>(count_) / 1e6;
}

double LatencyHistogram::QuantileMillis(double q) const {
  if (count_ == 0) {
    return 0;
  }
  const auto rank = std::clamp<std::int64_t>(
      static_cast<std::int64_t>(std::ceil(q * static_cast<double>(count_))), 1, count_);
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return static_cast<double>(std::min(UpperEdge(i), max_)) / 1e6;
    }
  }
  return static_cast<double>(max_) / 1e6;
}

std::vector<std::pair<double, double>> LatencyHistogram::Cumulative() const {
  std::vector<std::pair<double, double>> points;
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets_[i] == 0) {
      continue;
    }
    seen += buckets_[i];
    points.emplace_back(static_cast<double>(std::min(UpperEdge(i), max_)) / 1e6,
                        static_cast<double>(seen) / static_cast<double>(count_));
  }
  return points;
}

}  // namespace invsync::bench
