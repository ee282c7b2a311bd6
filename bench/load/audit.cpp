#include "audit.hpp"

#include <fmt/format.h>

namespace invsync::bench {

namespace {

using Deltas = std::map<std::string, std::int64_t>;

Deltas Expected(const std::vector<OrderLine>& lines, std::int64_t sign) {
  Deltas deltas;
  for (const auto& line : lines) {
    deltas[line.sku] += sign * line.quantity;
  }
  return deltas;
}

void Add(Deltas& into, const Deltas& deltas, std::int64_t sign = 1) {
  for (const auto& [sku, delta] : deltas) {
    into[sku] += sign * delta;
  }
}

// Counts a violation and keeps its description while fewer than `limit` of its kind are kept.
class Violations {
 public:
  Violations(AuditReport& report, std::size_t limit) : report_(report), limit_(limit) {}
  template <typename... Args>
  void Add(std::int64_t& counter, fmt::format_string<Args...> format, Args&&... args) {
    if (static_cast<std::size_t>(counter) < limit_) {
      report_.examples.push_back(fmt::format(format, std::forward<Args>(args)...));
    }
    ++counter;
  }

 private:
  AuditReport& report_;
  std::size_t limit_;
};

std::string Show(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : "missing";
}

}  // namespace

std::set<std::string> TouchedSkus(const AuditInput& input) {
  std::set<std::string> skus;
  for (const auto& [sku, _] : input.initial) {
    skus.insert(sku);
  }
  for (const auto& [sku, _] : input.adjustments) {
    skus.insert(sku);
  }
  for (const auto& record : input.records) {
    for (const auto& line : record.lines) {
      skus.insert(line.sku);
    }
  }
  return skus;
}

AuditReport Judge(const AuditInput& input, const Observed& observed,
                  std::size_t examples_per_kind) {
  AuditReport report;
  Violations violations(report, examples_per_kind);
  Deltas sold;  // net units per SKU: orders minus cancels
  std::set<std::string> accounted;
  for (const auto& record : input.records) {
    const bool order = record.kind == OpKind::kOrder;
    const std::string event = fmt::format("{}:{}", order ? "deduct" : "cancel", record.order_id);
    accounted.insert(event);
    const auto found = observed.ledger.find(event);
    const Deltas expected = Expected(record.lines, order ? -1 : 1);
    const bool exact = found != observed.ledger.end() && found->second == expected;
    switch (record.outcome) {
      case Outcome::kOk:
        ++(order ? report.orders_accepted : report.cancels_accepted);
        if (!exact) {
          violations.Add(order ? report.accepted_missing : report.cancels_missing,
                         "{} {} answered 2xx but the ledger {}", order ? "order" : "cancel",
                         record.order_id,
                         found == observed.ledger.end() ? "has no row of it" : "has other rows");
        }
        Add(sold, expected, -1);
        break;
      case Outcome::kRefused:
        if (order) {
          ++report.orders_refused;
        }
        if (found != observed.ledger.end()) {
          violations.Add(report.refused_present, "{} {} answered 409 but is in the ledger",
                         order ? "order" : "cancel", record.order_id);
          Add(sold, found->second, -1);
        }
        break;
      case Outcome::kError:
      case Outcome::kTransport:
        if (order) {
          ++report.orders_unknown;
        }
        if (found != observed.ledger.end()) {
          report.orders_unknown_applied += order ? 1 : 0;
          Add(sold, found->second, -1);
        }
        break;
    }
  }
  for (const auto& [event, deltas] : observed.ledger) {
    if (!accounted.contains(event)) {
      violations.Add(report.unexpected_events, "ledger event {} matches no request sent", event);
      Add(sold, deltas, -1);
    }
  }

  for (const auto& sku : TouchedSkus(input)) {
    ++report.skus_checked;
    const auto initial = input.initial.contains(sku) ? input.initial.at(sku) : 0;
    const auto adjusted = input.adjustments.contains(sku) ? input.adjustments.at(sku) : 0;
    const std::int64_t available = initial + adjusted;
    const std::int64_t net = sold.contains(sku) ? sold.at(sku) : 0;
    report.units_sold += net;
    report.units_available += available;
    if (net > available) {
      report.oversold_units += net - available;
      violations.Add(report.oversold_skus, "{}: {} units sold of {} in stock (oversold by {})", sku,
                     net, available, net - available);
    } else if (net < available && input.expect_sold_out.contains(sku)) {
      violations.Add(report.not_sold_out, "{}: {} units sold of {} although demand exceeded it",
                     sku, net, available);
    }
    const auto database =
        observed.database.contains(sku) ? observed.database.at(sku) : std::optional<std::int64_t>();
    if (database != available - net) {
      violations.Add(report.database_mismatch,
                     "{}: database quantity {}, expected {} (initial {} + adjustments {} − net "
                     "sold {})",
                     sku, Show(database), available - net, initial, adjusted, net);
    }
    const auto redis =
        observed.redis.contains(sku) ? observed.redis.at(sku) : std::optional<std::int64_t>();
    if (input.has_cache && redis != database) {
      violations.Add(report.cache_mismatch, "{}: Redis quantity {} ≠ database quantity {}", sku,
                     Show(redis), Show(database));
    }
    if ((database && *database < 0) || (input.has_cache && redis && *redis < 0)) {
      violations.Add(report.negative, "{}: negative stock (database {}, Redis {})", sku,
                     Show(database), Show(redis));
    }
  }
  return report;
}

nlohmann::json AuditReport::ToJson() const {
  return {{"clean", clean()},
          {"violations", violations()},
          {"summary", Summary()},
          {"orders_accepted", orders_accepted},
          {"orders_refused", orders_refused},
          {"orders_unknown", orders_unknown},
          {"orders_unknown_applied", orders_unknown_applied},
          {"cancels_accepted", cancels_accepted},
          {"skus_checked", skus_checked},
          {"units_sold", units_sold},
          {"units_available", units_available},
          {"accepted_missing", accepted_missing},
          {"refused_present", refused_present},
          {"cancels_missing", cancels_missing},
          {"unexpected_events", unexpected_events},
          {"oversold_units", oversold_units},
          {"oversold_skus", oversold_skus},
          {"not_sold_out", not_sold_out},
          {"database_mismatch", database_mismatch},
          {"cache_mismatch", cache_mismatch},
          {"negative", negative},
          {"examples", examples}};
}

std::string AuditReport::Summary() const {
  if (clean()) {
    return "clean";
  }
  std::string text;
  auto part = [&](std::int64_t count, std::string_view what) {
    if (count > 0) {
      text += fmt::format("{}{} {}", text.empty() ? "" : ", ", count, what);
    }
  };
  part(oversold_units, fmt::format("units oversold on {} SKU(s)", oversold_skus));
  part(accepted_missing, "accepted orders missing from the ledger");
  part(refused_present, "refused orders in the ledger");
  part(cancels_missing, "cancels not given back");
  part(unexpected_events, "unexplained ledger events");
  part(not_sold_out, "SKUs not sold out");
  part(database_mismatch, "SKUs with a wrong database quantity");
  part(cache_mismatch, "SKUs where Redis ≠ database");
  part(negative, "SKUs below zero");
  return text;
}

}  // namespace invsync::bench
