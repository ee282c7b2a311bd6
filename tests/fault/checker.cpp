#include "checker.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace invsync::fault {

namespace {

using EventKey = std::pair<std::string, std::string>;  // (kind, ref)
using Deltas = std::map<std::string, std::int64_t>;    // sku -> delta

void Tally(const Op& op, Counts& counts) {
  ++counts.sent;
  const Answer& a = op.first;
  if (a.Unknown()) {
    ++counts.unknown;
  } else if (a.Success()) {
    ++counts.ok;
  } else if (a.status == 409) {
    ++counts.conflict;
  } else if (a.Refused()) {
    ++counts.other_4xx;
  } else {
    ++counts.server_error;
  }
  if (op.retry) {
    ++counts.retried;
    counts.retry_ok += op.retry->Success() ? 1 : 0;
  }
}

Counts& CountsOf(Report& report, OpKind kind) {
  switch (kind) {
    case OpKind::kOrder:
      return report.orders;
    case OpKind::kCancel:
      return report.cancels;
    case OpKind::kRestock:
      return report.restocks;
  }
  return report.orders;
}

// What the ledger must hold for `op` if it was applied: SKU -> delta.
Deltas Expected(const Op& op, const std::map<std::string, const Op*>& orders) {
  Deltas deltas;
  const std::vector<Line>* lines = &op.lines;
  if (op.kind == OpKind::kCancel) {
    auto order = orders.find(op.id);
    if (order == orders.end()) {
      return deltas;
    }
    lines = &order->second->lines;
  }
  for (const auto& line : *lines) {
    deltas[line.sku] = op.kind == OpKind::kOrder ? -line.quantity : line.quantity;
  }
  return deltas;
}

std::string Describe(const Op& op) {
  std::string text = fmt::format(
      "{} {} (first answer {}", op.EventKind(), op.id,
      op.first.Unknown() ? "unknown: " + op.first.error : std::to_string(op.first.status));
  if (op.retry) {
    text += fmt::format(", retry {}", op.retry->Unknown() ? "unknown: " + op.retry->error
                                                          : std::to_string(op.retry->status));
  }
  return text + ")";
}

// True if the retry was answered as a replay of an earlier attempt (orders: 200 instead of
// 201; cancels and restocks: "replayed": true).
bool Replayed(const Op& op) {
  if (!op.retry || !op.retry->Success()) {
    return false;
  }
  if (op.kind == OpKind::kOrder) {
    return op.retry->status == 200;
  }
  return op.retry->body.find("\"replayed\":true") != std::string::npos;
}

class Judge {
 public:
  Judge(const Observed& observed, const CheckOptions& options, Report& report)
      : observed_(observed), options_(options), report_(report) {
    for (const auto& row : observed.ledger) {
      ledger_[{row.kind, row.ref}][row.sku] += row.delta;
      ++report.ledger_rows;
    }
  }

  void Operations(const std::vector<Op>& ops) {
    std::map<std::string, const Op*> orders;
    for (const auto& op : ops) {
      if (op.kind == OpKind::kOrder) {
        orders[op.id] = &op;
      }
    }
    std::set<EventKey> sent;
    for (const auto& op : ops) {
      Tally(op, CountsOf(report_, op.kind));
      sent.insert({op.EventKind(), op.id});
      One(op, Expected(op, orders));
    }
    for (const auto& [key, deltas] : ledger_) {
      if (!sent.contains(key)) {
        Violation("ledger event {}:{} matches no request sent", key.first, key.second);
      }
      if (key.first == "cancel" && !ledger_.contains({"deduct", key.second})) {
        Violation("order {} is cancelled in the ledger but its deduction is not", key.second);
      }
    }
  }

  void Stock() {
    std::map<std::string, std::int64_t> ledger_sum;
    std::map<std::string, std::int64_t> restocked;
    for (const auto& row : observed_.ledger) {
      ledger_sum[row.sku] += row.delta;
      if (row.kind == "restock") {
        restocked[row.sku] += row.delta;
      } else if (row.kind == "deduct" || row.kind == "cancel") {
        report_.units_sold -= row.delta;
      }
    }
    for (const auto& [sku, initial] : observed_.initial) {
      ++report_.skus;
      Sku(sku, initial, ledger_sum[sku], restocked[sku]);
    }
    if (!observed_.drained) {
      Violation("the persister and the syncer did not drain (pending events or outbox rows)");
    }
    if (!observed_.reconcile_clean) {
      Violation("invsync reconcile is not clean: {}", observed_.reconcile_summary);
    }
  }

 private:
  template <typename... Args>
  void Violation(fmt::format_string<Args...> format, Args&&... args) {
    report_.violations.push_back(fmt::format(format, std::forward<Args>(args)...));
  }

  // Redis lost its data on purpose, or `answer` came while Redis may have been holding back its
  // AOF writes (see CheckOptions): what it reported may be gone with Redis's data.
  [[nodiscard]] bool MayBeLostWithRedis(const Answer& answer) const {
    if (options_.redis_data_loss) {
      return true;
    }
    if (!options_.redis_killed_at) {
      return false;
    }
    const auto killed = *options_.redis_killed_at;
    return answer.at >= killed - CheckOptions::kAofHeldBack &&
           answer.at <= killed + CheckOptions::kAnswersInFlight;
  }

  void One(const Op& op, const Deltas& expected) {
    auto found = ledger_.find({op.EventKind(), op.id});
    const bool applied = found != ledger_.end();
    if (applied && found->second != expected) {
      Violation("{} is in the ledger partly or with wrong deltas ({} rows, {} expected)",
                Describe(op), found->second.size(), expected.size());
    }
    if (applied && op.first.Uncertain() && (!op.Acknowledged() || Replayed(op))) {
      ++CountsOf(report_, op.kind).uncertain_applied;
    }
    // The API promises that a 503 changed nothing (docs/api.md, "Retrying"): then a retry
    // cannot be answered as a replay.
    if (applied && op.first.status == 503 && (!op.Acknowledged() || Replayed(op))) {
      Violation("{} was answered 503 (nothing changed) but was applied by it", Describe(op));
    }
    if (op.Acknowledged() && !applied) {
      // The answer that acknowledged it: a retry's success is judged by the retry's time.
      const Answer& acknowledged = op.first.Success() ? op.first : *op.retry;
      if (MayBeLostWithRedis(acknowledged)) {
        ++report_.lost_to_data_loss;
        report_.lost_ids.push_back(op.EventKind() + ":" + op.id);
      } else {
        Violation("{} was acknowledged but is not in the ledger", Describe(op));
      }
    }
    const bool refused = (op.first.Refused() && !op.retry) || (op.retry && op.retry->Refused());
    if (refused && applied && !op.Acknowledged()) {
      // After a Redis data loss a retry no longer finds the first attempt's idempotency record.
      if (!(op.first.Uncertain() && MayBeLostWithRedis(op.first))) {
        Violation("{} was refused but is in the ledger", Describe(op));
      }
    }
  }

  void Sku(const std::string& sku, std::int64_t initial, std::int64_t ledger_sum,
           std::int64_t restocked) {
    const auto backoffice_it = observed_.backoffice.find(sku);
    const std::int64_t backoffice =
        backoffice_it == observed_.backoffice.end() ? 0 : backoffice_it->second;
    const std::int64_t expected = initial + ledger_sum + backoffice;
    const auto db_it = observed_.database.find(sku);
    if (db_it == observed_.database.end()) {
      return Violation("{}: no inventory row in the database", sku);
    }
    const std::int64_t database = db_it->second;
    if (database != expected) {
      Violation("{}: database {} != initial {} + ledger {} + back office {} = {}", sku, database,
                initial, ledger_sum, backoffice, expected);
    }
    const auto redis_it = observed_.redis.find(sku);
    if (redis_it == observed_.redis.end() || !redis_it->second) {
      Violation("{}: not in Redis after a read", sku);
    } else if (*redis_it->second != database) {
      Violation("{}: Redis {} != database {}", sku, *redis_it->second, database);
    } else if (*redis_it->second < 0) {
      Violation("{}: negative stock in Redis ({})", sku, *redis_it->second);
    }
    if (database < 0) {
      Violation("{}: negative stock in the database ({})", sku, database);
    }
    // The ledger holds restocks, deductions and cancels: what was sold is what it lost net.
    const std::int64_t sold = restocked - ledger_sum;
    if (sold > initial + restocked + std::max<std::int64_t>(backoffice, 0)) {
      Violation("{}: oversold: {} units sold of {} initial + {} restocked + {} back office", sku,
                sold, initial, restocked, backoffice);
    }
  }

  const Observed& observed_;
  const CheckOptions& options_;
  Report& report_;
  std::map<EventKey, Deltas> ledger_;
};

std::string FormatCounts(const char* name, const Counts& c) {
  return fmt::format(
      "  {:<8} sent {:>6}  2xx {:>6}  409 {:>5}  4xx {:>4}  5xx {:>4}  unknown {:>4}  retried "
      "{:>4} "
      "(2xx {:>4})  applied-by-uncertain {:>4}\n",
      name, c.sent, c.ok, c.conflict, c.other_4xx, c.server_error, c.unknown, c.retried, c.retry_ok,
      c.uncertain_applied);
}

nlohmann::json CountsJson(const Counts& c) {
  return {{"sent", c.sent},
          {"2xx", c.ok},
          {"409", c.conflict},
          {"4xx", c.other_4xx},
          {"5xx", c.server_error},
          {"unknown", c.unknown},
          {"retried", c.retried},
          {"retry_2xx", c.retry_ok},
          {"uncertain_applied", c.uncertain_applied}};
}

}  // namespace

std::string Report::Format(const std::string& schedule) const {
  std::string text =
      fmt::format("fault schedule {}: {} violation(s)\n", schedule, violations.size());
  text += FormatCounts("orders", orders);
  text += FormatCounts("cancels", cancels);
  text += FormatCounts("restocks", restocks);
  text += fmt::format("  faults {}, ledger rows {}, SKUs {}, units sold (net) {}", faults,
                      ledger_rows, skus, units_sold);
  if (lost_to_data_loss > 0 || !lost_ids.empty()) {
    text += fmt::format(", lost with Redis's data {}", lost_to_data_loss);
  }
  text += "\n";
  constexpr std::size_t kShown = 50;
  for (std::size_t i = 0; i < violations.size() && i < kShown; ++i) {
    text += "  VIOLATION: " + violations[i] + "\n";
  }
  if (violations.size() > kShown) {
    text += fmt::format("  ... and {} more\n", violations.size() - kShown);
  }
  for (std::size_t i = 0; i < lost_ids.size() && i < 20; ++i) {
    text += "  lost with Redis's data: " + lost_ids[i] + "\n";
  }
  return text;
}

std::string Report::Json(const std::string& schedule) const {
  nlohmann::json doc = {{"schedule", schedule},
                        {"orders", CountsJson(orders)},
                        {"cancels", CountsJson(cancels)},
                        {"restocks", CountsJson(restocks)},
                        {"faults", faults},
                        {"ledger_rows", ledger_rows},
                        {"skus", skus},
                        {"units_sold", units_sold},
                        {"lost_to_data_loss", lost_to_data_loss},
                        {"violations", violations}};
  return doc.dump();
}

Report Check(const std::vector<Op>& ops, const Observed& observed, const CheckOptions& options) {
  Report report;
  Judge judge(observed, options, report);
  judge.Operations(ops);
  judge.Stock();
  return report;
}

}  // namespace invsync::fault
