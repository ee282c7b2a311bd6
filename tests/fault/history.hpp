#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace invsync::fault {

/// What a client asked for.
enum class OpKind { kOrder, kCancel, kRestock };

/// One line of an order, or the SKU and quantity of a restock.
struct Line {
  std::string sku;
  std::int64_t quantity = 0;
};

/// What one attempt was told: an HTTP status and body, or status 0 when the outcome is unknown
/// (timeout, reset, refused connection); `error` then says which.
struct Answer {
  int status = 0;
  std::string body;
  std::string error;
  std::chrono::steady_clock::time_point at{};  ///< when it came

  [[nodiscard]] bool Unknown() const { return status == 0; }
  [[nodiscard]] bool Success() const { return status >= 200 && status < 300; }
  /// A refusal that, by the API's contract, changed nothing.
  [[nodiscard]] bool Refused() const { return status >= 400 && status < 500; }
  /// No answer, or one that does not say whether the change happened (5xx).
  [[nodiscard]] bool Uncertain() const { return Unknown() || status >= 500; }
};

/// One request of the history with every answer its id got: the first attempt and, for an
/// uncertain one, the retry with the same id after the fault healed.
struct Op {
  OpKind kind = OpKind::kOrder;
  std::string id;  ///< order id (orders and cancels) or request id (restocks)
  std::vector<Line> lines;
  Answer first;
  std::optional<Answer> retry;

  /// The ledger's event kind for this operation ("deduct", "cancel", "restock").
  [[nodiscard]] std::string EventKind() const;
  /// True if any attempt was answered 2xx.
  [[nodiscard]] bool Acknowledged() const;
};

/// Every operation the clients sent; safe to append from many threads.
class History {
 public:
  void Add(Op op);
  /// A copy of everything recorded so far.
  [[nodiscard]] std::vector<Op> Ops() const;
  /// Replaces the record (used after retries filled in `retry`).
  void Replace(std::vector<Op> ops);

 private:
  mutable std::mutex mutex_;
  std::vector<Op> ops_;
};

}  // namespace invsync::fault
