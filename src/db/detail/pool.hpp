#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/error.hpp"

namespace invsync::db::detail {

/// A fixed-size pool of database connections, opened on demand and shared by threads. A
/// connection that reports `broken()` when returned is dropped; the next borrower opens a new one.
template <typename Connection>
class Pool {
 public:
  using Factory = std::function<std::unique_ptr<Connection>()>;

  Pool(Factory open, std::size_t size) : open_(std::move(open)), size_(size) {}

  /// A connection on loan; returns to the pool when destroyed.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> connection)
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
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  /// Borrows a connection, waiting up to 10 s when all are in use; throws `TransientError` if none
  /// frees up, or what opening a new one threw.
  Lease Acquire() {
    constexpr auto kWait = std::chrono::seconds(10);
    std::unique_lock lock(mutex_);
    if (!freed_.wait_for(lock, kWait, [this] { return !idle_.empty() || opened_ < size_; })) {
      throw TransientError("no database connection free within 10 s");
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
      --opened_;
    } else {
      idle_.push_back(std::move(connection));
    }
    freed_.notify_one();
  }

  Factory open_;
  std::size_t size_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t opened_ = 0;
};

}  // namespace invsync::db::detail
