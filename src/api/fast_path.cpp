#include "api/fast_path.hpp"

#include <memory>
#include <utility>
#include <variant>

#include "api/request_parsing.hpp"
#include "core/validation.hpp"

namespace invsync::api {

namespace {

// An error reply or no reply: the worker runs the request again and answers as it always has
// (a deduction is idempotent by order id, so one that did run is answered as its replay).
bool Usable(const redis::AsyncReply& reply) { return reply.ok() && !reply.value.IsError(); }

// The command was sent and its reply lost: Redis may have run it.
bool MayHaveRun(const redis::AsyncReply& reply) {
  return reply.failure == redis::AsyncFailure::kConnectionLost ||
         reply.failure == redis::AsyncFailure::kTimedOut;
}

}  // namespace

bool FastPath::Start(const Request& request, redis::AsyncClient& redis, Done done) {
  try {
    const Target target = ParseTarget(request.target);
    const RouteMatch match = MatchRoute(target);
    if (!match.Allows(request.method) || handlers_.Authorize(match.name, request)) {
      return false;
    }
    if (match.route == Route::kInventorySku && request.method == "GET") {
      return StartRead(target.segments[2], match.name, redis, done);
    }
    if (match.route == Route::kOrders) {
      return StartOrder(request, match.name, redis, done);
    }
  } catch (const std::exception&) {
    // A malformed target or body: the worker path builds its error answer.
  }
  return false;
}

bool FastPath::StartRead(const std::string& sku, std::string_view route, redis::AsyncClient& redis,
                         Done& done) {
  if (core::CheckSku(sku)) {
    return false;
  }
  const std::string key = handlers_.stock().keys().Inventory(sku);
  redis.Command(core::StockService::CachedQuantityCommand(key),
                [this, sku, route, done = std::move(done)](redis::AsyncReply&& reply) {
                  std::optional<Response> response;
                  try {
                    std::optional<core::StockResult> stock;
                    if (Usable(reply)) {
                      stock = handlers_.stock().CachedStock(sku, reply.value);
                    }
                    if (stock) {
                      response = StockResponse(*stock);
                      response->route = route;
                    }
                  } catch (const std::exception&) {
                    response.reset();  // not a quantity: the worker path reports it
                  }
                  done(std::move(response), false);
                });
  return true;
}

bool FastPath::StartOrder(const Request& request, std::string_view route, redis::AsyncClient& redis,
                          Done& done) {
  auto parsed = ParseOrder(request, handlers_.options().body_limit);
  auto prepared = handlers_.stock().PrepareOrder(parsed.order_id, std::move(parsed.lines));
  auto* valid = std::get_if<core::PreparedOrder>(&prepared);
  if (valid == nullptr) {
    return false;  // the worker path answers 422 naming the field
  }
  auto order = std::make_shared<core::PreparedOrder>(std::move(*valid));
  redis.RunScript(handlers_.stock().scripts().deduct, order->call,
                  [this, order, route, done = std::move(done)](redis::AsyncReply&& reply) {
                    if (!Usable(reply)) {
                      return done(std::nullopt, MayHaveRun(reply));
                    }
                    std::optional<Response> response;
                    try {
                      if (auto result = handlers_.stock().InterpretDeduct(*order, reply.value)) {
                        response = handlers_.OrderPlaced(*result);
                        response->route = route;
                      }
                    } catch (...) {
                      // A corrupt quantity: 500, as the worker path answers it.
                      response = handlers_.FailureResponse();
                    }
                    // No response: SKUs not cached; the worker path loads them and runs it again.
                    done(std::move(response), false);
                  });
  return true;
}

}  // namespace invsync::api
