#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/handlers.hpp"
#include "core/types.hpp"

namespace invsync::api {

/// A request the handlers refuse before reaching the stock service: bad path, query, media type,
/// JSON or field. Carries the status and error code of the contract.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string code, const std::string& message, std::string field = {})
      : std::runtime_error(message),
        status(status),
        code(std::move(code)),
        field(std::move(field)) {}
  int status;
  std::string code;
  std::string field;
  std::string_view route = "unmatched";  // a static string
};

/// A request target split into percent-decoded path segments and query parameters.
struct Target {
  std::string path;                   ///< as sent, without the query
  std::vector<std::string> segments;  ///< decoded, empty ones dropped ("/v1/x/" == "/v1/x")
  std::vector<std::pair<std::string, std::string>> query;  ///< decoded, in order
};

/// Splits and decodes a target; a malformed percent-escape throws 400 bad_path / bad_query.
/// '+' is kept as is (it means a space only in HTML forms, and SKUs hold no spaces).
[[nodiscard]] Target ParseTarget(std::string_view target);

/// The routes of the v1 contract (docs/api.md).
enum class Route {
  kNone,
  kHealthz,
  kMetrics,
  kReadyz,
  kStatus,
  kInventoryMany,
  kInventorySku,
  kRestock,
  kOrders,
  kOrder,
  kCancel,
};

/// The route a target's path names, with its template and methods.
struct RouteMatch {
  Route route = Route::kNone;
  std::string_view name;   ///< template for metrics and logs, e.g. "/v1/inventory/{sku}"
  std::string_view allow;  ///< its methods as the Allow header lists them, e.g. "GET, PUT"

  [[nodiscard]] bool Allows(std::string_view method) const;
};

/// Finds the route of a parsed target (kNone: 404).
[[nodiscard]] RouteMatch MatchRoute(const Target& target);

/// Largest nesting of arrays and objects accepted in a body.
inline constexpr int kMaxJsonDepth = 32;

/// The request body as a JSON object: 415 if the media type is not JSON, 400 malformed_json if it
/// is not a JSON object (or nests deeper than kMaxJsonDepth), 413 if over the limit.
[[nodiscard]] nlohmann::json ParseBody(const Request& request, std::size_t limit);

/// Field accessors: 422 missing_field or invalid_type naming the field.
[[nodiscard]] std::int64_t RequiredInteger(const nlohmann::json& object, const std::string& name,
                                           const std::string& field = {});
[[nodiscard]] std::string RequiredString(const nlohmann::json& object, const std::string& name,
                                         const std::string& field = {});
[[nodiscard]] std::optional<std::string> OptionalString(const nlohmann::json& object,
                                                        const std::string& name);
/// The "lines" array of an order.
[[nodiscard]] std::vector<core::Line> ParseLines(const nlohmann::json& body);

/// The body of `POST /v1/orders`: its order id and lines (checked for form only; the stock
/// service validates them).
struct OrderRequest {
  std::string order_id;
  std::vector<core::Line> lines;
};
[[nodiscard]] OrderRequest ParseOrder(const Request& request, std::size_t body_limit);

}  // namespace invsync::api
