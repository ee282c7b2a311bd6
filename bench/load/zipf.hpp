#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace invsync::bench {

/// Draws ranks 0..n-1 with probability proportional to 1 / (rank + 1)^s (Zipf's law): rank 0 is
/// the most popular item. Exact: a cumulative table of n entries searched by bisection.
class ZipfSampler {
 public:
  ZipfSampler(std::size_t n, double s);

  [[nodiscard]] std::size_t Sample(std::mt19937_64& rng) const;
  /// Probability of `rank` (for tests and reports).
  [[nodiscard]] double Probability(std::size_t rank) const;
  [[nodiscard]] std::size_t size() const { return cumulative_.size(); }

 private:
  std::vector<double> cumulative_;  ///< cumulative_[i] = P(rank <= i); the last is 1
};

}  // namespace invsync::bench
