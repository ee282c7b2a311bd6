#pragma once

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace invsync {

/// A fixed-size pool of connections (Redis, PostgreSQL, SQLite), opened on demand and shared by
/// threads. A connection that reports `broken()` when returned is dropped, and so are the idle
/// ones: a connection breaks when its server went away (a restart, a failover), and the idle ones
/// are then as dead; dropping them saves each later borrower one failed call. A database
/// connection handed back inside a transaction (one whose ROLLBACK failed, or that failed between
/// its BEGIN and the code that would have rolled it back) is dropped alone: lent again, it would
/// fail its next borrower's BEGIN, or make the borrower's work part of an aborted transaction.
template <typename Connection>
class ConnectionPool {
 public:
  using Factory = std::function<std::unique_ptr<Connection>()>;

  /// `what` names the connections in errors ("Redis", "database").
  ConnectionPool(Factory open, std::size_t size, std::chrono::milliseconds wait, std::string what)
      : open_(std::move(open)), size_(size), wait_(wait), what_(std::move(what)) {}

  /// A connection on loan; returns to the pool when destroyed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ~Lease() {
      if (connection_ != nullptr) {
        pool_->Release(std::move(connection_));
      }
    }
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection* operator->() const { return connection_.get(); }
    Connection& operator*() const { return *connection_; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  /// Borrows a connection, waiting up to the pool's wait when all are in use; throws
  /// `TransientError` if none frees up, or what opening a new one threw.
  Lease Acquire() {
    std::unique_lock lock(mutex_);
    if (!freed_.wait_for(lock, wait_, [this] { return !idle_.empty() || opened_ < size_; })) {
      throw TransientError(fmt::format("no {} connection free within {} ms", what_, wait_.count()));
    }
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    ++opened_;
    lock.unlock();
    try {
      return Lease(this, open_());
    } catch (...) {
      lock.lock();
      --opened_;
      freed_.notify_one();
      throw;
    }
  }

 private:
  void Release(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    if (connection->broken()) {
      opened_ -= 1 + idle_.size();
      idle_.clear();
      freed_.notify_all();
      return;
    }
    if constexpr (requires { connection->in_transaction(); }) {
      if (connection->in_transaction()) {
        --opened_;
        freed_.notify_one();
        return;
      }
    }
    idle_.push_back(std::move(connection));
    freed_.notify_one();
  }

  Factory open_;
  std::size_t size_;
  std::chrono::milliseconds wait_;
  std::string what_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t opened_ = 0;
};

}  // namespace invsync
