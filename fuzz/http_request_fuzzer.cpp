// Raw bytes of one HTTP request → Beast's request parser with the server's limits → the handlers'
// request → routing, method and token checks, path, query and body parsing (`api::ReadCall`) →
// the stock service's validation of what the call carries. Stops before anything that would
// talk to Redis.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "api/auth.hpp"
#include "api/call.hpp"
#include "api/http_message.hpp"
#include "common/text.hpp"
#include "core/validation.hpp"

namespace {

namespace http = boost::beast::http;
using namespace invsync;

api::HandlerOptions Options() {
  api::HandlerOptions options;
  options.max_many_skus = 100;
  options.body_limit = std::size_t{64} * 1024;
  // With tokens configured, the fuzzer reaches the 401/403 paths as well as the open ones:
  // "Bearer reader" and "Bearer admin" are the tokens.
  options.auth = api::Authenticator({{"reader", api::Sha256Hex("reader"), api::Role::kRead},
                                     {"admin", api::Sha256Hex("admin"), api::Role::kAdmin}});
  options.protect_metrics = true;
  return options;
}

void CheckCall(const api::Call& call) {
  const core::Limits limits;
  switch (call.match.route) {
    case api::Route::kInventorySku:
      std::ignore = core::CheckSku(call.key);
      if (call.request_id) {
        std::ignore = core::CheckSet(call.key, call.quantity, *call.request_id);
      }
      break;
    case api::Route::kRestock:
      std::ignore = core::CheckRestock(call.key, call.quantity, call.request_id.value());
      break;
    case api::Route::kOrders:
      std::ignore = core::CheckOrder(call.order.order_id, call.order.lines, limits);
      break;
    case api::Route::kOrder:
    case api::Route::kCancel:
      std::ignore = core::CheckOrderId(call.key);
      break;
    case api::Route::kInventoryMany:
      if (call.skus.empty() || call.skus.size() > 100) {
        std::abort();  // ReadCall refuses these with 400
      }
      for (const auto& sku : call.skus) {
        std::ignore = core::CheckSku(sku);
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const api::HandlerOptions options = Options();
  static const api::HandlerOptions open_options;
  http::request_parser<http::string_body> parser;
  parser.header_limit(api::kHeaderLimit);
  parser.body_limit(options.body_limit);
  parser.eager(true);
  boost::beast::error_code ec;
  // Fed in two parts, as a socket may deliver it, to reach the parser's resumption paths.
  const std::size_t first = size == 0 ? 0 : data[0] % (size + 1);
  std::size_t used = parser.put(boost::asio::buffer(data, first), ec);
  if (ec == http::error::need_more) {
    ec = {};
  }
  while (!ec && used < size && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0) {
      break;
    }
    used += n;
  }
  if (!ec && !parser.is_done()) {
    parser.put_eof(ec);
  }
  if (ec || !parser.is_done()) {
    return 0;
  }
  const api::Request request = api::RequestFromMessage(parser.release());
  if (!request.request_id.empty() && !IsIdentifier(request.request_id)) {
    std::abort();
  }
  // The same request with tokens configured and with the API open.
  for (const auto* with : {&options, &open_options}) {
    auto read = api::ReadCall(request, *with);
    if (const auto* response = std::get_if<api::Response>(&read)) {
      // A refusal while reading is always a client error with a JSON body.
      if (response->status < 400 || response->status > 499 ||
          nlohmann::json::parse(response->body, nullptr, false).is_discarded()) {
        std::abort();
      }
      continue;
    }
    CheckCall(std::get<api::Call>(read));
  }
  return 0;
}
