#pragma once

#include <cstddef>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

#include "persister/persister.hpp"

namespace invsync::persister {

/// Several persisters of one process, each running `Persister::Run` on its own thread, sharing one
/// GatherTurn: they gather their batches one at a time and write them side by side.
class PersisterThreads {
 public:
  /// Starts `count` persisters; `hooks[i]`, if given, is the fault hook of the i-th. A consumer
  /// name in `options` is ignored (each gets its own); so is its `turn` (they share a new one).
  PersisterThreads(redis::Pool& redis, db::Store& store, PersisterOptions options, int count,
                   const std::vector<FaultHook>& hooks = {});
  ~PersisterThreads();
  PersisterThreads(const PersisterThreads&) = delete;
  PersisterThreads& operator=(const PersisterThreads&) = delete;

  /// Stops every thread and joins it: each finishes the batch in hand.
  void Stop();

  [[nodiscard]] std::size_t size() const { return persisters_.size(); }
  [[nodiscard]] const Persister& at(std::size_t i) const { return *persisters_.at(i); }

 private:
  std::vector<std::unique_ptr<Persister>> persisters_;
  std::vector<std::jthread> threads_;  // last: stopped and joined before the persisters go
};

}  // namespace invsync::persister
