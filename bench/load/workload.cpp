#include "workload.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace invsync::bench {

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)), popularity_(options_.skus.size(), options_.zipf_s) {}

Operation Workload::Make(std::int64_t index, std::mt19937_64& rng) {
  const double draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  if (draw < options_.cancel_share) {
    if (auto cancel = TakeCancellable(rng)) {
      return std::move(*cancel);
    }
  }
  if (draw < options_.cancel_share + options_.read_share) {
    return {.kind = OpKind::kRead, .sku = options_.skus[popularity_.Sample(rng)]};
  }
  Operation order{.kind = OpKind::kOrder, .order_id = fmt::format("{}-{}", options_.tag, index)};
  const auto lines = std::min<std::size_t>(
      std::uniform_int_distribution<int>(options_.min_lines, options_.max_lines)(rng),
      options_.skus.size());
  std::uniform_int_distribution<std::int64_t> units(options_.min_units, options_.max_units);
  while (order.lines.size() < lines) {
    const std::string& sku = options_.skus[popularity_.Sample(rng)];
    auto same = [&](const OrderLine& line) { return line.sku == sku; };
    if (std::none_of(order.lines.begin(), order.lines.end(), same)) {
      order.lines.push_back({sku, units(rng)});
    }
  }
  std::sort(order.lines.begin(), order.lines.end(),
            [](const OrderLine& a, const OrderLine& b) { return a.sku < b.sku; });
  return order;
}

void Workload::Accepted(const Operation& order) {
  if (options_.cancel_share <= 0) {
    return;
  }
  std::lock_guard lock(mutex_);
  cancellable_.push_back(
      {.kind = OpKind::kCancel, .order_id = order.order_id, .lines = order.lines});
}

std::optional<Operation> Workload::TakeCancellable(std::mt19937_64& rng) {
  std::lock_guard lock(mutex_);
  if (cancellable_.empty()) {
    return std::nullopt;
  }
  const auto pick = std::uniform_int_distribution<std::size_t>(0, cancellable_.size() - 1)(rng);
  std::swap(cancellable_[pick], cancellable_.back());
  Operation cancel = std::move(cancellable_.back());
  cancellable_.pop_back();
  return cancel;
}

std::string CatalogueSku(std::size_t rank) { return fmt::format("SKU-{}", rank); }

std::vector<std::string> CatalogueSkus(std::size_t count) {
  std::vector<std::string> skus;
  skus.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    skus.push_back(CatalogueSku(i));
  }
  return skus;
}

}  // namespace invsync::bench
