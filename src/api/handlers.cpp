#include "api/handlers.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <utility>
#include <variant>
#include <vector>

#include "api/call.hpp"
#include "api/request_parsing.hpp"
#include "api/status.hpp"
#include "common/error.hpp"
#include "common/text.hpp"
#include "persister/persister.hpp"
#include "syncer/syncer.hpp"

namespace invsync::api {

namespace {

using nlohmann::json;

std::string RandomId() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", engine(), engine());
}

Response JsonResponse(int status, const json& body) {
  return {.status = status, .body = JsonText(body)};
}

Response ErrorWith(int status, std::string_view code, std::string_view message, json details) {
  details["code"] = code;
  details["message"] = message;
  return JsonResponse(status, {{"error", details}});
}

Response Invalid(const core::ValidationError& error) {
  return ErrorWith(422, core::CodeName(error.code), error.message, {{"field", error.field}});
}

json LinesJson(const std::vector<core::LineResult>& lines) {
  json array = json::array();
  for (const auto& line : lines) {
    array.push_back(
        {{"sku", line.sku}, {"quantity", line.quantity}, {"remaining", line.remaining}});
  }
  return array;
}

json OrderJson(const core::OrderResult& result) {
  return {{"order_id", result.order_id},
          {"status", core::StateName(result.state)},
          {"lines", LinesJson(result.lines)}};
}

// The hot paths' answers (a stock read, a placed order) are written here directly: building an
// nlohmann document and dumping it took a few percent of the server's CPU. Their strings are
// validated identifiers (IsIdentifier: visible ASCII), where only '"' and '\' need escaping; any
// other string takes the general path. Keys come in the order nlohmann writes them (sorted), so
// the text is byte for byte JsonText's (a unit test holds them to it).
void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
}

// A syncer whose cursor belongs to another database's history (a restored database) applies no
// database-side change to Redis, but orders are still served correctly: the probes stay 200, and
// their bodies say so and name the way out.
void AddSyncerProblem(json& body, const std::string& problem) {
  body["status"] = "degraded";
  body["syncer"] = {{"problem", problem}, {"fix", "invsync reconcile --repair --reset-cursor"}};
}

// Maps a refused order operation to its status and error body.
Response OrderRefusal(const core::OrderResult& result) {
  switch (result.status) {
    case core::StockStatus::kInvalid:
      return Invalid(*result.invalid);
    case core::StockStatus::kInsufficient: {
      const auto& shortage = *result.shortage;
      return ErrorWith(409, "insufficient_stock",
                       fmt::format("insufficient stock for {}: requested {}, available {}",
                                   shortage.sku, shortage.requested, shortage.available),
                       {{"sku", shortage.sku},
                        {"requested", shortage.requested},
                        {"available", shortage.available}});
    }
    case core::StockStatus::kUnknownSku:
      return ErrorWith(404, "unknown_sku", fmt::format("unknown SKU {}", result.unknown_sku),
                       {{"sku", result.unknown_sku}});
    case core::StockStatus::kUnknownOrder:
      return ErrorWith(404, "unknown_order", fmt::format("unknown order {}", result.order_id),
                       {{"order_id", result.order_id}});
    case core::StockStatus::kOrderConflict:
      return ErrorWith(
          409, "order_conflict",
          fmt::format("order {} was already placed with different lines", result.order_id),
          {{"order_id", result.order_id}});
    default:
      return ErrorWith(500, "internal", "unexpected order outcome", json::object());
  }
}

Response StockRefusal(const core::StockResult& result, const std::string& request_id) {
  switch (result.status) {
    case core::StockStatus::kInvalid:
      return Invalid(*result.invalid);
    case core::StockStatus::kUnknownSku:
      return ErrorWith(404, "unknown_sku", fmt::format("unknown SKU {}", result.sku),
                       {{"sku", result.sku}});
    case core::StockStatus::kRequestConflict:
      return ErrorWith(
          409, "request_conflict",
          fmt::format("request id {} was already used for a different change", request_id),
          {{"request_id", request_id}});
    default:
      return ErrorWith(500, "internal", "unexpected stock outcome", json::object());
  }
}

}  // namespace

std::string JsonText(const nlohmann::json& document) {
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  return ErrorWith(status, code, message, json::object());
}

Response StockResponse(const core::StockResult& result) {
  if (!IsIdentifier(result.sku)) {
    return JsonResponse(
        200, {{"sku", result.sku}, {"product_id", result.sku}, {"quantity", result.quantity}});
  }
  Response response{.status = 200};
  std::string& out = response.body;
  out += "{\"product_id\":";
  AppendJsonString(out, result.sku);
  fmt::format_to(std::back_inserter(out), R"(,"quantity":{},"sku":)", result.quantity);
  AppendJsonString(out, result.sku);
  out += '}';
  return response;
}

std::string OrderText(const core::OrderResult& result) {
  const bool plain =
      IsIdentifier(result.order_id) &&
      std::all_of(result.lines.begin(), result.lines.end(),
                  [](const core::LineResult& line) { return IsIdentifier(line.sku); });
  if (!plain) {
    return JsonText(OrderJson(result));
  }
  std::string out = "{\"lines\":[";
  for (const auto& line : result.lines) {
    fmt::format_to(std::back_inserter(out), R"({}{{"quantity":{},"remaining":{},"sku":)",
                   &line == &result.lines.front() ? "" : ",", line.quantity, line.remaining);
    AppendJsonString(out, line.sku);
    out += '}';
  }
  out += "],\"order_id\":";
  AppendJsonString(out, result.order_id);
  fmt::format_to(std::back_inserter(out), R"(,"status":"{}"}})", core::StateName(result.state));
  return out;
}

Handlers::Handlers(core::StockService& stock, db::Store& store, redis::Pool& redis,
                   HandlerOptions options)
    : stock_(stock), store_(store), redis_(redis), options_(std::move(options)) {
  metrics_.AddSource([this](std::string& out) {
    const auto& cache = stock_.counters();
    AppendFamily(out, "invsync_cache_requests_total", "counter",
                 "Stock reads by where they were answered.");
    AppendSample(out, "invsync_cache_requests_total", "result=\"hit\"",
                 static_cast<double>(cache.hits.load()));
    AppendSample(out, "invsync_cache_requests_total", "result=\"miss\"",
                 static_cast<double>(cache.misses.load()));
    AppendSample(out, "invsync_cache_requests_total", "result=\"absent\"",
                 static_cast<double>(cache.absent_hits.load()));
    AppendMetric(out, "invsync_cache_database_reads_total", "counter",
                 "Database reads made to fill the cache.",
                 static_cast<double>(cache.database_reads.load()));
    try {
      auto conn = redis_.Acquire();
      auto lag = persister::ReadLag(*conn, stock_.scripts());
      AppendMetric(out, "invsync_persister_unpersisted_events", "gauge",
                   "Accepted changes not yet in the database.",
                   static_cast<double>(lag.unpersisted()));
      AppendMetric(out, "invsync_persister_oldest_unpersisted_seconds", "gauge",
                   "Age of the oldest of them.",
                   lag.oldest_age ? static_cast<double>(lag.oldest_age->count()) / 1000 : 0.0);
    } catch (const Error&) {
      out += "# invsync_persister_unpersisted_events unavailable: Redis unreachable\n";
    }
  });
}

Response Handlers::Handle(const Request& request) {
  try {
    return Dispatch(request);
  } catch (...) {
    return FailureResponse(request.may_have_run);
  }
}

Response Handlers::FailureResponse(bool may_have_run) {
  try {
    throw;
  } catch (const RequestError& error) {
    return RequestErrorResponse(error);
  } catch (const OutcomeUnknownError& error) {
    // Not a 503, which promises that nothing changed: the call reached Redis and may have run.
    metrics_.RecordError("outcome_unknown");
    return ErrorResponse(504, "outcome_unknown", error.what());
  } catch (const TransientError& error) {
    if (may_have_run) {
      metrics_.RecordError("outcome_unknown");
      return ErrorResponse(504, "outcome_unknown", error.what());
    }
    metrics_.RecordError("transient");
    auto response = ErrorResponse(503, "unavailable", error.what());
    response.headers["Retry-After"] = "1";
    return response;
  } catch (const std::exception& error) {
    metrics_.RecordError("internal");
    return ErrorResponse(500, "internal", error.what());
  } catch (...) {
    metrics_.RecordError("internal");
    return ErrorResponse(500, "internal", "unknown failure");
  }
}

Response Handlers::Dispatch(const Request& request) {
  auto read = ReadCall(request, options_);
  if (auto* refused = std::get_if<Response>(&read)) {
    return std::move(*refused);
  }
  Call& call = std::get<Call>(read);
  Response response = Run(call, request);
  response.route = call.match.name;
  return response;
}

Response Handlers::Run(Call& call, const Request& request) {
  switch (call.match.route) {
    case Route::kHealthz:
      return Healthy();
    case Route::kMetrics:
      return Response{
          .status = 200, .body = metrics_.Render(), .content_type = "text/plain; version=0.0.4"};
    case Route::kReadyz:
      return Ready();
    case Route::kStatus:
      return Status();
    case Route::kInventoryMany:
      return GetMany(call.skus);
    case Route::kInventorySku:
      return request.method == "GET" ? Get(call.key) : Set(call);
    case Route::kRestock:
      return Restock(call);
    case Route::kOrders:
      return OrderPlaced(stock_.Deduct(call.order.order_id, std::move(call.order.lines)));
    case Route::kOrder:
      return OrderJsonResponse(stock_.GetOrder(call.key));
    case Route::kCancel:
      return Cancel(call.key);
    case Route::kNone:
      break;
  }
  return ErrorResponse(404, "not_found", "no route");
}

std::optional<Response> Handlers::Authorize(std::string_view route, const Request& request) const {
  return api::Authorize(options_, route, request);
}

Response Handlers::Get(const std::string& sku) {
  auto result = stock_.Get(sku);
  if (result.status != core::StockStatus::kOk) {
    return StockRefusal(result, "");
  }
  return StockResponse(result);
}

Response Handlers::GetMany(const std::vector<std::string>& skus) {
  auto result = stock_.GetMany(skus);
  if (result.status == core::StockStatus::kInvalid) {
    return Invalid(*result.invalid);
  }
  json items = json::array();
  for (const auto& [sku, quantity] : result.items) {
    items.push_back({{"sku", sku}, {"quantity", quantity}});
  }
  return JsonResponse(200, {{"items", items}, {"unknown", result.unknown}});
}

Response Handlers::Set(const Call& call) {
  // An absolute set repeated is harmless, so the key is optional. Without one every PUT is a new
  // change: "set to 100" again after sales brought stock to 98 sets it to 100 again.
  std::string id = call.request_id.value_or(fmt::format("put-{}", RandomId()));
  auto result = stock_.Set(call.key, call.quantity, id);
  if (result.status != core::StockStatus::kOk) {
    return StockRefusal(result, id);
  }
  return JsonResponse(
      200, {{"sku", call.key}, {"quantity", result.quantity}, {"replayed", result.replayed}});
}

Response Handlers::Restock(const Call& call) {
  const std::string& request_id = *call.request_id;
  auto result = stock_.Restock(call.key, call.quantity, request_id);
  if (result.status != core::StockStatus::kOk) {
    return StockRefusal(result, request_id);
  }
  return JsonResponse(
      200, {{"sku", call.key}, {"quantity", result.quantity}, {"replayed", result.replayed}});
}

Response Handlers::OrderPlaced(const core::OrderResult& result) {
  if (result.status != core::StockStatus::kOk) {
    metrics_.RecordDeduction(
        result.status == core::StockStatus::kInvalid ? "invalid" : core::StatusName(result.status));
    return OrderRefusal(result);
  }
  metrics_.RecordDeduction(result.replayed ? "replayed" : "accepted");
  return {.status = result.replayed ? 200 : 201, .body = OrderText(result)};
}

Response Handlers::OrderJsonResponse(const core::OrderResult& result) {
  if (result.status != core::StockStatus::kOk) {
    return OrderRefusal(result);
  }
  return {.status = 200, .body = OrderText(result)};
}

Response Handlers::Cancel(const std::string& order_id) {
  auto result = stock_.Cancel(order_id);
  if (result.status != core::StockStatus::kOk) {
    return OrderRefusal(result);
  }
  json body = OrderJson(result);
  body["replayed"] = result.replayed;
  return JsonResponse(200, body);
}

Response Handlers::Status() {
  return JsonResponse(200, StatusDocument(redis_, store_, stock_.scripts()));
}

Response Handlers::Healthy() const {
  json body = {{"status", "ok"}};
  if (options_.syncer_problem) {
    if (auto problem = options_.syncer_problem()) {
      AddSyncerProblem(body, *problem);
    }
  }
  return JsonResponse(200, body);
}

Response Handlers::Ready() {
  std::string redis_problem;
  try {
    auto conn = redis_.Acquire();
    conn->Command({"PING"});
  } catch (const Error& error) {
    redis_problem = error.what();
  }
  const bool database_ok = store_.Ping();
  if (redis_problem.empty() && database_ok) {
    json body = {{"status", "ready"}, {"redis", "ok"}, {"database", "ok"}};
    if (auto problem = SyncerProblem()) {
      AddSyncerProblem(body, *problem);
    }
    return JsonResponse(200, body);
  }
  auto response =
      ErrorWith(503, "not_ready",
                redis_problem.empty() ? std::string("the database does not answer")
                                      : fmt::format("Redis does not answer: {}", redis_problem),
                {{"redis", redis_problem.empty() ? "ok" : "unreachable"},
                 {"database", database_ok ? "ok" : "unreachable"}});
  response.headers["Retry-After"] = "1";
  return response;
}

std::optional<std::string> Handlers::SyncerProblem() {
  if (options_.syncer_problem) {
    if (auto problem = options_.syncer_problem()) {
      return problem;
    }
  }
  try {
    syncer::SyncState state;
    {
      auto conn = redis_.Acquire();
      state = syncer::ReadSyncState(*conn);
    }
    if (state.cursor == db::OutboxPosition{}) {
      return std::nullopt;  // no cursor yet: it belongs to any database
    }
    return syncer::CursorMismatch(state, store_.ReadOutboxOrigin(state.cursor));
  } catch (const Error& error) {
    // Both sides just answered: a failure here is the syncer's own (a malformed cursor, which
    // the syncer logs), not a reason to take this process out of the load balancer.
    spdlog::debug("readyz: the syncer's cursor could not be checked: {}", error.what());
    return std::nullopt;
  }
}

}  // namespace invsync::api
