// The HTTP side of the load generator: one coroutine per keep-alive connection on one thread's
// event loop, so a connection waiting for its answer costs no thread.
// clang-format off
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "driver.hpp"

namespace invsync::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

constexpr auto kRequestTimeout = std::chrono::seconds(10);

// SKUs and order ids of the bench are letters, digits and dashes: no percent-encoding needed.
http::request<http::string_body> ToRequest(const Operation& op, const std::string& host) {
  http::request<http::string_body> request;
  request.version(11);
  request.set(http::field::host, host);
  switch (op.kind) {
    case OpKind::kRead:
      request.method(http::verb::get);
      request.target("/v1/inventory/" + op.sku);
      break;
    case OpKind::kOrder: {
      request.method(http::verb::post);
      request.target("/v1/orders");
      nlohmann::json lines = nlohmann::json::array();
      for (const auto& line : op.lines) {
        lines.push_back({{"sku", line.sku}, {"quantity", line.quantity}});
      }
      request.set(http::field::content_type, "application/json");
      request.body() = nlohmann::json{{"order_id", op.order_id}, {"lines", lines}}.dump();
      break;
    }
    case OpKind::kCancel:
      request.method(http::verb::post);
      request.target("/v1/orders/" + op.order_id + "/cancel");
      break;
  }
  request.prepare_payload();
  return request;
}

Answer FromResponse(const http::response<http::string_body>& response) {
  Answer answer{.status = static_cast<int>(response.result_int())};
  if (answer.status >= 200 && answer.status < 300) {
    answer.outcome = Outcome::kOk;
  } else if (answer.status == 409) {
    answer.outcome = Outcome::kRefused;
    auto body = nlohmann::json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("error") && body["error"].contains("available") &&
        body["error"]["available"].is_number_integer()) {
      answer.available = body["error"]["available"].get<std::int64_t>();
    }
  } else {
    answer.outcome = Outcome::kError;
  }
  return answer;
}

asio::awaitable<void> Connection(tcp::endpoint endpoint, std::string host, Workload& workload,
                                 Schedule& schedule, const DriveOptions& options,
                                 std::uint64_t seed, RunResult& out) {
  auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream stream(executor);
  asio::steady_timer timer(executor);
  beast::flat_buffer buffer;
  std::mt19937_64 rng(seed);
  Recorder recorder(workload, schedule, options);
  bool connected = false;
  while (auto ticket = schedule.Next(Clock::now())) {
    if (ticket->intended > Clock::now()) {
      timer.expires_at(ticket->intended);
      co_await timer.async_wait(use_awaitable);
    }
    Operation op = workload.Make(ticket->index, rng);
    Answer answer;
    try {
      if (!connected) {
        stream.expires_after(kRequestTimeout);
        co_await stream.async_connect(endpoint, use_awaitable);
        stream.socket().set_option(tcp::no_delay(true));
        buffer.clear();
        connected = true;
      }
      auto request = ToRequest(op, host);
      stream.expires_after(kRequestTimeout);
      co_await http::async_write(stream, request, use_awaitable);
      http::response<http::string_body> response;
      co_await http::async_read(stream, buffer, response, use_awaitable);
      answer = FromResponse(response);
      if (response.need_eof()) {
        beast::error_code ignored;
        stream.socket().close(ignored);
        connected = false;
      }
    } catch (const boost::system::system_error&) {
      answer = Answer{.outcome = Outcome::kTransport};
      beast::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
    }
    recorder.Done(std::move(op), answer, ticket->intended, Clock::now());
  }
  out = std::move(recorder).Take(Clock::now());
}

}  // namespace

RunResult DriveHttp(const std::string& host, std::uint16_t port, Workload& workload,
                    Schedule& schedule, const DriveOptions& options) {
  asio::io_context io(1);
  const tcp::endpoint endpoint(asio::ip::make_address(host), port);
  const std::string host_header = host + ":" + std::to_string(port);
  std::vector<RunResult> results(static_cast<std::size_t>(options.connections));
  for (int c = 0; c < options.connections; ++c) {
    asio::co_spawn(io,
                   Connection(endpoint, host_header, workload, schedule, options,
                              options.seed * 7919 + static_cast<std::uint64_t>(c),
                              results[static_cast<std::size_t>(c)]),
                   asio::detached);
  }
  io.run();
  RunResult total;
  for (auto& result : results) {
    total.Merge(std::move(result));
  }
  return total;
}

}  // namespace invsync::bench
