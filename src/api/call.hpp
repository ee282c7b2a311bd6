#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/handlers.hpp"
#include "api/request_parsing.hpp"
#include "core/types.hpp"

namespace invsync::api {

/// A request that passed routing, method and token checks and whose path, query and body were
/// parsed: what remains is the stock service's call (which validates identifiers and quantities).
struct Call {
  RouteMatch match;
  /// The `{sku}` or `{order_id}` of the path, percent-decoded; empty for routes without one.
  std::string key;
  /// `GET /v1/inventory?sku=...`: the SKUs asked for, in order.
  std::vector<std::string> skus;
  /// `PUT /v1/inventory/{sku}` and restock: the body's quantity.
  std::int64_t quantity = 0;
  /// Set and restock: the body's request id (required for restock, optional for set).
  std::optional<std::string> request_id;
  /// `POST /v1/orders`: the body's order id and lines.
  OrderRequest order;
};

/// Turns a request into the call it asks for, or into the response that refuses it (404 no
/// route, 405 with Allow, 401/403, and 4xx for a malformed target, query or body). Pure: no
/// Redis, no database, no metrics; `Handlers` runs the call it returns.
[[nodiscard]] std::variant<Call, Response> ReadCall(const Request& request,
                                                    const HandlerOptions& options);

/// The 4xx response for a request refused while it was read.
[[nodiscard]] Response RequestErrorResponse(const RequestError& error);

/// 401 or 403 if the request may not use the route under `options.auth`, nullopt if it may.
[[nodiscard]] std::optional<Response> Authorize(const HandlerOptions& options,
                                                std::string_view route, const Request& request);

}  // namespace invsync::api
