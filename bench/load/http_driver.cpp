// The HTTP side of the load generator: one coroutine per keep-alive connection on one thread's
// event loop, so a connection waiting for its answer costs no thread.
// clang-format off
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it
// clang-format on

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "driver.hpp"

namespace invsync::bench {

namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

constexpr auto kRequestTimeout = std::chrono::seconds(10);
constexpr std::size_t kLargestResponse = 1 << 20;

// The generator shares the machine's cores with the service it measures, so every CPU cycle it
// spends is taken from the service: requests are written straight into a reused buffer and
// responses read by a parser that knows what invsync sends (status line, headers with
// Content-Length, body), not by a general-purpose HTTP library.

// SKUs and order ids of the bench are letters, digits and dashes: no percent-encoding and no JSON
// escaping needed.
void WriteRequest(const Operation& op, const std::string& host, std::string& out) {
  out.clear();
  auto to = std::back_inserter(out);
  switch (op.kind) {
    case OpKind::kRead:
      fmt::format_to(to, "GET /v1/inventory/{} HTTP/1.1\r\nHost: {}\r\n\r\n", op.sku, host);
      return;
    case OpKind::kOrder: {
      std::string body = fmt::format(R"({{"order_id":"{}","lines":[)", op.order_id);
      for (std::size_t i = 0; i < op.lines.size(); ++i) {
        fmt::format_to(std::back_inserter(body), R"({}{{"sku":"{}","quantity":{}}})",
                       i == 0 ? "" : ",", op.lines[i].sku, op.lines[i].quantity);
      }
      body += "]}";
      fmt::format_to(to,
                     "POST /v1/orders HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n"
                     "Content-Length: {}\r\n\r\n{}",
                     host, body.size(), body);
      return;
    }
    case OpKind::kCancel:
      fmt::format_to(to,
                     "POST /v1/orders/{}/cancel HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                     op.order_id, host);
      return;
  }
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

struct Response {
  int status = 0;
  std::string_view body;
  bool close = false;
};

// What a connection has received and not yet consumed.
class ReceiveBuffer {
 public:
  /// Parses one whole response at the front, or nullopt if more bytes are needed. Throws on
  /// something that is not a response of the kind invsync sends.
  std::optional<std::pair<Response, std::size_t>> Parse() const {
    const std::string_view data(bytes_.data() + begin_, end_ - begin_);
    const auto header_end = data.find("\r\n\r\n");
    if (header_end == std::string_view::npos) {
      if (data.size() > kLargestResponse) {
        throw std::runtime_error("response header too large");
      }
      return std::nullopt;
    }
    const std::string_view head = data.substr(0, header_end);
    if (!head.starts_with("HTTP/1.") || head.size() < 12) {
      throw std::runtime_error("not an HTTP/1.x response");
    }
    Response response;
    std::from_chars(head.data() + 9, head.data() + 12, response.status);
    std::size_t length = 0;
    bool has_length = false;
    for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;) {
      const std::size_t next = head.find("\r\n", at + 2);
      const std::string_view line = head.substr(
          at + 2, next == std::string_view::npos ? std::string_view::npos : next - at - 2);
      if (StartsWithNoCase(line, "content-length:")) {
        auto value = line.substr(15);
        value.remove_prefix(std::min(value.find_first_not_of(' '), value.size()));
        has_length =
            std::from_chars(value.data(), value.data() + value.size(), length).ec == std::errc();
      } else if (StartsWithNoCase(line, "connection:")) {
        response.close = line.find("close") != std::string_view::npos;
      } else if (StartsWithNoCase(line, "transfer-encoding:")) {
        throw std::runtime_error("chunked responses are not expected from invsync");
      }
      at = next;
    }
    if (!has_length || length > kLargestResponse) {
      throw std::runtime_error("response without a usable Content-Length");
    }
    const std::size_t total = header_end + 4 + length;
    if (data.size() < total) {
      return std::nullopt;
    }
    response.body = data.substr(header_end + 4, length);
    return std::pair(response, total);
  }

  void Consume(std::size_t count) {
    begin_ += count;
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }

  /// Room for the next read, after moving what is left to the front.
  asio::mutable_buffer Space() {
    if (begin_ > 0) {
      std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (bytes_.size() - end_ < 4096) {
      bytes_.resize(bytes_.size() * 2);
    }
    return asio::buffer(bytes_.data() + end_, bytes_.size() - end_);
  }
  void Received(std::size_t count) { end_ += count; }
  void Clear() { begin_ = end_ = 0; }

 private:
  std::vector<char> bytes_ = std::vector<char>(16384);
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

Answer FromResponse(const Response& response) {
  Answer answer{.status = response.status};
  if (answer.status >= 200 && answer.status < 300) {
    answer.outcome = Outcome::kOk;
  } else if (answer.status == 409) {
    answer.outcome = Outcome::kRefused;
    auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("error") && body["error"].contains("available") &&
        body["error"]["available"].is_number_integer()) {
      answer.available = body["error"]["available"].get<std::int64_t>();
    }
  } else {
    answer.outcome = Outcome::kError;
  }
  return answer;
}

// A request still unanswered after kRequestTimeout has its socket closed by the watchdog, which
// fails the pending read or write (one timer for all connections, not one per operation).
struct ConnectionState {
  explicit ConnectionState(const asio::any_io_executor& executor) : socket(executor) {}
  tcp::socket socket;
  std::optional<Clock::time_point> busy_since;
  bool finished = false;
};

asio::awaitable<void> Watchdog(std::vector<std::unique_ptr<ConnectionState>>& connections) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (true) {
    bool any_left = false;
    const auto now = Clock::now();
    for (auto& connection : connections) {
      any_left = any_left || !connection->finished;
      if (connection->busy_since && now - *connection->busy_since > kRequestTimeout) {
        boost::system::error_code ignored;
        connection->socket.close(ignored);
        connection->busy_since.reset();
      }
    }
    if (!any_left) {
      co_return;
    }
    timer.expires_after(std::chrono::milliseconds(200));
    co_await timer.async_wait(use_awaitable);
  }
}

asio::awaitable<Answer> Exchange(ConnectionState& state, ReceiveBuffer& received,
                                 const tcp::endpoint& endpoint, bool& connected,
                                 const std::string& request) {
  if (!connected) {
    co_await state.socket.async_connect(endpoint, use_awaitable);
    state.socket.set_option(tcp::no_delay(true));
    received.Clear();
    connected = true;
  }
  co_await asio::async_write(state.socket, asio::buffer(request), use_awaitable);
  while (true) {
    if (auto parsed = received.Parse()) {
      const auto& [response, size] = *parsed;
      Answer answer = FromResponse(response);
      const bool close = response.close;
      received.Consume(size);
      if (close) {
        boost::system::error_code ignored;
        state.socket.close(ignored);
        connected = false;
      }
      co_return answer;
    }
    received.Received(co_await state.socket.async_read_some(received.Space(), use_awaitable));
  }
}

asio::awaitable<void> Connection(ConnectionState& state, tcp::endpoint endpoint, std::string host,
                                 Workload& workload, Schedule& schedule,
                                 const DriveOptions& options, std::uint64_t seed, RunResult& out) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  ReceiveBuffer received;
  std::string request;
  std::mt19937_64 rng(seed);
  Recorder recorder(workload, schedule, options);
  bool connected = false;
  while (auto ticket = schedule.Next(Clock::now())) {
    if (ticket->intended > Clock::now()) {
      timer.expires_at(ticket->intended);
      co_await timer.async_wait(use_awaitable);
    }
    Operation op = workload.Make(ticket->index, rng);
    WriteRequest(op, host, request);
    Answer answer;
    state.busy_since = Clock::now();
    try {
      answer = co_await Exchange(state, received, endpoint, connected, request);
    } catch (const std::exception&) {
      // Connection refused or lost, a timeout (the watchdog closed the socket), or a malformed
      // response: no answer.
      answer = Answer{.outcome = Outcome::kTransport};
      boost::system::error_code ignored;
      state.socket.close(ignored);
      connected = false;
    }
    state.busy_since.reset();
    recorder.Done(std::move(op), answer, ticket->intended, Clock::now());
  }
  state.finished = true;
  out = std::move(recorder).Take(Clock::now());
}

}  // namespace

RunResult DriveHttp(const std::string& host, std::uint16_t port, Workload& workload,
                    Schedule& schedule, const DriveOptions& options) {
  asio::io_context io(1);
  const tcp::endpoint endpoint(asio::ip::make_address(host), port);
  const std::string host_header = host + ":" + std::to_string(port);
  const auto count = static_cast<std::size_t>(options.connections);
  std::vector<RunResult> results(count);
  std::vector<std::unique_ptr<ConnectionState>> states;
  for (std::size_t c = 0; c < count; ++c) {
    states.push_back(std::make_unique<ConnectionState>(io.get_executor()));
    asio::co_spawn(io,
                   Connection(*states[c], endpoint, host_header, workload, schedule, options,
                              options.seed * 7919 + static_cast<std::uint64_t>(c), results[c]),
                   asio::detached);
  }
  asio::co_spawn(io, Watchdog(states), asio::detached);
  io.run();
  RunResult total;
  for (auto& result : results) {
    total.Merge(std::move(result));
  }
  return total;
}

}  // namespace invsync::bench
