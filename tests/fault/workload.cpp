#include "workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "http_client.hpp"

namespace invsync::fault {

namespace {

struct Request {
  std::string method;
  std::string target;
  std::string body;
};

Request RequestFor(const Op& op) {
  switch (op.kind) {
    case OpKind::kOrder: {
      nlohmann::json lines = nlohmann::json::array();
      for (const auto& line : op.lines) {
        lines.push_back({{"sku", line.sku}, {"quantity", line.quantity}});
      }
      return {"POST", "/v1/orders", nlohmann::json{{"order_id", op.id}, {"lines", lines}}.dump()};
    }
    case OpKind::kCancel:
      return {"POST", fmt::format("/v1/orders/{}/cancel", op.id), ""};
    case OpKind::kRestock:
      return {
          "POST", fmt::format("/v1/inventory/{}/restock", op.lines.front().sku),
          nlohmann::json{{"quantity", op.lines.front().quantity}, {"request_id", op.id}}.dump()};
  }
  return {};
}

}  // namespace

Answer Send(const Op& op, std::uint16_t port, std::chrono::milliseconds timeout) {
  const Request request = RequestFor(op);
  try {
    testing::HttpClient client(port, timeout);
    auto reply = client.Send(request.method, request.target, request.body);
    return {.status = reply.status,
            .body = std::move(reply.body),
            .error = "",
            .at = std::chrono::steady_clock::now()};
  } catch (const std::exception& error) {
    return {.status = 0, .body = "", .error = error.what(), .at = std::chrono::steady_clock::now()};
  }
}

Workload::Workload(WorkloadOptions options, History& history)
    : options_(std::move(options)), history_(history) {}

Workload::~Workload() { Stop(); }

void Workload::Start() {
  stop_ = false;
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this, i] { Client(i); });
  }
}

void Workload::Stop() {
  stop_ = true;
  for (auto& thread : threads_) {
    thread.join();
  }
  threads_.clear();
}

// One client: a fresh connection per request, so that a request never waits behind a dead
// keep-alive connection and every answer belongs to exactly one attempt.
void Workload::Client(int index) {
  std::mt19937_64 random(static_cast<std::uint64_t>(index) * 7919 + 17);
  std::vector<Op> placed;  // orders answered 2xx, not yet cancelled
  std::int64_t serial = 0;
  const auto percent = [&] { return static_cast<int>(random() % 100); };
  while (!stop_) {
    Op op;
    const int roll = percent();
    if (roll < options_.cancel_percent && !placed.empty()) {
      const std::size_t pick = random() % placed.size();
      op.kind = OpKind::kCancel;
      op.id = placed[pick].id;
      placed.erase(placed.begin() + static_cast<std::ptrdiff_t>(pick));
    } else if (roll < options_.cancel_percent + options_.restock_percent) {
      op.kind = OpKind::kRestock;
      op.id = fmt::format("{}-r{}-{}", options_.id_prefix, index, serial++);
      op.lines.push_back({options_.skus[random() % options_.skus.size()],
                          static_cast<std::int64_t>(1 + random() % 40)});
    } else {
      op.kind = OpKind::kOrder;
      op.id = fmt::format("{}-o{}-{}", options_.id_prefix, index, serial++);
      std::vector<std::string> skus = options_.skus;
      std::shuffle(skus.begin(), skus.end(), random);
      const std::size_t count = 1 + random() % 3;
      for (std::size_t i = 0; i < count && i < skus.size(); ++i) {
        op.lines.push_back({skus[i], static_cast<std::int64_t>(1 + random() % 3)});
      }
    }
    const std::uint16_t port =
        options_.ports[static_cast<std::size_t>(sent_.load()) % options_.ports.size()];
    op.first = Send(op, port, options_.timeout);
    ++sent_;
    if (op.kind == OpKind::kOrder && op.first.Success()) {
      placed.push_back(op);
    }
    history_.Add(std::move(op));
    std::this_thread::sleep_for(options_.think);
  }
}

void Workload::RetryUncertain(std::uint16_t port, int attempts) {
  auto ops = history_.Ops();
  for (auto& op : ops) {
    if (!op.first.Uncertain()) {
      continue;
    }
    for (int i = 0; i < attempts; ++i) {
      op.retry = Send(op, port, std::chrono::seconds(5));
      if (!op.retry->Uncertain()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  history_.Replace(std::move(ops));
}

}  // namespace invsync::fault
