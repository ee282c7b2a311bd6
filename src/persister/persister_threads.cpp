#include "persister/persister_threads.hpp"

#include <utility>

namespace invsync::persister {

PersisterThreads::PersisterThreads(redis::Pool& redis, db::Store& store, PersisterOptions options,
                                   int count, const std::vector<FaultHook>& hooks) {
  options.consumer.clear();
  options.turn = std::make_shared<GatherTurn>();
  for (int i = 0; i < count; ++i) {
    const auto at = static_cast<std::size_t>(i);
    persisters_.push_back(std::make_unique<Persister>(redis, store, options,
                                                      at < hooks.size() ? hooks[at] : FaultHook{}));
  }
  for (auto& persister : persisters_) {
    threads_.emplace_back([&persister](const std::stop_token& stop) { persister->Run(stop); });
  }
}

PersisterThreads::~PersisterThreads() { Stop(); }

void PersisterThreads::Stop() {
  // Every stop first: a persister waiting for the turn must not take it for one more read.
  for (auto& thread : threads_) {
    thread.request_stop();
  }
  threads_.clear();  // joins
}

}  // namespace invsync::persister
