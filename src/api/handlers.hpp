#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.hpp"
#include "api/metrics.hpp"
#include "core/stock_service.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::api {

struct Call;

/// A request as the handlers see it, independent of the HTTP library.
struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string target;  ///< path and query as sent, e.g. "/v1/inventory?sku=A&sku=B"
  std::string content_type;
  std::string body;
  std::string request_id;     ///< from X-Request-Id, or generated
  std::string authorization;  ///< the Authorization header; never logged
  /// An earlier attempt at this request (on the fast path) lost its Redis connection after
  /// sending the script: it may have taken effect, so a failure now must not claim otherwise.
  bool may_have_run = false;
};

/// A response: status, JSON body and extra headers (Allow, Retry-After, ...).
struct Response {
  int status = 200;
  std::string body;  ///< JSON text, unless content_type says otherwise
  // The two views below name static strings only (no allocation per response).
  std::string_view content_type = "application/json";
  std::map<std::string, std::string> headers;
  std::string_view route = "unmatched";  ///< route template for metrics, e.g. "/v1/inventory/{sku}"
};

struct HandlerOptions {
  std::size_t max_many_skus = 100;  ///< GET /v1/inventory?sku=... limit
  std::size_t body_limit = std::size_t{64} * 1024;
  Authenticator auth;            ///< no tokens: every route is open
  bool protect_metrics = false;  ///< with tokens, /metrics needs role read
  /// The problem this process's syncer found, kept in its memory (syncer::Syncer::Problem), for
  /// /healthz and /readyz; empty when the process runs no syncer.
  std::function<std::optional<std::string>()> syncer_problem;
};

/// Routes requests of the v1 contract (docs/api.md) to the stock service and turns every outcome
/// into a status and a JSON body. Never throws: infrastructure failures become 503 with
/// Retry-After, anything unexpected 500.
class Handlers {
 public:
  Handlers(core::StockService& stock, db::Store& store, redis::Pool& redis, HandlerOptions options);

  [[nodiscard]] Response Handle(const Request& request);
  [[nodiscard]] const HandlerOptions& options() const { return options_; }
  /// Served at /metrics; other parts add their figures with `AddSource`.
  [[nodiscard]] Metrics& metrics() { return metrics_; }
  [[nodiscard]] core::StockService& stock() { return stock_; }
  [[nodiscard]] const redis::Endpoint& redis_endpoint() const { return redis_.endpoint(); }

  /// 401 or 403 if the request may not use the route, nullopt if it may.
  [[nodiscard]] std::optional<Response> Authorize(std::string_view route,
                                                  const Request& request) const;
  /// The answer to `POST /v1/orders` for a deduction's result (201, a replay's 200, or the
  /// refusal), counted in the deduction metrics.
  [[nodiscard]] Response OrderPlaced(const core::OrderResult& result);
  /// The answer for the exception being handled (call only inside a catch block): 4xx for a
  /// refused request, 503 with Retry-After for a transient failure, 500 for anything else.
  /// With `may_have_run`, a transient failure is 504 outcome_unknown rather than 503.
  [[nodiscard]] Response FailureResponse(bool may_have_run = false);

 private:
  Response Dispatch(const Request& request);
  /// Runs a call `ReadCall` accepted.
  Response Run(Call& call, const Request& request);
  Response Get(const std::string& sku);
  Response GetMany(const std::vector<std::string>& skus);
  Response Set(const Call& call);
  Response Restock(const Call& call);
  static Response OrderJsonResponse(const core::OrderResult& result);
  Response Cancel(const std::string& order_id);
  Response Status();
  /// Liveness: 200; names a syncer problem this process knows of without a round trip.
  Response Healthy() const;
  Response Ready();
  /// Why the syncer applies nothing, if it does not: as this process's syncer knows it, or else
  /// checked against Redis and the database (the syncer may run in another process).
  std::optional<std::string> SyncerProblem();

  core::StockService& stock_;
  db::Store& store_;
  redis::Pool& redis_;
  HandlerOptions options_;
  Metrics metrics_;
};

/// A response body's JSON text. Messages may quote the request (a path, a query parameter, a
/// header), which need not be UTF-8: invalid bytes become U+FFFD rather than failing the answer.
[[nodiscard]] std::string JsonText(const nlohmann::json& document);
/// The JSON error body: {"error":{"code":code,"message":message, ...details}}.
[[nodiscard]] Response ErrorResponse(int status, std::string_view code, std::string_view message);
/// The answer to `GET /v1/inventory/{sku}`: {"sku","product_id","quantity"}.
[[nodiscard]] Response StockResponse(const core::StockResult& result);
/// An order's JSON text: {"order_id","status","lines":[{"sku","quantity","remaining"}...]}.
[[nodiscard]] std::string OrderText(const core::OrderResult& result);

}  // namespace invsync::api
