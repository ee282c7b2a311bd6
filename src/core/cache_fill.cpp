#include "core/cache_fill.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::core {

namespace {

std::string RandomToken() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}", engine());
}

std::int64_t ParseQuantity(const std::string& text, const std::string& sku) {
  auto value = ParseInt64(text);
  if (!value) {
    throw PermanentError(
        fmt::format("Redis holds a non-integer quantity \"{}\" for SKU \"{}\"", text, sku));
  }
  return *value;
}

/// Sets Keys::kFillReadsActive (see CacheFiller::AnnounceRead).
redis::Args AnnounceReadCommand() {
  // Args are views: the text they point to must outlive the command.
  static const std::string ttl_ms = std::to_string(Keys::kFillReadsActiveTtl.count());
  return {"SET", Keys::kFillReadsActive, "1", "PX", ttl_ms};
}

}  // namespace

CacheFiller::CacheFiller(redis::Pool& redis, db::Store& store, const Keys& keys, Scripts& scripts,
                         FillOptions options, CacheCounters& counters)
    : redis_(redis),
      store_(store),
      keys_(keys),
      scripts_(scripts),
      options_(options),
      counters_(counters) {}

std::optional<std::int64_t> CacheFiller::Fill(const std::string& sku) {
  return flights_.Do(sku, [&] { return FillOnce(sku); });
}

std::optional<std::int64_t> CacheFiller::FillOnce(const std::string& sku) {
  const auto deadline = std::chrono::steady_clock::now() + options_.wait;
  const std::string token = RandomToken();
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (auto result = TryFill(sku, token)) {
      return *result;
    }
    if (std::chrono::steady_clock::now() + pause > deadline) {
      throw TransientError(fmt::format(
          "SKU \"{}\" could not be loaded into Redis within {} ms (another process holds the "
          "load, or events for it are still being persisted)",
          sku, options_.wait.count()));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

std::optional<std::optional<std::int64_t>> CacheFiller::TryFill(const std::string& sku,
                                                                const std::string& token) {
  const std::string inventory_key = keys_.Inventory(sku);
  const std::string absent_key = Keys::Absent(sku);
  const std::string lock_key = Keys::FillLock(sku);
  const std::string lock_ms = std::to_string(std::max<std::int64_t>(1, options_.lock_ttl.count()));
  std::vector<redis::Value> state;
  {
    auto conn = redis_.Acquire();
    // The epoch no later than the persisted count (fill.lua: the count compared is only
    // meaningful within one epoch).
    state = conn->Pipeline({{"HGET", inventory_key, "quantity"},
                            {"EXISTS", absent_key},
                            {"HGET", Keys::kInflight, sku},
                            {"GET", Keys::kEpoch},
                            {"HGET", Keys::kPersisted, sku},
                            {"SET", lock_key, token, "NX", "PX", lock_ms},
                            AnnounceReadCommand()});
  }
  for (const auto& value : state) {
    redis::ThrowIfError(value, "fill state");
  }
  const bool locked = !state[5].IsNil();
  auto release = [&] {
    if (locked) {
      auto conn = redis_.Acquire();
      scripts_.unlock.Run(*conn, {{lock_key}, {token}});
    }
  };
  if (auto cached = state[0].AsOptionalString()) {
    release();
    return std::optional<std::int64_t>(ParseQuantity(*cached, sku));
  }
  if (state[1].AsInteger() == 1) {
    release();
    counters_.absent_hits.fetch_add(1, std::memory_order_relaxed);
    return std::optional<std::int64_t>(std::nullopt);
  }
  if (!locked || state[2].AsOptionalInteger().value_or(0) > 0) {
    // Another process is loading it, or its events are not in the database yet: wait.
    release();
    return std::nullopt;
  }
  std::string persisted_before = state[4].AsOptionalString().value_or("0");
  const Epoch epoch_before = state[3].AsOptionalString();
  try {
    counters_.database_reads.fetch_add(1, std::memory_order_relaxed);
    const auto started = std::chrono::steady_clock::now();
    const FillInput input{sku, store_.LoadStock(sku), std::move(persisted_before)};
    auto installed = Interpret(Install(std::span(&input, 1), started, epoch_before).front());
    release();
    return installed;
  } catch (...) {
    try {
      release();
    } catch (const Error&) {
      // The lock expires by itself; the original failure matters more.
    }
    throw;
  }
}

bool CacheFiller::TooOld(std::chrono::steady_clock::time_point read_started) {
  // Changes applied meanwhile are remembered for Keys::kRecentChangesTtl, or noted while
  // Keys::kFillReadsActive (set before the read) lives, for Keys::kCachedChangesTurn; all outlive
  // a read of at most this age. An older read might miss some, so it is read again.
  return std::chrono::steady_clock::now() - read_started > Keys::kFillReadMaxAge;
}

std::optional<std::optional<std::int64_t>> CacheFiller::Interpret(const FillResult& result) {
  switch (result.outcome) {
    case FillOutcome::kCached:
    case FillOutcome::kFilled:
      return std::optional<std::int64_t>(result.quantity);
    case FillOutcome::kAbsent:
      return std::optional<std::int64_t>(std::nullopt);
    case FillOutcome::kInflight:
    case FillOutcome::kRetry:
      break;
  }
  return std::nullopt;
}

redis::ScriptCall CacheFiller::FillCall(std::span<const FillInput> inputs, bool lean,
                                        const Epoch& epoch_before) const {
  const std::size_t keys_per_sku = lean ? 1 : 3;
  redis::ScriptCall call;
  call.keys.reserve(8 + keys_per_sku * inputs.size());
  call.args.reserve(3 + 2 * inputs.size());
  call.keys = {std::string(Keys::kInflight),
               std::string(Keys::kPersisted),
               std::string(Keys::kFillPositions),
               std::string(Keys::kRecentChangesExist),
               std::string(Keys::kAbsentMarkersExist),
               std::string(Keys::kCachedChanges),
               std::string(Keys::kPreviousCachedChanges),
               std::string(Keys::kEpoch)};
  // An epoch is never empty: '' stands for none (fill.lua).
  call.args = {std::to_string(options_.absent_ttl.count()), std::to_string(keys_per_sku),
               epoch_before.value_or("")};
  for (const auto& input : inputs) {
    call.keys.push_back(keys_.Inventory(input.sku));
    if (!lean) {
      call.keys.push_back(Keys::Absent(input.sku));
      call.keys.push_back(Keys::RecentChanges(input.sku));
    }
    call.args.push_back(input.sku);
    call.args.push_back(input.snapshot.quantity ? std::to_string(*input.snapshot.quantity)
                                                : std::string());
  }
  // Only SKUs with a persisted count or a change seq other than "0" and 0 list them (fill.lua).
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& input = inputs[i];
    if (input.persisted_before != "0" || input.snapshot.change_seq != 0) {
      call.args.push_back(std::to_string(i + 1));
      call.args.push_back(input.persisted_before);
      call.args.push_back(std::to_string(input.snapshot.change_seq));
    }
  }
  return call;
}

bool CacheFiller::MayBeLean(redis::Connection& connection, std::span<const FillInput> inputs) {
  // Below a full call, the keys saved do not pay for the round trip that asks.
  if (inputs.size() < kSkusPerCall ||
      !std::all_of(inputs.begin(), inputs.end(),
                   [](const FillInput& input) { return input.snapshot.quantity.has_value(); })) {
    return false;
  }
  auto reply = connection.Command({"EXISTS", Keys::kRecentChangesExist, Keys::kAbsentMarkersExist});
  redis::ThrowIfError(reply, "EXISTS");
  return reply.AsInteger() == 0;
}

void CacheFiller::ReadFillReply(const redis::Value& reply, std::span<const FillInput> inputs,
                                std::span<FillResult> results) {
  redis::ThrowIfError(reply, "fill");
  // One letter per SKU, then the quantities of the SKUs answered 'f' or 'c' (fill.lua's header).
  const auto& elements = reply.AsArray();
  const std::string& codes = elements.empty() ? std::string() : elements.front().AsString();
  if (codes.size() != inputs.size()) {
    throw PermanentError(
        fmt::format("fill.lua answered {} outcomes for {} SKUs", codes.size(), inputs.size()));
  }
  std::size_t next_quantity = 1;
  auto quantity = [&](const std::string& sku) {
    if (next_quantity >= elements.size()) {
      throw PermanentError(
          fmt::format("fill.lua answered too few quantities ({} elements for {} SKUs)",
                      elements.size(), inputs.size()));
    }
    return ParseQuantity(elements[next_quantity++].AsString(), sku);
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto& result = results[i];
    switch (codes[i]) {
      case 'F':
        if (!inputs[i].snapshot.quantity) {
          throw PermanentError(fmt::format(
              "fill.lua filled SKU \"{}\", which the database did not have", inputs[i].sku));
        }
        result = {.outcome = FillOutcome::kFilled, .quantity = *inputs[i].snapshot.quantity};
        break;
      case 'f':
        result = {.outcome = FillOutcome::kFilled, .quantity = quantity(inputs[i].sku)};
        break;
      case 'c':
        result = {.outcome = FillOutcome::kCached, .quantity = quantity(inputs[i].sku)};
        break;
      case 'a':
        result.outcome = FillOutcome::kAbsent;
        break;
      case 'i':
        result.outcome = FillOutcome::kInflight;
        break;
      case 'r':
        result.outcome = FillOutcome::kRetry;
        break;
      default:
        throw PermanentError(fmt::format("fill.lua answered an unknown outcome '\\x{:02x}'",
                                         static_cast<unsigned char>(codes[i])));
    }
  }
  if (next_quantity != elements.size()) {
    throw PermanentError(fmt::format("fill.lua answered {} elements for {} quantities",
                                     elements.size(), next_quantity - 1));
  }
}

std::span<const FillInput> CacheFiller::CallInputs(std::span<const FillInput> inputs,
                                                   std::size_t call) {
  const std::size_t first = call * kSkusPerCall;
  return inputs.subspan(first, std::min(kSkusPerCall, inputs.size() - first));
}

std::vector<redis::Value> CacheFiller::RunFillCalls(std::span<const FillInput> inputs,
                                                    const Epoch& epoch_before) {
  const std::size_t call_count = (inputs.size() + kSkusPerCall - 1) / kSkusPerCall;
  auto conn = redis_.Acquire();
  const bool lean = MayBeLean(*conn, inputs);
  std::vector<redis::ScriptCall> calls;
  for (std::size_t call = 0; call < call_count; ++call) {
    calls.push_back(FillCall(CallInputs(inputs, call), lean, epoch_before));
  }
  auto replies = scripts_.fill.RunMany(*conn, calls);
  if (!lean) {
    return replies;
  }
  // Calls that found recent changes or absent markers after all changed nothing: again, in full.
  std::vector<std::size_t> refused;
  calls.clear();
  for (std::size_t call = 0; call < call_count; ++call) {
    if (replies[call].type == redis::Value::Type::kString && replies[call].str == "full") {
      refused.push_back(call);
      calls.push_back(FillCall(CallInputs(inputs, call), false, epoch_before));
    }
  }
  if (!calls.empty()) {
    auto again = scripts_.fill.RunMany(*conn, calls);
    for (std::size_t i = 0; i < refused.size(); ++i) {
      replies[refused[i]] = std::move(again[i]);
    }
  }
  return replies;
}

std::vector<FillResult> CacheFiller::Install(std::span<const FillInput> inputs,
                                             std::chrono::steady_clock::time_point read_started,
                                             const Epoch& epoch_before) {
  std::vector<FillResult> results(inputs.size());
  if (inputs.empty() || TooOld(read_started)) {
    return results;  // all kRetry
  }
  const auto replies = RunFillCalls(inputs, epoch_before);
  for (std::size_t call = 0; call < replies.size(); ++call) {
    const auto call_inputs = CallInputs(inputs, call);
    ReadFillReply(replies[call], call_inputs,
                  std::span(results).subspan(call * kSkusPerCall, call_inputs.size()));
  }
  return results;
}

PersistedBefore CacheFiller::PersistedCounts(redis::Connection& connection,
                                             std::span<const std::string> skus) {
  PersistedBefore before;
  if (skus.empty()) {
    return before;
  }
  redis::Args command{"HMGET", Keys::kPersisted};
  command.insert(command.end(), skus.begin(), skus.end());
  auto replies = connection.Pipeline({AnnounceReadCommand(), {"GET", Keys::kEpoch}, command});
  redis::ThrowIfError(replies[0], "SET");
  redis::ThrowIfError(replies[1], "GET");
  redis::ThrowIfError(replies[2], "HMGET");
  before.epoch = replies[1].AsOptionalString();
  for (const auto& count : replies[2].AsArray()) {
    before.counts.push_back(count.AsOptionalString().value_or("0"));
  }
  if (before.counts.size() != skus.size()) {
    throw PermanentError(
        fmt::format("HMGET answered {} values for {} fields", before.counts.size(), skus.size()));
  }
  return before;
}

AnnouncedRead CacheFiller::AnnounceRead(redis::Connection& connection) {
  auto replies = connection.Pipeline(
      {AnnounceReadCommand(), {"GET", Keys::kEpoch}, {"EXISTS", Keys::kPersisted}});
  redis::ThrowIfError(replies[0], "SET");
  redis::ThrowIfError(replies[1], "GET");
  redis::ThrowIfError(replies[2], "EXISTS");
  return {.any_persisted = replies[2].AsInteger() != 0, .epoch = replies[1].AsOptionalString()};
}

std::vector<FillResult> CacheFiller::LoadAndInstall(std::span<const std::string> skus) {
  if (skus.empty()) {
    return {};
  }
  PersistedBefore before;
  {
    auto conn = redis_.Acquire();
    before = PersistedCounts(*conn, skus);
  }
  counters_.database_reads.fetch_add(1, std::memory_order_relaxed);
  const auto started = std::chrono::steady_clock::now();
  auto loaded = store_.LoadStocks(skus);
  std::vector<FillInput> inputs;
  inputs.reserve(skus.size());
  for (std::size_t i = 0; i < skus.size(); ++i) {
    inputs.push_back({skus[i], loaded[skus[i]], std::move(before.counts[i])});
  }
  return Install(inputs, started, before.epoch);
}

std::map<std::string, std::int64_t> CacheFiller::FillMany(std::span<const std::string> skus) {
  std::map<std::string, std::int64_t> found;
  if (skus.empty()) {
    return found;
  }
  // Args are views: the key strings must outlive the pipeline call.
  std::vector<std::string> absent_keys;
  absent_keys.reserve(skus.size());
  for (const auto& sku : skus) {
    absent_keys.push_back(Keys::Absent(sku));
  }
  std::vector<redis::Args> commands;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    commands.push_back({"EXISTS", absent_keys[i]});
    commands.push_back({"HGET", Keys::kInflight, skus[i]});
  }
  std::vector<redis::Value> state;
  {
    auto conn = redis_.Acquire();
    state = conn->Pipeline(commands);
  }
  std::vector<std::string> candidates;
  std::vector<std::string> one_by_one;
  for (std::size_t i = 0; i < skus.size(); ++i) {
    redis::ThrowIfError(state[2 * i], "EXISTS");
    if (state[2 * i].AsInteger() == 1) {
      counters_.absent_hits.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (state[2 * i + 1].AsOptionalInteger().value_or(0) > 0) {
      one_by_one.push_back(skus[i]);
      continue;
    }
    candidates.push_back(skus[i]);
  }
  auto results = LoadAndInstall(candidates);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    auto installed = Interpret(results[i]);
    if (!installed) {
      one_by_one.push_back(candidates[i]);
    } else if (*installed) {
      found.emplace(candidates[i], **installed);
    }
  }
  for (const auto& sku : one_by_one) {
    if (auto quantity = Fill(sku)) {
      found.emplace(sku, *quantity);
    }
  }
  return found;
}

}  // namespace invsync::core
