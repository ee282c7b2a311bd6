#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/handlers.hpp"
#include "redis/async_client.hpp"

namespace invsync::api {

/// The two hot requests answered on an I/O thread with one asynchronous Redis command, without a
/// worker: `GET /v1/inventory/{sku}` of a cached SKU (HGET) and `POST /v1/orders` (the deduct
/// script). Everything else, and every case out of the ordinary (a SKU not cached, a refused
/// token, an invalid body, a Redis error or outage), goes to `Handlers::Handle` on a worker,
/// which answers exactly as it would have without this path. Routing, authorization, parsing,
/// validation, the script call and the responses are the handlers' and the stock service's own
/// functions, so both paths answer alike.
class FastPath {
 public:
  /// Gets the response, or nullopt when the request must go to a worker after all; then
  /// `may_have_run` says whether this path's attempt may have taken effect (its Redis connection
  /// was lost or timed out with the script sent).
  using Done = std::function<void(std::optional<Response>, bool may_have_run)>;

  explicit FastPath(Handlers& handlers) : handlers_(handlers) {}

  /// Starts the request if it is one this path serves and returns true; `done` is then called
  /// once, from the client's thread. Returns false (never calling `done`) otherwise.
  bool Start(const Request& request, redis::AsyncClient& redis, Done done);

 private:
  bool StartRead(const std::string& sku, std::string_view route, redis::AsyncClient& redis,
                 Done& done);
  bool StartOrder(const Request& request, std::string_view route, redis::AsyncClient& redis,
                  Done& done);

  Handlers& handlers_;
};

}  // namespace invsync::api
