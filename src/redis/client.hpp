#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/connection_pool.hpp"
#include "redis/value.hpp"

struct redisContext;

namespace invsync::redis {

/// Where a Redis server is: `redis://[:password@]host:port[/db]` or `unix:///path[?db=N]`.
struct Endpoint {
  std::string host;
  int port = 6379;
  std::string unix_path;  ///< non-empty for a unix socket
  std::string password;
  int db = 0;

  /// Parses a URL; throws `ConfigError` naming what is wrong.
  [[nodiscard]] static Endpoint Parse(std::string_view url);
  /// The URL without the password, for logs.
  [[nodiscard]] std::string Describe() const;
};

/// Arguments of one command; views must outlive the call.
using Args = std::vector<std::string_view>;

/// One connection to Redis. Connects fully in the constructor or throws `TransientError`.
/// After an I/O failure the connection is broken for good; the pool then drops it.
class Connection {
 public:
  Connection(const Endpoint& endpoint, std::chrono::milliseconds timeout);
  ~Connection();
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one command. Error replies throw (see `ThrowIfError`); I/O failures throw
  /// `TransientError` and break the connection.
  Value Command(const Args& args);
  /// Sends all commands in one write and reads all replies (one round trip). Error replies are
  /// returned as values, not thrown, so one failed command does not hide the others.
  std::vector<Value> Pipeline(const std::vector<Args>& commands);
  /// Changes the read timeout (used for blocking reads such as XREADGROUP BLOCK).
  void SetTimeout(std::chrono::milliseconds timeout);

  [[nodiscard]] bool broken() const { return broken_; }

 private:
  void Append(const Args& args);
  Value Read();

  redisContext* context_ = nullptr;
  bool broken_ = false;
};

/// A fixed-size pool of connections to one Redis, created lazily, shared by threads (see
/// ConnectionPool: a broken connection drops the idle ones too).
class Pool {
 public:
  using Lease = ConnectionPool<Connection>::Lease;

  Pool(Endpoint endpoint, std::size_t size, std::chrono::milliseconds timeout);

  /// Borrows a connection, waiting up to the timeout when all are in use; throws
  /// `TransientError` if none frees up or a new one cannot connect.
  [[nodiscard]] Lease Acquire() { return connections_.Acquire(); }
  /// A new connection outside the pool (for blocking reads that would hog a pooled one).
  [[nodiscard]] Connection Dedicated() const { return Connection(endpoint_, timeout_); }
  [[nodiscard]] const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  ConnectionPool<Connection> connections_;
};

}  // namespace invsync::redis
