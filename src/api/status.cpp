#include "api/status.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "core/keys.hpp"
#include "persister/persister.hpp"
#include "syncer/syncer.hpp"

namespace invsync::api {

namespace {

using nlohmann::json;

json Millis(const std::optional<std::chrono::milliseconds>& age) {
  return age ? json(age->count()) : json(nullptr);
}

}  // namespace

json StatusDocument(redis::Pool& redis, db::Store& store, core::Scripts& scripts) {
  json body = {{"persister", nullptr},
               {"outbox", nullptr},
               {"syncer", nullptr},
               {"last_reconcile", nullptr}};
  std::optional<syncer::SyncState> sync;
  try {
    auto conn = redis.Acquire();
    auto lag = persister::ReadLag(*conn, scripts);
    body["persister"] = {{"stream_length", lag.stream_length},
                         {"pending", lag.pending},
                         {"undelivered", lag.undelivered},
                         {"unpersisted", lag.unpersisted()},
                         {"oldest_unpersisted_age_ms", Millis(lag.oldest_age)}};
    sync = syncer::ReadSyncState(*conn);
    body["syncer"] = {{"leader", sync->leader ? json(*sync->leader) : json(nullptr)},
                      {"problem", nullptr}};
    auto last = conn->Command({"GET", core::Keys::kLastReconcile}).AsOptionalString();
    if (last) {
      body["last_reconcile"] = json::parse(*last, nullptr, /*allow_exceptions=*/false);
    }
    body["redis"] = "ok";
  } catch (const Error& error) {
    body["redis"] = "unreachable";
    body["redis_error"] = error.what();
  }
  try {
    if (sync) {
      const auto origin = store.ReadOutboxOrigin(sync->cursor);
      if (auto mismatch = syncer::CursorMismatch(*sync, origin)) {
        // Counting from a cursor of another history would say 0 rows wait: that hides the loss.
        body["syncer"]["problem"] = *mismatch;
        body["outbox"] = {{"cursor", fmt::format("{}:{}", sync->cursor.xid, sync->cursor.id)},
                          {"cursor_matches_database", false},
                          {"unapplied", nullptr},
                          {"oldest_unapplied_age_ms", nullptr},
                          {"oldest_open_transaction_age_ms", nullptr}};
      }
    }
    if (sync && body["syncer"]["problem"].is_null()) {
      auto backlog = store.ReadChangeBacklog(sync->cursor);
      body["outbox"] = {{"cursor", fmt::format("{}:{}", sync->cursor.xid, sync->cursor.id)},
                        {"cursor_matches_database", true},
                        {"unapplied", backlog.rows},
                        {"oldest_unapplied_age_ms", Millis(backlog.oldest_age)},
                        {"oldest_open_transaction_age_ms", Millis(backlog.oldest_transaction_age)}};
    }
    body["database"] = store.Ping() ? "ok" : "unreachable";
  } catch (const Error& error) {
    body["database"] = "unreachable";
    body["database_error"] = error.what();
  }
  return body;
}

}  // namespace invsync::api
