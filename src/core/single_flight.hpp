#pragma once

#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>

namespace invsync::core {

/// Collapses concurrent calls for the same key into one: the first caller runs the function, the
/// others wait for and share its result (or its exception).
template <typename Value>
class SingleFlight {
 public:
  Value Do(const std::string& key, const std::function<Value()>& work) {
    std::unique_lock lock(mutex_);
    if (auto it = calls_.find(key); it != calls_.end()) {
      auto shared = it->second;
      lock.unlock();
      return shared.get();
    }
    std::promise<Value> promise;
    calls_.emplace(key, promise.get_future().share());
    lock.unlock();
    try {
      Value value = work();
      promise.set_value(value);
      Forget(key);
      return value;
    } catch (...) {
      promise.set_exception(std::current_exception());
      Forget(key);
      throw;
    }
  }

 private:
  void Forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    calls_.erase(key);
  }

  std::mutex mutex_;
  std::map<std::string, std::shared_future<Value>> calls_;
};

}  // namespace invsync::core
