#include "syncer/syncer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/process.hpp"

namespace invsync::syncer {

using core::Keys;

namespace {

// The active syncer renews this key while it leads; it names the leader in `status`.
constexpr std::string_view kLeaderKey = "invsync:syncer:leader";

// A wait for new changes is cut into slices this long, so that a stop does not wait out a poll
// interval (up to minutes) in a poll() that cannot see it.
constexpr std::chrono::milliseconds kStopCheck{100};

// How often a syncer whose cursor does not belong to the database says so again.
constexpr std::chrono::minutes kMismatchLogEvery{1};

std::string CursorText(const db::OutboxPosition& position) {
  return fmt::format("{}:{}", position.xid, position.id);
}

}  // namespace

db::OutboxPosition ParseCursor(const std::optional<std::string>& text) {
  if (!text) {
    return {};
  }
  const auto colon = text->find(':');
  auto xid = ParseInt64(std::string_view(*text).substr(0, colon));
  auto id = colon == std::string::npos ? std::nullopt
                                       : ParseInt64(std::string_view(*text).substr(colon + 1));
  if (!xid || !id) {
    throw PermanentError(fmt::format("the syncer cursor {} in Redis is malformed: \"{}\"",
                                     Keys::kSyncCursor, *text));
  }
  return {*xid, *id};
}

SyncState ReadSyncState(redis::Connection& connection) {
  auto replies = connection.Pipeline(
      {{"GET", Keys::kSyncCursor}, {"GET", kLeaderKey}, {"GET", Keys::kSyncDatabase}});
  for (const auto& reply : replies) {
    redis::ThrowIfError(reply, "syncer state");
  }
  return {.cursor = ParseCursor(replies[0].AsOptionalString()),
          .leader = replies[1].AsOptionalString(),
          .database_id = replies[2].AsOptionalString()};
}

std::optional<std::string> CursorMismatch(const SyncState& state, const db::OutboxOrigin& origin) {
  if (state.cursor == db::OutboxPosition{}) {
    return std::nullopt;  // the start of any database's outbox
  }
  std::string what;
  if (state.database_id && !origin.database_id.empty() &&
      *state.database_id != origin.database_id) {
    what = fmt::format("was written for database {}, but the database is {}", *state.database_id,
                       origin.database_id);
  } else if (!origin.holds_cursor) {
    what =
        "lies beyond everything this database has written (was it restored to an earlier point in "
        "time, or moved to another cluster?)";
  } else {
    return std::nullopt;
  }
  return fmt::format(
      "the syncer cursor {} in Redis ({}) {}: changes made in the database are neither applied "
      "to Redis nor pruned until the cursor is reset; run `invsync reconcile --repair "
      "--reset-cursor`",
      CursorText(state.cursor), Keys::kSyncCursor, what);
}

db::OutboxPosition ResetCursor(redis::Connection& connection, db::Store& store) {
  const auto origin = store.ReadOutboxOrigin({});
  // One transaction: a syncer never sees the new cursor beside the old identity, nor fill
  // positions of the old history (ids that may be given out again) beside the new cursor.
  auto replies = connection.Pipeline({{"MULTI"},
                                      {"SET", Keys::kSyncCursor, CursorText(origin.now)},
                                      {"SET", Keys::kSyncDatabase, origin.database_id},
                                      {"DEL", Keys::kFillPositions, Keys::kCachedChanges,
                                       Keys::kPreviousCachedChanges, Keys::kCachedChangesTurnKey},
                                      {"EXEC"}});
  for (const auto& reply : replies) {
    redis::ThrowIfError(reply, "resetting the syncer cursor");
  }
  return origin.now;
}

Syncer::Syncer(redis::Pool& redis, db::Store& store, SyncerOptions options, FaultHook hook)
    : redis_(redis),
      store_(store),
      options_(std::move(options)),
      hook_(std::move(hook)),
      keys_(options_.key_prefix) {
  if (options_.name.empty()) {
    options_.name = HostAndPid();
  }
}

void Syncer::Run(const std::stop_token& stop) {
  auto backoff = std::chrono::milliseconds(50);
  while (!stop.stop_requested()) {
    try {
      auto feed = store_.OpenChangeFeed();
      while (!stop.stop_requested()) {
        if (feed->TryLead()) {
          if (!counters_.leader.exchange(true)) {
            spdlog::info("syncer {}: now the active syncer", options_.name);
          }
          try {
            Lead(*feed, stop);
            if (counters_.cursor_mismatch.exchange(false)) {
              spdlog::info("syncer {}: the cursor in Redis belongs to the database again",
                           options_.name);
            }
          } catch (const CursorMismatchError& error) {
            // Stays the leader (no other syncer could do better) and looks again each poll
            // interval, so it resumes by itself once an operator has reset the cursor.
            ReportMismatch(error);
            PauseUnlessStopped(options_.poll, stop);
          }
        } else {
          PauseUnlessStopped(options_.poll, stop);
        }
        backoff = std::chrono::milliseconds(50);
      }
    } catch (const Error& error) {
      counters_.errors.fetch_add(1, std::memory_order_relaxed);
      if (counters_.leader.exchange(false)) {
        spdlog::warn("syncer {}: no longer the active syncer", options_.name);
      }
      spdlog::warn("syncer {}: {}; retrying in {} ms", options_.name, error.what(),
                   backoff.count());
      PauseUnlessStopped(backoff, stop);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  counters_.leader.store(false);
}

void Syncer::Lead(db::ChangeFeed& feed, const std::stop_token& stop) {
  const auto started = std::chrono::steady_clock::now();
  if (started - last_announce_ >= options_.poll) {
    last_announce_ = started;
    Announce();
  }
  BatchOutcome outcome;
  do {
    outcome = RunOnce();
  } while (!stop.stop_requested() && outcome.read == static_cast<std::size_t>(options_.batch_size));
  const auto now = std::chrono::steady_clock::now();
  if (now - last_prune_ >= options_.prune_every) {
    last_prune_ = now;
    Prune();
  }
  if (outcome.held_back) {
    // Committed rows wait only for older transactions (often a persister batch) to end.
    PauseUnlessStopped(options_.held_back_retry, stop);
    return;
  }
  for (auto left = options_.poll; !stop.stop_requested() && left.count() > 0; left -= kStopCheck) {
    if (feed.Wait(std::min(left, kStopCheck))) {
      return;
    }
  }
}

void Syncer::ReportMismatch(const CursorMismatchError& error) {
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(problem_mutex_);
    problem_ = error.what();
  }
  const auto now = std::chrono::steady_clock::now();
  if (!counters_.cursor_mismatch.exchange(true) || now - last_mismatch_log_ >= kMismatchLogEvery) {
    last_mismatch_log_ = now;
    spdlog::error("syncer {}: {}", options_.name, error.what());
  }
}

std::optional<std::string> Syncer::Problem() const {
  // Only the active syncer checks the cursor: one that lost the lead would otherwise report a
  // mismatch it can no longer see being fixed.
  if (!counters_.leader.load() || !counters_.cursor_mismatch.load()) {
    return std::nullopt;
  }
  std::lock_guard lock(problem_mutex_);
  return problem_;
}

db::OutboxPosition Syncer::ReadCheckedCursor() {
  SyncState state;
  {
    auto conn = redis_.Acquire();
    state = ReadSyncState(*conn);
  }
  const auto origin = store_.ReadOutboxOrigin(state.cursor);
  if (auto mismatch = CursorMismatch(state, origin)) {
    throw CursorMismatchError(*mismatch);
  }
  if (state.database_id != origin.database_id && !origin.database_id.empty()) {
    // A fresh Redis, or a cursor kept from before identities were (checked against the history
    // above): the cursor belongs to this database from now on.
    auto conn = redis_.Acquire();
    conn->Command({"SET", Keys::kSyncDatabase, origin.database_id});
  }
  return state.cursor;
}

void Syncer::Announce() {
  auto conn = redis_.Acquire();
  conn->Command({"SET", kLeaderKey, options_.name, "PX",
                 std::to_string(std::max<std::int64_t>(3 * options_.poll.count(), 3000))});
}

BatchOutcome Syncer::RunOnce() {
  const auto cursor = ReadCheckedCursor();
  auto batch = store_.ReadChanges(cursor, static_cast<std::size_t>(options_.batch_size));
  BatchOutcome outcome{.read = batch.changes.size(), .held_back = batch.held_back};
  if (batch.changes.empty()) {
    return outcome;
  }
  if (hook_) {
    hook_(FaultPoint::kAfterRead, batch.changes);
  }
  redis::ScriptCall call;
  call.keys.reserve(7 + 3 * batch.changes.size());
  call.args.reserve(3 + 5 * batch.changes.size());
  call.keys = {std::string(Keys::kSyncCursor),          std::string(Keys::kFillPositions),
               std::string(Keys::kRecentChangesExist),  std::string(Keys::kFillReadsActive),
               std::string(Keys::kCachedChanges),       std::string(Keys::kPreviousCachedChanges),
               std::string(Keys::kCachedChangesTurnKey)};
  call.args = {std::to_string(Keys::kRecentChangesTtl.count()),
               std::to_string(Keys::kRecentChangesCap),
               std::to_string(Keys::kCachedChangesTurn.count())};
  for (const auto& change : batch.changes) {
    call.keys.push_back(keys_.Inventory(change.sku));
    call.keys.push_back(Keys::RecentChanges(change.sku));
    call.keys.push_back(Keys::Absent(change.sku));
    call.args.push_back(std::to_string(change.position.xid));
    call.args.push_back(std::to_string(change.position.id));
    call.args.push_back(change.sku);
    call.args.emplace_back(1, static_cast<char>(change.kind));
    call.args.push_back(std::to_string(change.delta));
  }
  redis::Value reply;
  {
    auto conn = redis_.Acquire();
    reply = scripts_.apply_changes.Run(*conn, call);
  }
  const auto cached = reply.At(0).AsInteger();
  const auto skipped = reply.At(1).AsInteger();
  const auto reached = ParseCursor(reply.At(2).AsString());
  const auto failure = reply.At(4).AsString();
  // The first `skipped` rows were at or before the cursor the script found; the rows after them
  // up to the cursor it left are the ones it applied.
  for (auto i = static_cast<std::size_t>(skipped);
       i < batch.changes.size() && batch.changes[i].position <= reached; ++i) {
    ++outcome.applied;
    NoteUnusual(batch.changes[i]);
  }
  counters_.rows.fetch_add(static_cast<std::int64_t>(outcome.applied), std::memory_order_relaxed);
  counters_.cached_rows.fetch_add(cached, std::memory_order_relaxed);
  counters_.replayed_rows.fetch_add(skipped, std::memory_order_relaxed);
  if (const auto dropped = reply.At(3).AsInteger(); dropped > 0) {
    counters_.dropped_keys.fetch_add(dropped, std::memory_order_relaxed);
    spdlog::warn(
        "syncer {}: {} update(s) could not be added to a cached key (64-bit overflow, or the key "
        "is not a hash); dropped those keys, the next read loads them from the database",
        options_.name, dropped);
  }
  counters_.batches.fetch_add(1, std::memory_order_relaxed);
  if (!failure.empty()) {
    // The rows before the failing one are applied and the cursor is right after them.
    throw PermanentError(fmt::format("applying {}", failure));
  }
  if (hook_) {
    hook_(FaultPoint::kAfterApply, batch.changes);
  }
  return outcome;
}

void Syncer::NoteUnusual(const db::Change& change) {
  if (change.kind != db::ChangeKind::kReload) {
    return;
  }
  counters_.malformed_rows.fetch_add(1, std::memory_order_relaxed);
  spdlog::error(
      "syncer {}: outbox row {} for SKU \"{}\" is malformed ({}); dropped the cached key, so the "
      "next read loads the database row as it is",
      options_.name, change.position.id, change.sku, change.malformed);
}

db::ChangeBacklog Syncer::ReadBacklog() {
  const auto cursor = ReadCheckedCursor();
  return store_.ReadChangeBacklog(cursor);
}

std::int64_t Syncer::Prune() {
  const auto cursor = ReadCheckedCursor();
  const auto pruned = store_.PruneChanges(cursor, options_.retention);
  counters_.pruned_rows.fetch_add(pruned, std::memory_order_relaxed);
  if (pruned > 0) {
    spdlog::debug("syncer {}: pruned {} applied outbox rows", options_.name, pruned);
  }
  return pruned;
}

}  // namespace invsync::syncer
