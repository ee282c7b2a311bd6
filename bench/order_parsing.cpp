// The body of POST /v1/orders read on every order: `api::ParseOrder` (SAX reading of the usual
// shape) beside the document reading it replaces for that shape (`ParseBody`, then the field
// accessors), in the same run. CPU only: no servers.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <iterator>
#include <string>

#include "api/request_parsing.hpp"

namespace {

using namespace invsync;

constexpr std::size_t kBodyLimit = std::size_t{64} * 1024;

api::Request OrderRequest(int lines) {
  std::string body = R"({"order_id":"bench-7-000000123456","lines":[)";
  for (int i = 0; i < lines; ++i) {
    fmt::format_to(std::back_inserter(body), R"({}{{"sku":"SKU-{}","quantity":{}}})",
                   i == 0 ? "" : ",", 10000 + i, 1 + i % 3);
  }
  body += "]}";
  return {.method = "POST",
          .target = "/v1/orders",
          .content_type = "application/json",
          .body = std::move(body)};
}

void ParseOrder(benchmark::State& state) {
  const auto request = OrderRequest(static_cast<int>(state.range(0)));
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library's loop idiom
    benchmark::DoNotOptimize(api::ParseOrder(request, kBodyLimit));
  }
}

void DocumentReading(benchmark::State& state) {
  const auto request = OrderRequest(static_cast<int>(state.range(0)));
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the library's loop idiom
    const auto body = api::ParseBody(request, kBodyLimit);
    benchmark::DoNotOptimize(
        api::OrderRequest{api::RequiredString(body, "order_id"), api::ParseLines(body)});
  }
}

}  // namespace

BENCHMARK(ParseOrder)->Arg(1)->Arg(5);
BENCHMARK(DocumentReading)->Arg(1)->Arg(5);
BENCHMARK_MAIN();
