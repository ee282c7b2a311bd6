#include "api/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "api/fast_path.hpp"
#include "api/http_message.hpp"
#include "common/error.hpp"
#include "common/text.hpp"
#include "redis/async_client.hpp"

namespace invsync::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

tcp::endpoint ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw ConfigError(fmt::format("server.listen: expected HOST:PORT, got \"{}\"", listen));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    throw ConfigError(fmt::format("server.listen: \"{}\" is not an IP address", host));
  }
  int port = std::stoi(listen.substr(colon + 1));
  return {address, static_cast<unsigned short>(port)};
}

std::string NewRequestId() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}", engine());
}

// Sent before reading the body of a request that asks for it (RFC 9110, 10.1.1).
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// A failed accept leaves the connection in the backlog, so accepting again at once would fail
// again at once (out of file descriptors, say): the next try waits this long.
constexpr std::chrono::milliseconds kAcceptRetry{100};

// File descriptors kept for everything but client connections (Redis and database pools, logs,
// the persisters' and syncer's connections): `max_connections` is lowered to leave them.
constexpr rlim_t kDescriptorReserve = 128;

// At most `max_connections`, and few enough that the process's open-file limit leaves the reserve.
std::size_t ConnectionLimit(std::size_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return max_connections;
  }
  const rlim_t reserve = std::min(kDescriptorReserve, limit.rlim_cur / 2);
  const auto fits = static_cast<std::size_t>(limit.rlim_cur - reserve);
  if (fits < max_connections) {
    spdlog::warn(
        "server.max_connections {} does not fit the open-file limit of {} (ulimit -n): at most {} "
        "connections are served",
        max_connections, limit.rlim_cur, fits);
    return fits;
  }
  return max_connections;
}

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, Handlers& handlers);

  std::uint16_t Start();
  void Stop();
  std::size_t ReadyRedisConnections();

  class Session;

 private:
  // One thread running its own io_context: its connections, their timers and its Redis client
  // are only ever touched by that thread.
  struct IoThread {
    net::io_context io{1};
    net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(io);
    std::unique_ptr<redis::AsyncClient> redis;  // after `io`: destroyed before it
    std::thread thread;
  };

  void Accept();
  void RetryAccept(const boost::system::error_code& ec);

  ServerOptions options_;
  Handlers& handlers_;
  FastPath fast_path_;
  std::atomic<int> connections_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  bool stopped_ = false;
  std::vector<std::unique_ptr<IoThread>> io_threads_;
  std::size_t next_io_thread_ = 0;   // used by the accept handler only
  std::size_t max_connections_ = 0;  // set by Start
  std::optional<tcp::acceptor> acceptor_;
  // Touched by the acceptor's thread only, like `next_io_thread_`.
  std::optional<net::steady_timer> accept_retry_;
  std::chrono::steady_clock::time_point accept_warned_;
  int accept_failures_ = 0;  // since the last warning
  net::thread_pool workers_;
};

Server::Impl::Impl(ServerOptions options, Handlers& handlers)
    : options_(std::move(options)),
      handlers_(handlers),
      fast_path_(handlers),
      workers_(static_cast<std::size_t>(std::max(1, options_.workers))) {
  const int count = options_.io_threads > 0
                        ? options_.io_threads
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < count; ++i) {
    auto thread = std::make_unique<IoThread>();
    if (options_.redis_connections > 0) {
      thread->redis = std::make_unique<redis::AsyncClient>(
          thread->io, handlers_.redis_endpoint(),
          redis::AsyncOptions{.connections = static_cast<std::size_t>(options_.redis_connections),
                              .command_timeout = options_.request_deadline});
    }
    io_threads_.push_back(std::move(thread));
  }
  acceptor_.emplace(io_threads_.front()->io);
  accept_retry_.emplace(io_threads_.front()->io);
}

class Server::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Impl& server, IoThread& home)
      : stream_(std::move(socket)), server_(server), home_(home), deadline_(home.io) {
    ++server_.connections_;
  }
  ~Session() { --server_.connections_; }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Begin() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->server_.options_.access_log) {
        boost::system::error_code ignored;
        self->remote_ = self->stream_.socket().remote_endpoint(ignored).address().to_string();
      }
      self->WaitForRequest();
    });
  }

 private:
  // Between requests a connection may sit idle for idle_timeout; once a request has begun it must
  // arrive whole within read_timeout (so a client trickling bytes is cut off).
  void WaitForRequest() {
    if (server_.stopping_) {
      return Close();
    }
    if (buffer_.size() > 0) {
      return ReadRequest();
    }
    stream_.expires_after(server_.options_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                              if (ec) {
                                return self->Close();
                              }
                              self->buffer_.commit(bytes);
                              self->ReadRequest();
                            });
  }

  // The header section first, so that a client waiting for "100 Continue" gets it; the body has
  // usually come with the header and is parsed from the buffer without another read.
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // One byte over the limit is enough to know the body is too large.
    parser_->body_limit(server_.handlers_.options().body_limit);
    stream_.expires_after(server_.options_.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (!ec && !parser_->is_done()) {
      parser_->eager(true);
      buffer_.consume(parser_->put(buffer_.data(), ec));
      if (ec == http::error::need_more) {
        ec = {};
      }
    }
    if (ec || parser_->is_done()) {
      return OnRead(ec);
    }
    if (parser_->get().version() >= 11 &&
        beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                              [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                                if (write_ec) {
                                  return self->Close();
                                }
                                self->ReadBody();
                              });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      // The header section is in: answer with the client's request id.
      auto given = parser_->get()["X-Request-Id"];
      refused_request_id_.assign(given.data(), given.size());
      return Refuse(
          413, "body_too_large",
          fmt::format("body over the limit of {} bytes", server_.handlers_.options().body_limit));
    }
    if (ec == http::error::header_limit) {
      return Refuse(431, "headers_too_large",
                    fmt::format("header section over {} bytes", kHeaderLimit));
    }
    if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      return Close();
    }
    if (ec) {
      return Refuse(400, "bad_request", fmt::format("malformed HTTP request: {}", ec.message()));
    }
    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    request_ = RequestFromMessage(std::move(message));
    // HEAD is GET without the body (RFC 9110, 9.3.2): the answer keeps GET's headers, including
    // Content-Length, and the next response on the connection follows them at once.
    head_ = request_.method == "HEAD";
    if (head_) {
      request_.method = "GET";
    }
    if (request_.request_id.empty()) {
      request_.request_id = NewRequestId();
    }
    Dispatch();
  }

  // Answers on this thread when the fast path can, else on the worker pool; answers 504 if the
  // request takes longer than the deadline. One request per connection is in flight at a time
  // (the next is read once this one is answered); `serial_` tells a late completion of an
  // abandoned request from the current one.
  void Dispatch() {
    ++server_.in_flight_;
    const std::uint64_t serial = ++serial_;
    answered_ = false;
    started_ = std::chrono::steady_clock::now();
    request_id_ = request_.request_id;
    deadline_.expires_after(server_.options_.request_deadline);
    deadline_.async_wait([self = shared_from_this(), serial](beast::error_code ec) {
      if (!ec && self->Current(serial)) {
        self->Expire();
      }
    });
    if (home_.redis &&
        server_.fast_path_.Start(request_, *home_.redis,
                                 [self = shared_from_this(), serial](
                                     std::optional<Response> response, bool may_have_run) {
                                   self->OnFastAnswer(serial, std::move(response), may_have_run);
                                 })) {
      return;
    }
    RunOnWorker(serial);
  }

  [[nodiscard]] bool Current(std::uint64_t serial) const { return serial == serial_ && !answered_; }

  void OnFastAnswer(std::uint64_t serial, std::optional<Response> response, bool may_have_run) {
    if (!Current(serial)) {
      --server_.in_flight_;  // answered 504 meanwhile
      return;
    }
    server_.handlers_.metrics().RecordFastPath(response.has_value());
    if (!response) {
      // The worker runs it again (idempotent by order id); if it cannot reach Redis, whether
      // this attempt took effect is unknown.
      request_.may_have_run = may_have_run;
      return RunOnWorker(serial);
    }
    answered_ = true;
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    const std::string_view method = head_ ? std::string_view("HEAD") : request_.method;
    server_.handlers_.metrics().RecordRequest(method, response->route, response->status, elapsed);
    if (server_.options_.access_log) {
      LogAccess(method, request_, *response, elapsed);
    }
    Write(std::move(*response), request_id_);
    --server_.in_flight_;
  }

  void RunOnWorker(std::uint64_t serial) {
    net::post(server_.workers_, [self = shared_from_this(), request = std::move(request_), serial,
                                 started = started_, head = head_]() mutable {
      Response response = self->server_.handlers_.Handle(request);
      const auto elapsed = std::chrono::steady_clock::now() - started;
      const std::string_view method = head ? std::string_view("HEAD") : request.method;
      self->server_.handlers_.metrics().RecordRequest(method, response.route, response.status,
                                                      elapsed);
      if (self->server_.options_.access_log) {
        self->LogAccess(method, request, response, elapsed);
      }
      net::post(self->stream_.get_executor(), [self, response = std::move(response), serial,
                                               id = std::move(request.request_id)]() mutable {
        if (self->Current(serial)) {
          self->answered_ = true;
          self->Write(std::move(response), id);
        }
        --self->server_.in_flight_;
      });
    });
  }

  void Expire() {
    answered_ = true;
    auto response = ErrorResponse(504, "deadline_exceeded",
                                  "the request took longer than the server's deadline");
    server_.handlers_.metrics().RecordRequest("-", "deadline", 504,
                                              std::chrono::steady_clock::now() - started_);
    Write(std::move(response), request_id_);
  }

  // One JSON line per request; the Authorization header is never part of it.
  void LogAccess(std::string_view method, const Request& request, const Response& response,
                 std::chrono::steady_clock::duration elapsed) const {
    nlohmann::json line = {
        {"request_id", request.request_id},
        {"remote", remote_},
        {"method", method},
        {"target", request.target.substr(0, 512)},
        {"route", response.route},
        {"status", response.status},
        {"duration_ms", std::chrono::duration<double, std::milli>(elapsed).count()},
        {"request_bytes", request.body.size()},
        {"response_bytes", response.body.size()}};
    spdlog::info("access {}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Answers a request that could not be read and closes the connection.
  void Refuse(int status, std::string_view code, std::string_view message) {
    keep_alive_ = false;
    head_ = false;
    ++server_.in_flight_;
    std::string id = IsIdentifier(refused_request_id_) ? refused_request_id_ : NewRequestId();
    Write(ErrorResponse(status, code, message), id, /*counted=*/true);
  }

  // The response goes out as one preformatted buffer (status line, Server, Content-Type,
  // X-Request-Id, the response's own headers, Connection when it differs from the version's
  // default, Content-Length): far cheaper than Beast's serializer for these small answers.
  void Write(Response response, const std::string& request_id, bool counted = false) {
    const unsigned version = version_ == 0 ? 11 : version_;
    const bool keep_alive = keep_alive_ && !server_.stopping_;
    out_.clear();
    auto out = std::back_inserter(out_);
    const auto reason = http::obsolete_reason(static_cast<http::status>(response.status));
    fmt::format_to(
        out, "HTTP/{}.{} {} {}\r\nServer: invsync\r\nContent-Type: {}\r\nX-Request-Id: {}\r\n",
        version / 10, version % 10, response.status, std::string_view(reason.data(), reason.size()),
        response.content_type, request_id);
    for (const auto& [name, value] : response.headers) {
      fmt::format_to(out, "{}: {}\r\n", name, value);
    }
    if (version >= 11 && !keep_alive) {
      out_ += "Connection: close\r\n";
    } else if (version < 11 && keep_alive) {
      out_ += "Connection: keep-alive\r\n";
    }
    fmt::format_to(out, "Content-Length: {}\r\n\r\n", response.body.size());
    if (!head_) {
      out_ += response.body;
    }
    stream_.expires_after(server_.options_.read_timeout);
    net::async_write(
        stream_, net::buffer(out_),
        [self = shared_from_this(), keep_alive, counted](beast::error_code ec, std::size_t) {
          if (counted) {
            --self->server_.in_flight_;
          }
          if (ec || !keep_alive) {
            return self->Close();
          }
          self->WaitForRequest();
        });
  }

  void Close() {
    deadline_.cancel();  // its wait holds the session alive
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Impl& server_;
  IoThread& home_;
  beast::flat_buffer buffer_;  // bounded by the parser's header and body limits
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;  // the request in flight (moved to the worker that runs it)
  std::string request_id_;
  std::uint64_t serial_ = 0;
  bool answered_ = true;
  std::chrono::steady_clock::time_point started_;
  net::steady_timer deadline_;
  bool keep_alive_ = true;
  bool head_ = false;  // the request in flight is a HEAD: its answer goes without the body
  unsigned version_ = 11;
  std::string out_;     // the response being written
  std::string remote_;  // with the access log only
  std::string refused_request_id_;
};

std::uint16_t Server::Impl::Start() {
  tcp::endpoint endpoint = ParseListen(options_.listen);
  boost::system::error_code ec;
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_->listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw ConfigError(
        fmt::format("server.listen: cannot listen on {}: {}", options_.listen, ec.message()));
  }
  max_connections_ = ConnectionLimit(options_.max_connections);
  Accept();
  for (auto& thread : io_threads_) {
    if (thread->redis) {
      thread->redis->Start();  // before the thread runs: nothing else touches it yet
    }
    thread->thread = std::thread([&io = thread->io] { io.run(); });
  }
  started_ = true;
  return acceptor_->local_endpoint().port();
}

void Server::Impl::Accept() {
  IoThread& home = *io_threads_[next_io_thread_];
  next_io_thread_ = (next_io_thread_ + 1) % io_threads_.size();
  acceptor_->async_accept(home.io, [this, &home](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      return RetryAccept(ec);
    }
    if (connections_.load() >= static_cast<int>(max_connections_)) {
      beast::error_code ignored;
      socket.close(ignored);  // over the limit: refuse rather than queue
    } else {
      // Each answer leaves at once: with Nagle's algorithm, a client that pipelines requests
      // would have an answer held back until the one before it is acknowledged (which a
      // delayed ACK can hold for tens of milliseconds).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket), *this, home)->Begin();
    }
    Accept();
  });
}

void Server::Impl::RetryAccept(const boost::system::error_code& ec) {
  if (ec == net::error::operation_aborted || !acceptor_->is_open()) {
    return;  // stopping
  }
  ++accept_failures_;
  const auto now = std::chrono::steady_clock::now();
  if (now - accept_warned_ >= std::chrono::seconds(1)) {
    spdlog::warn("accept failed: {} ({} times since the last warning; retrying every {} ms)",
                 ec.message(), accept_failures_, kAcceptRetry.count());
    accept_warned_ = now;
    accept_failures_ = 0;
  }
  accept_retry_->expires_after(kAcceptRetry);
  accept_retry_->async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec && acceptor_->is_open()) {
      Accept();
    }
  });
}

void Server::Impl::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  stopping_ = true;
  net::post(acceptor_->get_executor(), [this] {
    beast::error_code ignored;
    acceptor_->close(ignored);
    accept_retry_->cancel();
  });
  const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& thread : io_threads_) {
    thread->io.stop();
  }
  for (auto& thread : io_threads_) {
    if (thread->thread.joinable()) {
      thread->thread.join();
    }
  }
  workers_.join();
  for (auto& thread : io_threads_) {
    thread->redis.reset();  // its threads are gone: no callback can run any more
  }
}

std::size_t Server::Impl::ReadyRedisConnections() {
  if (stopping_ || !started_) {
    return 0;
  }
  std::size_t ready = 0;
  for (auto& thread : io_threads_) {
    if (!thread->redis) {
      continue;
    }
    auto promise = std::make_shared<std::promise<std::size_t>>();
    auto answer = promise->get_future();
    net::post(thread->io,
              [promise, &thread] { promise->set_value(thread->redis->ready_connections()); });
    if (answer.wait_for(std::chrono::seconds(1)) == std::future_status::ready) {
      ready += answer.get();
    }
  }
  return ready;
}

Server::Server(ServerOptions options, Handlers& handlers)
    : impl_(std::make_unique<Impl>(std::move(options), handlers)) {}

Server::~Server() { impl_->Stop(); }

std::uint16_t Server::Start() { return impl_->Start(); }

void Server::Stop() { impl_->Stop(); }

std::size_t Server::ReadyRedisConnections() { return impl_->ReadyRedisConnections(); }

}  // namespace invsync::api
