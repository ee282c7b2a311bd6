#include "persister/persister.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>
#include <thread>
#include <unordered_map>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/process.hpp"
#include "core/keys.hpp"
#include "persister/event_codec.hpp"

namespace invsync::persister {

using core::Keys;

namespace {

std::string DefaultConsumerName() {
  static std::atomic<int> counter{0};
  return fmt::format("{}-{}", HostAndPid(), counter.fetch_add(1));
}

// The stream id at a db::StreamPosition ("000…0001700000000000-000…0003" → "1700000000000-3").
std::string StreamIdAt(std::string_view position) {
  const auto dash = position.find('-');
  const auto millis = ParseInt64(position.substr(0, dash));
  const auto sequence =
      dash == std::string_view::npos ? std::nullopt : ParseInt64(position.substr(dash + 1));
  if (!millis || !sequence) {
    throw PermanentError(fmt::format("malformed stream high-water mark \"{}\"", position));
  }
  return fmt::format("{}-{}", *millis, *sequence);
}

std::int64_t EntryMillis(std::string_view id) {
  return ParseInt64(id.substr(0, id.find('-'))).value_or(0);
}

// The turn to gather (if the persister shares one), held until the end of the scope, also when
// the read throws.
class TurnHeld {
 public:
  TurnHeld(GatherTurn* turn, const std::stop_token& stop)
      : turn_(turn), held_(turn == nullptr || turn->Take(stop)) {}
  ~TurnHeld() {
    if (turn_ != nullptr && held_) {
      turn_->Pass();
    }
  }
  TurnHeld(const TurnHeld&) = delete;
  TurnHeld& operator=(const TurnHeld&) = delete;

  /// False if a stop came first: the persister must not read.
  explicit operator bool() const { return held_; }

 private:
  GatherTurn* turn_;
  bool held_;
};

}  // namespace

bool GatherTurn::Take(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  if (!passed_.wait(lock, stop, [this] { return !taken_; })) {
    return false;
  }
  taken_ = true;
  return true;
}

void GatherTurn::Pass() {
  {
    std::lock_guard lock(mutex_);
    taken_ = false;
  }
  passed_.notify_one();
}

StreamLag ReadLag(redis::Connection& connection, core::Scripts& scripts, bool trim) {
  redis::Value reply = scripts.stream_state.Run(
      connection,
      {{std::string(Keys::kEvents)}, {std::string(Keys::kPersisterGroup), trim ? "1" : "0"}});
  StreamLag lag;
  lag.stream_length = reply.At(0).AsInteger();
  lag.pending = reply.At(1).AsInteger();
  lag.undelivered = reply.At(2).AsInteger();
  const std::string& oldest = reply.At(3).AsString();
  if (!oldest.empty()) {
    auto now_ms = ParseInt64(reply.At(4).AsString()).value_or(0);
    lag.oldest_age =
        std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - EntryMillis(oldest)));
  }
  return lag;
}

Persister::Persister(redis::Pool& redis, db::Store& store, PersisterOptions options, FaultHook hook)
    : redis_(redis), store_(store), options_(std::move(options)), hook_(std::move(hook)) {
  if (options_.consumer.empty()) {
    options_.consumer = DefaultConsumerName();
  }
}

void Persister::EnsureGroup() {
  auto conn = redis_.Acquire();
  try {
    // From "0": after Redis lost the group (FLUSHALL), every entry still in the stream is new.
    conn->Command({"XGROUP", "CREATE", Keys::kEvents, Keys::kPersisterGroup, "0", "MKSTREAM"});
  } catch (const PermanentError& error) {
    if (std::string_view(error.what()).find("BUSYGROUP") == std::string_view::npos) {
      throw;
    }
  }
}

void Persister::Run(const std::stop_token& stop) {
  auto backoff = std::chrono::milliseconds(50);
  while (!stop.stop_requested()) {
    try {
      RunOnce(options_.poll, stop);
      backoff = std::chrono::milliseconds(50);
    } catch (const Stopped&) {
      break;
    } catch (const Error& error) {
      spdlog::warn("persister {}: {}; retrying in {} ms", options_.consumer, error.what(),
                   backoff.count());
      if (reader_ && reader_->broken()) {
        reader_.reset();            // connected again on the next read
        check_before_read_ = true;  // Redis may have restarted, or failed over, without data
      }
      PauseUnlessStopped(backoff, stop);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

std::string Persister::TakeEpoch() {
  std::random_device random;
  const auto candidate = fmt::format("{:08x}{:08x}", random(), random());
  auto conn = redis_.Acquire();
  auto replies = conn->Pipeline({{"SET", Keys::kEpoch, candidate, "NX"}, {"GET", Keys::kEpoch}});
  redis::ThrowIfError(replies[1], "GET epoch");
  return replies[1].AsOptionalString().value_or(candidate);
}

std::size_t Persister::RunOnce(std::chrono::milliseconds block, const std::stop_token& stop) {
  if (epoch_.empty()) {
    epoch_ = TakeEpoch();
  }
  if (check_before_read_) {
    // Before this persister acknowledges anything: a Redis that restarted without its last
    // writes shows the loss only until new orders are persisted and acknowledged past it.
    CheckForLostWrites();
    check_before_read_ = false;
  }
  const std::string epoch = epoch_;  // as it was before the read
  std::vector<Entry> entries;
  {
    const TurnHeld turn(options_.turn.get(), stop);
    if (!turn) {
      return 0;  // stopped while waiting
    }
    entries = ReadBatch(block, stop);
  }  // the next persister gathers while this one writes
  if (entries.empty()) {
    Housekeep();
    return 0;
  }
  // Copies for the fault hook only: tests use it, the drain's hot path does not pay for it.
  std::vector<db::StockEvent> events;
  if (hook_) {
    for (const auto& entry : entries) {
      if (entry.event) {
        events.push_back(*entry.event);
      }
    }
    hook_(FaultPoint::kAfterRead, events);
  }
  Persist(entries, stop);
  if (hook_) {
    hook_(FaultPoint::kAfterCommit, events);
  }
  Acknowledge(entries, epoch);
  Housekeep();
  return entries.size();
}

void Persister::Housekeep() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_trim_ < std::chrono::seconds(1)) {
    return;
  }
  last_trim_ = now;
  {
    auto conn = redis_.Acquire();
    ReadLag(*conn, scripts_, /*trim=*/true);
  }
  CheckForLostWrites();
}

void Persister::CheckForLostWrites() {
  // The database first: every id it holds came from Redis before, so read in this order only a
  // Redis that really lost it can be behind.
  const auto high_water = store_.ReadStreamHighWater();
  if (!high_water) {
    return;
  }
  // The stream's last id cannot tell: ids are times, and the first order after a restart that
  // lost the tail of the append-only file moves it past everything the database has. The mark
  // ack.lua raises can: it is lost together with the acknowledgements it records. An entry the
  // database has leaves the stream only once acknowledged (stream_state.lua trims below the
  // oldest pending one), so one that is neither in the stream nor below the mark was lost; one
  // still in the stream was committed by a persister that has not acknowledged it yet. The
  // pipeline runs in this order, so an acknowledgement and trim in between is seen by the GET.
  const std::string high_id = StreamIdAt(*high_water);
  auto conn = redis_.Acquire();
  auto replies = conn->Pipeline({{"XRANGE", Keys::kEvents, high_id, high_id},
                                 {"GET", Keys::kAckedHighWater},
                                 {"XINFO", "STREAM", Keys::kEvents}});
  if (!replies[0].IsError() && !replies[0].AsArray().empty()) {
    return;
  }
  redis::ThrowIfError(replies[1], "GET acknowledged high-water mark");
  auto acked = replies[1].AsOptionalString();
  std::string last_id = "0-0";  // no stream at all: it is lost too
  if (!replies[2].IsError()) {
    const auto& fields = replies[2].AsArray();
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      if (fields[i].AsString() == "last-generated-id") {
        last_id = fields[i + 1].AsString();
      }
    }
  }
  // Without a mark (Redis lost everything, or ran a version that kept none) the stream's last
  // id is all there is to go by.
  const std::string reached = acked.value_or(db::StreamPosition(last_id));
  if (reached >= *high_water) {
    return;
  }
  // One persister acts per loss: the first to swap the marker to this mark.
  auto previous = conn->Command({"SET", Keys::kLostWritesHandled, *high_water, "GET"});
  if (previous.AsOptionalString() == *high_water) {
    return;
  }
  counters_.lost_redis_writes.fetch_add(1);
  spdlog::error(
      "persister {}: Redis lost writes the database already has (the database holds events up "
      "to stream position {}, Redis has acknowledged up to {} and its stream ends at {}: a "
      "restart that lost the tail of its append-only file, a promoted replica that was "
      "behind?); dropping every cached stock key so each is reloaded from the database, and "
      "claiming back every pending event",
      options_.consumer, *high_water, acked.value_or("none"), last_id);
  const auto dropped = DropStockKeys();
  claim_all_now_ = true;
  claim_cursor_ = "0-0";
  spdlog::warn("persister {}: dropped {} stock keys after the loss", options_.consumer, dropped);
}

std::int64_t Persister::DropStockKeys() {
  auto conn = redis_.Acquire();
  const std::string pattern = options_.key_prefix + "*";
  std::string cursor = "0";
  std::int64_t dropped = 0;
  do {
    auto reply = conn->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    cursor = reply.At(0).AsString();
    const auto& keys = reply.At(1).AsArray();
    if (keys.empty()) {
      continue;
    }
    std::vector<std::string> command{"UNLINK"};
    for (const auto& key : keys) {
      command.push_back(key.AsString());
    }
    std::vector<std::string_view> args(command.begin(), command.end());
    dropped += conn->Command(args).AsInteger();
  } while (cursor != "0");
  return dropped;
}

std::vector<Persister::Entry> Persister::ReadBatch(std::chrono::milliseconds block,
                                                   const std::stop_token& stop) {
  std::vector<Entry> entries;
  const auto now = std::chrono::steady_clock::now();
  if (claim_all_now_ || claim_cursor_ != "0-0" || now - last_claim_ > options_.claim_idle / 2) {
    last_claim_ = now;
    Claim(entries);
  }
  const std::string group(Keys::kPersisterGroup);
  // A read with `wait` blocks up to that long for the first entry; one without returns at once.
  auto read = [&](std::optional<std::chrono::milliseconds> wait) {
    const std::string count =
        std::to_string(options_.batch_size - static_cast<int>(entries.size()));
    const auto blocking = wait.value_or(std::chrono::milliseconds(0));
    const std::string block_ms = std::to_string(std::max<std::int64_t>(1, blocking.count()));
    std::vector<std::string_view> command{"XREADGROUP",      "GROUP", group,
                                          options_.consumer, "COUNT", count};
    if (wait) {
      command.insert(command.end(), {"BLOCK", block_ms});
    }
    command.insert(command.end(), {"STREAMS", Keys::kEvents, ">"});
    SetReadTimeout(blocking + options_.redis_timeout);
    ReadInto(entries, command);
  };
  if (entries.empty()) {
    read(block);
  }
  // The rest of the batch is gathered by a few reads a quarter of batch_wait apart. A blocking
  // read returns as soon as anything arrived: under steady load that is a handful of events per
  // read, and the reads (each a Redis call and a wake-up of this thread) cost more than the batch.
  const auto deadline = std::chrono::steady_clock::now() + options_.batch_wait;
  const auto pause = std::max(std::chrono::milliseconds(1), options_.batch_wait / 4);
  while (!entries.empty() && static_cast<int>(entries.size()) < options_.batch_size) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stop.stop_requested()) {
      break;
    }
    PauseUnlessStopped(std::min(pause, left), stop);
    std::size_t before = entries.size();
    read(std::nullopt);
    if (entries.size() == before) {
      break;  // the traffic stopped: persist what there is now
    }
  }
  return entries;
}

redis::Connection& Persister::Reader() {
  if (!reader_) {
    reader_.emplace(redis_.Dedicated());
    read_timeout_ = std::chrono::milliseconds(0);
  }
  return *reader_;
}

void Persister::SetReadTimeout(std::chrono::milliseconds timeout) {
  auto& reader = Reader();  // first: a new connection starts from the default timeout
  if (timeout != read_timeout_) {
    reader.SetTimeout(timeout);  // a system call: made only when the timeout changes
    read_timeout_ = timeout;
  }
}

Persister::Entry Persister::FromStream(StreamEntry&& decoded) {
  const bool dead = !decoded.event;
  return {.stream_id = std::move(decoded.stream_id),
          .event = std::move(decoded.event),
          .problem = std::move(decoded.problem),
          .dead = dead};
}

void Persister::ReadInto(std::vector<Entry>& entries,
                         const std::vector<std::string_view>& command) {
  redis::Value reply;
  try {
    reply = Reader().Command(command);
  } catch (const PermanentError& error) {
    if (std::string_view(error.what()).find("NOGROUP") == std::string_view::npos) {
      throw;
    }
    EnsureGroup();  // Redis lost the stream (restart without persistence, FLUSHALL)
    return;
  }
  for (auto& decoded : DecodeReadReply(reply)) {
    entries.push_back(FromStream(std::move(decoded)));
  }
}

void Persister::Claim(std::vector<Entry>& entries) {
  std::string idle = claim_all_now_ ? "0" : std::to_string(options_.claim_idle.count());
  std::string count = std::to_string(options_.batch_size);
  redis::Value reply;
  try {
    reply = Reader().Command({"XAUTOCLAIM", Keys::kEvents, Keys::kPersisterGroup, options_.consumer,
                              idle, claim_cursor_, "COUNT", count});
  } catch (const PermanentError& error) {
    if (std::string_view(error.what()).find("NOGROUP") == std::string_view::npos) {
      throw;
    }
    EnsureGroup();
    return;
  }
  // Redis scans a bounded part of the pending list per call; continue from where it stopped so
  // entries behind a long list of busy ones are reached too ("0-0" when the scan wrapped).
  auto claimed = DecodeClaimReply(reply);
  claim_cursor_ = std::move(claimed.cursor);
  for (auto& decoded : claimed.entries) {
    entries.push_back(FromStream(std::move(decoded)));
  }
  if (!entries.empty()) {
    spdlog::info("persister {}: claimed {} events left by another consumer", options_.consumer,
                 entries.size());
  }
  if (claim_cursor_ == "0-0") {
    claim_all_now_ = false;  // the scan wrapped: every entry pending at the loss was reached
    ForgetIdleConsumers();
  }
}

void Persister::ForgetIdleConsumers() {
  // Every persister that ever ran left its name in the group; once a name has nothing pending and
  // has been silent for `forget_idle` it belongs to a process that is gone.
  auto conn = redis_.Acquire();
  auto removed =
      scripts_.forget_consumers
          .Run(*conn, {{std::string(Keys::kEvents)},
                       {std::string(Keys::kPersisterGroup),
                        std::to_string(options_.forget_idle.count()), options_.consumer}})
          .AsInteger();
  if (removed > 0) {
    spdlog::info("persister {}: removed {} idle consumers from the group", options_.consumer,
                 removed);
  }
}

void Persister::Persist(std::vector<Entry>& entries, const std::stop_token& stop) {
  std::vector<db::StockEvent> events;
  for (const auto& entry : entries) {
    if (!entry.dead) {
      events.push_back(*entry.event);
    }
  }
  if (events.empty()) {
    return;
  }
  auto backoff = std::chrono::milliseconds(50);
  while (true) {
    try {
      auto outcome = store_.ApplyEvents(events);
      NoteLateReplays(entries, outcome.late_replays);
      counters_.events.fetch_add(static_cast<std::int64_t>(events.size()));
      counters_.duplicate_rows.fetch_add(static_cast<std::int64_t>(outcome.duplicate_rows));
      counters_.batches.fetch_add(1);
      counters_.last_batch_size.store(static_cast<std::int64_t>(events.size()));
      return;
    } catch (const TransientError& error) {
      counters_.database_errors.fetch_add(1);
      spdlog::warn(
          "persister {}: database unavailable ({}); {} events kept in the stream, "
          "retrying in {} ms",
          options_.consumer, error.what(), events.size(), backoff.count());
    } catch (const RejectedDataError& error) {
      counters_.database_errors.fetch_add(1);
      if (events.size() == 1) {
        for (auto& entry : entries) {
          if (!entry.dead) {
            entry.problem = error.what();
            entry.dead = true;
          }
        }
        return;
      }
      // One bad event must not hold back the others: find it by applying them one by one.
      spdlog::error("persister {}: batch rejected ({}); applying its events one by one",
                    options_.consumer, error.what());
      for (auto& entry : entries) {
        if (!entry.dead) {
          PersistOne(entry, stop);
        }
      }
      return;
    } catch (const Error& error) {
      // Refused, but not for its data: a standby after a failover, a revoked privilege, a missing
      // table, a bug. Redis has already taken these deductions; set aside, they would never reach
      // the database and a reconcile would then erase them from Redis too. They wait in the
      // stream until someone fixes the database.
      counters_.database_errors.fetch_add(1);
      counters_.database_refusals.fetch_add(1);
      spdlog::error(
          "persister {}: the database refused a batch for a reason other than its data ({}); {} "
          "events kept in the stream, retrying in {} ms",
          options_.consumer, error.what(), events.size(), backoff.count());
    }
    if (stop.stop_requested()) {
      throw Stopped();
    }
    PauseUnlessStopped(backoff, stop);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void Persister::NoteLateReplays(std::vector<Entry>& entries,
                                const std::vector<db::LateReplay>& late) {
  for (const auto& replay : late) {
    for (auto& entry : entries) {
      if (entry.stream_id == replay.stream_id && entry.event) {
        counters_.late_replays.fetch_add(1);
        spdlog::warn(
            "persister {}: {} was accepted again after the idempotency window; the "
            "database kept the first, Redis gives back {} of {}",
            options_.consumer, entry.event->EventId(), -replay.delta, replay.sku);
        entry.compensations.push_back({options_.key_prefix + replay.sku, -replay.delta});
      }
    }
  }
}

void Persister::PersistOne(Entry& entry, const std::stop_token& stop) {
  std::vector<Entry> single;
  single.push_back(std::move(entry));
  Persist(single, stop);
  entry = std::move(single.front());
}

std::vector<const Persister::Entry*> Persister::AppendPlainGroups(const std::vector<Entry>& entries,
                                                                  std::vector<std::string>& args) {
  // Entries whose acknowledgement only moves their SKUs' counts go in groups of the same SKUs
  // (one group in a flash sale), which ack.lua acknowledges with one XACK each.
  struct PlainGroup {
    const std::vector<db::SkuDelta>* deltas;
    std::vector<const std::string*> ids;
  };
  std::vector<PlainGroup> groups;
  std::unordered_map<std::string, std::size_t> group_of;  // the SKUs, length-prefixed → group
  std::vector<const Entry*> others;
  std::string skus_key;
  for (const auto& entry : entries) {
    if (entry.dead || !entry.event || !entry.compensations.empty()) {
      others.push_back(&entry);
      continue;
    }
    skus_key.clear();
    for (const auto& delta : entry.event->deltas) {
      fmt::format_to(std::back_inserter(skus_key), "{}:{}", delta.sku.size(), delta.sku);
    }
    auto [found, added] = group_of.try_emplace(skus_key, groups.size());
    if (added) {
      groups.push_back({&entry.event->deltas, {}});
    }
    groups[found->second].ids.push_back(&entry.stream_id);
  }
  args.push_back(std::to_string(groups.size()));
  for (const auto& group : groups) {
    args.push_back(std::to_string(group.deltas->size()));
    for (const auto& delta : *group.deltas) {
      args.push_back(delta.sku);
    }
    args.push_back(std::to_string(group.ids.size()));
    for (const auto* id : group.ids) {
      args.push_back(*id);
    }
  }
  return others;
}

void Persister::Acknowledge(const std::vector<Entry>& entries, const std::string& epoch) {
  redis::ScriptCall call{
      {std::string(Keys::kEvents), std::string(Keys::kInflight), std::string(Keys::kPersisted),
       std::string(Keys::kDeadLetters), std::string(Keys::kEpoch),
       std::string(Keys::kAckedHighWater)},
      {std::string(Keys::kPersisterGroup), options_.consumer, epoch, options_.key_prefix}};
  const auto others = AppendPlainGroups(entries, call.args);
  for (const auto* other : others) {
    const Entry& entry = *other;
    call.args.push_back(entry.stream_id);
    // A dead-lettered event of ours still counts as in flight for its SKUs until acknowledged
    // here; its SKUs are listed so fills for them are not blocked for ever.
    const auto* event = entry.event ? &*entry.event : nullptr;
    call.args.push_back(std::to_string(event != nullptr ? event->deltas.size() : 0));
    if (event != nullptr) {
      for (const auto& delta : event->deltas) {
        call.args.push_back(delta.sku);
      }
    }
    call.args.push_back(std::to_string(entry.compensations.size()));
    for (const auto& compensation : entry.compensations) {
      call.args.push_back(compensation.sku);  // the inventory key
      call.args.push_back(std::to_string(compensation.delta));
    }
    // The reason travels with the acknowledgement, so an entry is dead-lettered exactly once.
    call.args.push_back(entry.dead ? entry.problem.substr(0, 500) : std::string());
    if (entry.dead) {
      counters_.dead_letters.fetch_add(1);
      spdlog::error("persister {}: stream entry {} cannot be persisted ({}); moved to {}",
                    options_.consumer, entry.stream_id, entry.problem, Keys::kDeadLetters);
    }
  }
  auto conn = redis_.Acquire();
  auto reply = scripts_.ack.Run(*conn, call);
  for (const auto& repair : reply.At(2).AsArray()) {
    counters_.redis_repairs.fetch_add(1);
    spdlog::warn("persister {}: a value in Redis could not be updated and was replaced: {}",
                 options_.consumer, repair.AsString());
  }
  if (reply.At(1).AsInteger() == 1) {
    spdlog::warn(
        "persister {}: Redis lost its data while a batch was being persisted; the stock keys of "
        "that batch were dropped and are reloaded from the database on their next read",
        options_.consumer);
    epoch_.clear();  // taken again before the next read
  }
}

}  // namespace invsync::persister
