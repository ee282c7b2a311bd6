#include "driver.hpp"

#include <thread>

namespace invsync::bench {

namespace {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kError:
      return "error";
    case Outcome::kTransport:
      return "no_answer";
  }
  return "?";
}

nlohmann::json Latency(const LatencyHistogram& histogram) {
  return {{"count", histogram.count()},
          {"mean_ms", histogram.MeanMillis()},
          {"p50_ms", histogram.QuantileMillis(0.50)},
          {"p90_ms", histogram.QuantileMillis(0.90)},
          {"p99_ms", histogram.QuantileMillis(0.99)},
          {"p999_ms", histogram.QuantileMillis(0.999)},
          {"max_ms", static_cast<double>(histogram.max().count()) / 1e6}};
}

}  // namespace

void RunResult::Merge(RunResult&& other) {
  seconds = std::max(seconds, other.seconds);
  requests += other.requests;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    outcomes[i] += other.outcomes[i];
  }
  for (const auto& [status, count] : other.statuses) {
    statuses[status] += count;
  }
  all.Merge(other.all);
  reads.Merge(other.reads);
  orders.Merge(other.orders);
  cancels.Merge(other.cancels);
  records.insert(records.end(), std::make_move_iterator(other.records.begin()),
                 std::make_move_iterator(other.records.end()));
}

nlohmann::json RunResult::ToJson() const {
  nlohmann::json outcome_counts = nlohmann::json::object();
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    outcome_counts[OutcomeName(static_cast<Outcome>(i))] = outcomes[i];
  }
  nlohmann::json status_counts = nlohmann::json::object();
  for (const auto& [status, count] : statuses) {
    status_counts[std::to_string(status)] = count;
  }
  nlohmann::json cdf = nlohmann::json::array();
  for (const auto& [ms, fraction] : all.Cumulative()) {
    cdf.push_back({ms, fraction});
  }
  return {{"seconds", seconds},
          {"requests", requests},
          {"requests_per_s", seconds > 0 ? static_cast<double>(requests) / seconds : 0},
          {"orders_per_s", seconds > 0 ? static_cast<double>(orders.count()) / seconds : 0},
          {"outcomes", outcome_counts},
          {"statuses", status_counts},
          {"latency", Latency(all)},
          {"latency_reads", Latency(reads)},
          {"latency_orders", Latency(orders)},
          {"latency_cancels", Latency(cancels)},
          {"cdf", cdf}};
}

void Recorder::Done(Operation&& op, const Answer& answer, Clock::time_point intended,
                    Clock::time_point done) {
  const auto latency = done - intended;
  ++result_.requests;
  ++result_.outcomes[static_cast<std::size_t>(answer.outcome)];
  ++result_.statuses[answer.status];
  result_.all.Record(latency);
  switch (op.kind) {
    case OpKind::kRead:
      result_.reads.Record(latency);
      return;
    case OpKind::kOrder:
      result_.orders.Record(latency);
      break;
    case OpKind::kCancel:
      result_.cancels.Record(latency);
      break;
  }
  if (op.kind == OpKind::kOrder && answer.outcome == Outcome::kOk) {
    workload_.Accepted(op);
  }
  if (options_.stop_when_sold_out && answer.outcome == Outcome::kRefused && answer.available == 0) {
    schedule_.Stop();
  }
  result_.records.push_back({.kind = op.kind,
                             .order_id = std::move(op.order_id),
                             .lines = std::move(op.lines),
                             .outcome = answer.outcome});
}

RunResult Recorder::Take(Clock::time_point end) && {
  result_.seconds = std::chrono::duration<double>(end - schedule_.start()).count();
  return std::move(result_);
}

RunResult DriveBlocking(const ClientFactory& factory, Workload& workload, Schedule& schedule,
                        const DriveOptions& options) {
  std::vector<RunResult> results(static_cast<std::size_t>(options.connections));
  {
    std::vector<std::jthread> threads;
    threads.reserve(static_cast<std::size_t>(options.connections));
    for (int c = 0; c < options.connections; ++c) {
      threads.emplace_back([&, c] {
        auto client = factory();
        std::mt19937_64 rng(options.seed * 7919 + static_cast<std::uint64_t>(c));
        Recorder recorder(workload, schedule, options);
        while (auto ticket = schedule.Next(Clock::now())) {
          std::this_thread::sleep_until(ticket->intended);
          Operation op = workload.Make(ticket->index, rng);
          const Answer answer = client->Execute(op);
          recorder.Done(std::move(op), answer, ticket->intended, Clock::now());
        }
        results[static_cast<std::size_t>(c)] = std::move(recorder).Take(Clock::now());
      });
    }
  }
  RunResult total;
  for (auto& result : results) {
    total.Merge(std::move(result));
  }
  return total;
}

}  // namespace invsync::bench
