#include "api/call.hpp"

#include <fmt/format.h>

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

namespace invsync::api {

namespace {

std::vector<std::string> ManySkus(const Target& target, std::size_t max_many_skus) {
  std::vector<std::string> skus;
  for (const auto& [name, value] : target.query) {
    if (name != "sku") {
      throw RequestError(400, "bad_query", fmt::format("unknown query parameter \"{}\"", name));
    }
    skus.push_back(value);
  }
  if (skus.empty()) {
    throw RequestError(400, "bad_query", "give at least one SKU: /v1/inventory?sku=A&sku=B");
  }
  if (skus.size() > max_many_skus) {
    throw RequestError(
        400, "bad_query",
        fmt::format("at most {} SKUs per request; got {}", max_many_skus, skus.size()));
  }
  return skus;
}

// The parts of the call the route's path, query and body give; throws `RequestError`.
void ReadArguments(const Request& request, const Target& target, const HandlerOptions& options,
                   Call& call) {
  switch (call.match.route) {
    case Route::kInventoryMany:
      call.skus = ManySkus(target, options.max_many_skus);
      return;
    case Route::kInventorySku:
      if (request.method == "PUT") {
        const nlohmann::json body = ParseBody(request, options.body_limit);
        call.quantity = RequiredInteger(body, "quantity");
        call.request_id = OptionalString(body, "request_id");
      }
      return;
    case Route::kRestock: {
      const nlohmann::json body = ParseBody(request, options.body_limit);
      call.quantity = RequiredInteger(body, "quantity");
      call.request_id = RequiredString(body, "request_id");
      return;
    }
    case Route::kOrders:
      call.order = ParseOrder(request, options.body_limit);
      return;
    default:
      return;
  }
}

}  // namespace

Response RequestErrorResponse(const RequestError& error) {
  nlohmann::json details =
      error.field.empty() ? nlohmann::json::object() : nlohmann::json{{"field", error.field}};
  details["code"] = error.code;
  details["message"] = error.what();
  Response response{.status = error.status, .body = JsonText({{"error", details}})};
  response.route = error.route;
  return response;
}

std::variant<Call, Response> ReadCall(const Request& request, const HandlerOptions& options) {
  try {
    const Target target = ParseTarget(request.target);
    Call call{.match = MatchRoute(target)};
    if (call.match.route == Route::kNone) {
      return ErrorResponse(404, "not_found", fmt::format("no route for {}", target.path));
    }
    if (!call.match.Allows(request.method)) {
      Response response = ErrorResponse(
          405, "method_not_allowed",
          fmt::format("{} is not allowed here; allowed: {}", request.method, call.match.allow));
      response.headers["Allow"] = call.match.allow;
      response.route = call.match.name;
      return response;
    }
    if (auto refused = Authorize(options, call.match.name, request)) {
      refused->route = call.match.name;
      return std::move(*refused);
    }
    // Routes with a path parameter hold it as their third segment: /v1/inventory/{sku}/...
    if (target.segments.size() >= 3) {
      call.key = target.segments[2];
    }
    ReadArguments(request, target, options, call);
    return call;
  } catch (const RequestError& error) {
    return RequestErrorResponse(error);
  }
}

std::optional<Response> Authorize(const HandlerOptions& options, std::string_view route,
                                  const Request& request) {
  if (!options.auth.enabled() || route == "/healthz" || route == "/readyz" ||
      (route == "/metrics" && !options.protect_metrics)) {
    return std::nullopt;
  }
  Role needed = Role::kRead;
  if (route == "/v1/orders" || route == "/v1/orders/{order_id}/cancel") {
    needed = Role::kOrder;
  } else if (request.method == "PUT" || route == "/v1/inventory/{sku}/restock" ||
             route == "/v1/status") {
    needed = Role::kAdmin;
  }
  auto role = options.auth.RoleOf(request.authorization);
  if (!role) {
    auto response = ErrorResponse(401, "unauthorized",
                                  request.authorization.empty()
                                      ? "this API needs a bearer token (Authorization: Bearer ...)"
                                      : "the bearer token is not known");
    response.headers["WWW-Authenticate"] = "Bearer";
    return response;
  }
  if (static_cast<int>(*role) < static_cast<int>(needed)) {
    static constexpr std::array kNames = {"read", "order", "admin"};
    return ErrorResponse(403, "forbidden",
                         fmt::format("this token's role does not allow {} {}; it needs role {}",
                                     request.method, route, kNames[static_cast<int>(needed)]));
  }
  return std::nullopt;
}

}  // namespace invsync::api
