#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "audit.hpp"
#include "bench_support.hpp"

namespace invsync::bench {

/// Who serves the requests of a run.
enum class Target { kInvsync, kDbOnly, kNaiveCache };
[[nodiscard]] Target ParseTarget(const std::string& name);
[[nodiscard]] std::string TargetName(Target target);

/// Seeds stock the way each target finds it in a running shop: rows in `inventory` (written as
/// invsync's persister writes, so change capture records nothing), and for the targets with a
/// cache, every SKU cached: through invsync's own cache fill for invsync, HSET for naive-cache.
/// For the peers the capture trigger is dropped first: a shop without invsync has none.
void Seed(Target target, const Servers& servers, const std::map<std::string, std::int64_t>& stock);

/// Waits until invsync has written every accepted change to the database and applied every
/// database-side change to Redis (unpersisted events 0, unapplied outbox rows 0). Returns the
/// seconds it took; throws `std::runtime_error` after `limit`.
double WaitDrained(const Servers& servers, std::chrono::seconds limit);

/// Reads the ledger's orders and cancels and the quantity of `skus` in the database (and in
/// Redis with `with_redis`).
[[nodiscard]] Observed ReadObserved(const Servers& servers, const std::set<std::string>& skus,
                                    bool with_redis);

/// Redis's `used_memory` in bytes.
[[nodiscard]] std::int64_t RedisUsedMemory(const Servers& servers);

/// Peak resident set size (VmHWM) of a process in KiB, nullopt if it cannot be read.
[[nodiscard]] std::optional<std::int64_t> PeakRssKib(pid_t pid);

}  // namespace invsync::bench
