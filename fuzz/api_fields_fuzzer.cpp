// The pieces of an API request one at a time, each from arbitrary bytes: JSON bodies of set,
// restock and order (`api::ParseBody` and the field accessors; an order read without a document
// must equal the document's reading), request targets (path segments and query strings,
// percent-decoding, routing) and the identifier and order rules of `core::validation`. The first
// byte picks the piece; the rest is its text.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <tuple>

#include "api/order_reader.hpp"
#include "api/request_parsing.hpp"
#include "common/text.hpp"
#include "core/validation.hpp"

namespace {

using namespace invsync;

constexpr std::size_t kBodyLimit = std::size_t{64} * 1024;

void Require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

api::Request JsonRequest(std::string body) {
  return {
      .method = "POST", .target = "/", .content_type = "application/json", .body = std::move(body)};
}

void SetBody(const std::string& text) {
  const auto body = api::ParseBody(JsonRequest(text), kBodyLimit);
  Require(body.is_object());
  const std::int64_t quantity = api::RequiredInteger(body, "quantity");
  const auto request_id = api::OptionalString(body, "request_id");
  std::ignore = core::CheckSet("SKU-1", quantity, request_id.value_or("put-1"));
}

void RestockBody(const std::string& text) {
  const auto body = api::ParseBody(JsonRequest(text), kBodyLimit);
  const std::int64_t quantity = api::RequiredInteger(body, "quantity");
  const std::string request_id = api::RequiredString(body, "request_id");
  std::ignore = core::CheckRestock("SKU-1", quantity, request_id);
}

// An order body read without a document (api::ReadUsualOrder) is the order the document reading
// gives.
void SameAsTheDocumentReading(const std::string& text, const api::OrderRequest& order) {
  if (!api::ReadUsualOrder(text)) {
    return;
  }
  try {
    const auto body = api::ParseBody(JsonRequest(text), kBodyLimit);
    Require(api::RequiredString(body, "order_id") == order.order_id);
    Require(api::ParseLines(body) == order.lines);
  } catch (const api::RequestError&) {
    std::abort();  // the document reading refuses a body the other accepted
  }
}

void OrderBody(const std::string& text) {
  const auto order = api::ParseOrder(JsonRequest(text), kBodyLimit);
  SameAsTheDocumentReading(text, order);
  auto error = core::CheckOrder(order.order_id, order.lines, core::Limits{});
  if (!error) {
    Require(!order.lines.empty() && order.lines.size() <= 100);
    for (const auto& line : order.lines) {
      Require(IsIdentifier(line.sku) && line.quantity >= 1 && line.quantity <= 1'000'000);
    }
  }
}

// Percent-encoding every byte and decoding gives the bytes back.
void PercentRoundTrip(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    encoded += '%';
    encoded += kHex[byte >> 4];
    encoded += kHex[byte & 0xf];
  }
  auto decoded = PercentDecode(encoded);
  Require(decoded && *decoded == text);
}

void TargetText(const std::string& text) {
  const auto target = api::ParseTarget(text);
  Require(text.starts_with(target.path));
  for (const auto& segment : target.segments) {
    Require(!segment.empty());
  }
  const auto match = api::MatchRoute(target);
  Require(match.route == api::Route::kNone || !match.allow.empty());
  std::ignore = match.Allows("GET");
  PercentRoundTrip(text);
}

// A check of an identifier passes exactly when the text is an identifier.
void Identifier(const std::string& text) {
  const bool valid = IsIdentifier(text);
  Require(!core::CheckSku(text) == valid);
  Require(!core::CheckOrderId(text) == valid);
  Require(!core::CheckRequestId(text) == valid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const auto piece = input.ConsumeIntegralInRange<int>(0, 4);
  const std::string text = input.ConsumeRemainingBytesAsString();
  try {
    switch (piece) {
      case 0:
        SetBody(text);
        break;
      case 1:
        RestockBody(text);
        break;
      case 2:
        OrderBody(text);
        break;
      case 3:
        TargetText(text);
        break;
      default:
        Identifier(text);
        break;
    }
  } catch (const api::RequestError& error) {
    // The contract's refusals: 400, 413, 415 or 422, each with a code.
    Require(error.status >= 400 && error.status <= 422 && !error.code.empty());
  }
  return 0;
}
