#include "zipf.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace invsync::bench {

ZipfSampler::ZipfSampler(std::size_t n, double s) : cumulative_(n) {
  if (n == 0 || !(s > 0)) {
    throw std::invalid_argument("Zipf needs at least one item and s > 0");
  }
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    cumulative_[i] = sum;
  }
  for (double& value : cumulative_) {
    value /= sum;
  }
  cumulative_.back() = 1.0;
}

std::size_t ZipfSampler::Sample(std::mt19937_64& rng) const {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  return std::min<std::size_t>(static_cast<std::size_t>(it - cumulative_.begin()),
                               cumulative_.size() - 1);
}

double ZipfSampler::Probability(std::size_t rank) const {
  if (rank >= cumulative_.size()) {
    return 0;
  }
  return rank == 0 ? cumulative_[0] : cumulative_[rank] - cumulative_[rank - 1];
}

}  // namespace invsync::bench
