#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "zipf.hpp"

namespace invsync::bench {

enum class OpKind { kRead, kOrder, kCancel };

struct OrderLine {
  std::string sku;
  std::int64_t quantity = 0;
};

/// One request of a run.
struct Operation {
  OpKind kind = OpKind::kOrder;
  std::string sku;               ///< kRead
  std::string order_id;          ///< kOrder, kCancel
  std::vector<OrderLine> lines;  ///< kOrder, kCancel (the order's lines), sorted by SKU
};

/// How a request ended.
enum class Outcome {
  kOk,         ///< 2xx: done
  kRefused,    ///< 409: insufficient stock, nothing changed
  kError,      ///< any other answer: not done
  kTransport,  ///< no answer (connection lost, timeout): unknown whether it was done
};

struct Answer {
  Outcome outcome = Outcome::kTransport;
  int status = 0;               ///< HTTP status, or the equivalent for a peer
  std::int64_t available = -1;  ///< with kRefused: stock the refusal reported, if known
};

/// An order or cancel and its outcome, as the audit needs it.
struct Record {
  OpKind kind = OpKind::kOrder;
  std::string order_id;
  std::vector<OrderLine> lines;
  Outcome outcome = Outcome::kTransport;
};

struct WorkloadOptions {
  std::vector<std::string> skus;  ///< by popularity, most popular first
  double zipf_s = 1.1;
  int min_lines = 1;
  int max_lines = 1;
  std::int64_t min_units = 1;
  std::int64_t max_units = 3;
  double read_share = 0;    ///< of all requests
  double cancel_share = 0;  ///< of all requests; the rest are orders
  std::string tag = "run";  ///< order ids are "<tag>-<index>"
};

/// Makes the requests of a scenario. Thread-safe; each connection passes its own generator.
/// Cancels pick a random order accepted earlier in the run (each is cancelled at most once);
/// while there is none, a cancel becomes a read.
class Workload {
 public:
  explicit Workload(WorkloadOptions options);

  [[nodiscard]] Operation Make(std::int64_t index, std::mt19937_64& rng);
  /// Tells the workload an order was accepted, so that it may be cancelled later.
  void Accepted(const Operation& order);
  [[nodiscard]] const WorkloadOptions& options() const { return options_; }

 private:
  [[nodiscard]] std::optional<Operation> TakeCancellable(std::mt19937_64& rng);

  WorkloadOptions options_;
  ZipfSampler popularity_;
  std::mutex mutex_;
  std::vector<Operation> cancellable_;
};

/// The name of catalogue SKU `rank` ("SKU-<rank>").
[[nodiscard]] std::string CatalogueSku(std::size_t rank);
/// `count` catalogue SKUs, most popular first.
[[nodiscard]] std::vector<std::string> CatalogueSkus(std::size_t count);

}  // namespace invsync::bench
