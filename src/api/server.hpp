#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/handlers.hpp"

namespace invsync::api {

struct ServerOptions {
  std::string listen = "127.0.0.1:8080";  ///< HOST:PORT; port 0 picks a free one
  int io_threads = 0;                     ///< 0: one per core
  int workers = 16;                       ///< threads running blocking calls into Redis/database
  /// Redis connections per I/O thread for the requests it answers itself (cached reads and
  /// orders); 0 sends every request to the workers.
  int redis_connections = 1;
  std::chrono::milliseconds read_timeout{10'000};     ///< whole request (headers and body)
  std::chrono::milliseconds idle_timeout{60'000};     ///< keep-alive connection with no request
  std::chrono::milliseconds request_deadline{5'000};  ///< answer 504 when a call takes longer
  std::size_t max_connections = 4096;                 ///< further connections are closed at once
  std::chrono::milliseconds shutdown_grace{10'000};   ///< for in-flight requests at Stop()
  bool access_log = false;  ///< one structured (JSON) log line per request
};

/// The HTTP/1.1 server (Boost.Beast, asynchronous, keep-alive; pipelined requests are answered
/// in order). Each I/O thread runs its own connections and its own asynchronous Redis client:
/// cached reads and orders are answered right there with one Redis command that never blocks
/// the thread (see `FastPath`), commands of all its connections sharing round trips. Every other
/// request, and those two when anything is out of the ordinary, runs on a worker pool so a slow
/// Redis or database call never stalls other connections.
class Server {
 public:
  Server(ServerOptions options, Handlers& handlers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds, starts the threads and returns the bound port. Throws `ConfigError` if the address
  /// is invalid or cannot be bound.
  std::uint16_t Start();
  /// Stops accepting, lets in-flight requests finish (up to the grace), then stops the threads.
  void Stop();
  /// Redis connections of the I/O threads ready for commands, over all threads (asks each
  /// thread; 0 before `Start`, after `Stop` or with `redis_connections` = 0).
  [[nodiscard]] std::size_t ReadyRedisConnections();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace invsync::api
