#include "http_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace invsync::testing {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::size_t kMaxResponseBody = 64 * 1024 * 1024;

bool IsClosedError(const error_code& error) {
  return error == asio::error::eof || error == http::error::end_of_stream ||
         error == asio::error::connection_reset || error == asio::error::broken_pipe ||
         error == http::error::partial_message;
}

bool NamesHeader(const HeaderList& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& header) {
    return !CaseInsensitiveLess()(header.first, name) && !CaseInsensitiveLess()(name, header.first);
  });
}

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) <
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string Reply::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool Reply::HasHeader(std::string_view name) const { return headers.find(name) != headers.end(); }

nlohmann::json Reply::json() const {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    ADD_FAILURE() << "response body is not JSON (status " << status << "): " << body;
    return nullptr;
  }
  return parsed;
}

std::string RawRequest(std::string_view method, std::string_view target, std::string_view body,
                       const HeaderList& headers) {
  std::string text;
  text.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!NamesHeader(headers, "Host")) {
    text.append("Host: 127.0.0.1\r\n");
  }
  if (!body.empty() && !NamesHeader(headers, "Content-Type")) {
    text.append("Content-Type: application/json\r\n");
  }
  if (!NamesHeader(headers, "Content-Length") &&
      (!body.empty() || method == "POST" || method == "PUT")) {
    text.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  for (const auto& [name, value] : headers) {
    text.append(name).append(": ").append(value).append("\r\n");
  }
  text.append("\r\n").append(body);
  return text;
}

/// One socket driven by its own io_context; every operation has a time limit, after which it is
/// cancelled (the socket stays open, so a test may keep using it).
class Socket {
 public:
  explicit Socket(std::uint16_t port) : port_(port) {}

  error_code Connect() {
    error_code error;
    socket_ = tcp::socket(context_);
    buffer_.clear();
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), error);
    return error;
  }
  void Close() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    buffer_.clear();
  }
  [[nodiscard]] bool is_open() const { return socket_.is_open(); }

  error_code Write(std::string_view bytes, std::chrono::milliseconds limit) {
    std::optional<error_code> result;
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [&](error_code error, std::size_t) { result = error; });
    RunUntil(limit, [&] { return result.has_value(); });
    return *result;
  }

  /// Reads one response; `error` is set on failure (timeout: `asio::error::timed_out`).
  std::optional<Reply> ReadReply(std::chrono::milliseconds limit, error_code& error) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    std::optional<error_code> result;
    http::async_read(socket_, buffer_, parser,
                     [&](error_code read_error, std::size_t) { result = read_error; });
    if (!RunUntil(limit, [&] { return result.has_value(); })) {
      error = asio::error::timed_out;
      return std::nullopt;
    }
    error = *result;
    if (error) {
      return std::nullopt;
    }
    return ToReply(parser.get());
  }

  std::optional<Reply> WriteAndReadReply(std::string_view bytes, std::chrono::milliseconds limit) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    std::optional<error_code> written;
    std::optional<error_code> read;
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [&](error_code error, std::size_t) { written = error; });
    http::async_read(socket_, buffer_, parser, [&](error_code error, std::size_t) {
      read = error;
      if (!error && !written) {
        error_code ignored;
        socket_.cancel(ignored);  // the answer is in: stop pushing the rest of the body
      }
    });
    bool finished = RunUntil(limit, [&] { return written && read; });
    if (!finished || *read) {
      return std::nullopt;
    }
    return ToReply(parser.get());
  }

  RawRead ReadUntilClosed(std::chrono::milliseconds limit) {
    RawRead out;
    auto readable = buffer_.data();
    out.data.assign(static_cast<const char*>(readable.data()), readable.size());
    buffer_.consume(buffer_.size());
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::array<char, 16 * 1024> chunk{};
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return out;
      }
      std::optional<error_code> result;
      std::size_t got = 0;
      socket_.async_read_some(asio::buffer(chunk), [&](error_code error, std::size_t n) {
        result = error;
        got = n;
      });
      if (!RunUntil(left, [&] { return result.has_value(); })) {
        out.data.append(chunk.data(), got);
        return out;
      }
      out.data.append(chunk.data(), got);
      if (*result) {
        out.closed = IsClosedError(*result) || *result == asio::error::bad_descriptor;
        return out;
      }
    }
  }

 private:
  static Reply ToReply(const http::response<http::string_body>& response) {
    Reply reply;
    reply.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      std::string name(field.name_string().data(), field.name_string().size());
      std::string value(field.value().data(), field.value().size());
      auto [it, inserted] = reply.headers.emplace(name, value);
      if (!inserted) {
        it->second.append(", ").append(value);
      }
    }
    reply.body = response.body();
    return reply;
  }

  /// Runs handlers until `done` holds; false if `limit` passed first (pending operations are
  /// then cancelled and their handlers run before returning).
  template <class Done>
  bool RunUntil(std::chrono::milliseconds limit, Done done) {
    context_.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (context_.run_one_until(deadline) == 0) {
        if (done()) {
          return true;
        }
        error_code ignored;
        socket_.cancel(ignored);
        context_.restart();
        while (!done() && context_.run_one() > 0) {
        }
        return false;
      }
    }
    return true;
  }

  std::uint16_t port_;
  asio::io_context context_;
  tcp::socket socket_{context_};
  beast::flat_buffer buffer_;
};

// ---- assertions -------------------------------------------------------------------------------

::testing::AssertionResult IsError(const Reply& reply, int status, std::string_view code) {
  auto failure = [&](std::string_view what) {
    return ::testing::AssertionFailure() << what << "; expected " << status << " " << code
                                         << ", got " << reply.status << " " << reply.body;
  };
  if (reply.status != status) {
    return failure("wrong status");
  }
  auto body = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object() || !body.contains("error") ||
      !body["error"].is_object()) {
    return failure("body is not {\"error\":{...}}");
  }
  const auto& error = body["error"];
  if (!error.contains("code") || error["code"] != code) {
    return failure("wrong error code");
  }
  if (!error.contains("message") || !error["message"].is_string() ||
      error["message"].get<std::string>().empty()) {
    return failure("no message");
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsInvalid(const Reply& reply, std::string_view code,
                                     std::string_view field) {
  auto result = IsError(reply, 422, code);
  if (!result) {
    return result << " (field " << field << ")";
  }
  auto error = nlohmann::json::parse(reply.body)["error"];
  if (!error.contains("field") || error["field"] != field) {
    return ::testing::AssertionFailure()
           << "expected field \"" << field << "\" for " << code << ", got " << reply.body;
  }
  return ::testing::AssertionSuccess();
}

// ---- HttpClient --------------------------------------------------------------------------------

class HttpClient::Impl {
 public:
  Impl(std::uint16_t port, std::chrono::milliseconds timeout) : socket(port), timeout(timeout) {}
  Socket socket;
  std::chrono::milliseconds timeout;
};

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(port, timeout)) {}

HttpClient::~HttpClient() = default;

bool HttpClient::connected() const { return impl_->socket.is_open(); }

Reply HttpClient::Send(std::string_view method, std::string_view target, std::string_view body,
                       const HeaderList& headers) {
  const std::string request = RawRequest(method, target, body, headers);
  Socket& socket = impl_->socket;
  for (int attempt = 0;; ++attempt) {
    const bool reused = socket.is_open();
    if (!reused) {
      if (auto error = socket.Connect()) {
        throw std::runtime_error("connect: " + error.message());
      }
      ++connections_opened_;
    }
    error_code error = socket.Write(request, impl_->timeout);
    std::optional<Reply> reply;
    if (!error) {
      reply = socket.ReadReply(impl_->timeout, error);
    }
    if (reply) {
      auto connection = reply->Header("Connection");
      std::transform(connection.begin(), connection.end(), connection.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (connection.find("close") != std::string::npos) {
        socket.Close();
      }
      return *reply;
    }
    socket.Close();
    // A kept-alive connection the server closed meanwhile: send again on a fresh one, once.
    if (reused && attempt == 0 && IsClosedError(error)) {
      continue;
    }
    throw std::runtime_error(std::string(method) + " " + std::string(target) + ": " +
                             error.message());
  }
}

// ---- RawConnection -----------------------------------------------------------------------------

class RawConnection::Impl {
 public:
  explicit Impl(std::uint16_t port) : socket(port) {}
  Socket socket;
};

RawConnection::RawConnection(std::uint16_t port) : impl_(std::make_unique<Impl>(port)) {
  if (auto error = impl_->socket.Connect()) {
    throw std::runtime_error("connect: " + error.message());
  }
}

RawConnection::~RawConnection() = default;

bool RawConnection::Write(std::string_view bytes, std::chrono::milliseconds limit) {
  return !impl_->socket.Write(bytes, limit);
}

std::optional<Reply> RawConnection::ReadReply(std::chrono::milliseconds limit) {
  error_code ignored;
  return impl_->socket.ReadReply(limit, ignored);
}

std::optional<Reply> RawConnection::WriteAndReadReply(std::string_view bytes,
                                                      std::chrono::milliseconds limit) {
  return impl_->socket.WriteAndReadReply(bytes, limit);
}

RawRead RawConnection::ReadUntilClosed(std::chrono::milliseconds limit) {
  return impl_->socket.ReadUntilClosed(limit);
}

bool RawConnection::WaitClosed(std::chrono::milliseconds limit) {
  return ReadUntilClosed(limit).closed;
}

}  // namespace invsync::testing
