#pragma once

#include <nlohmann/json.hpp>

#include "core/scripts.hpp"
#include "db/store.hpp"
#include "redis/client.hpp"

namespace invsync::api {

/// The service's state, as `GET /v1/status` and `invsync status --json` report it:
/// {"redis","database","persister":{lag},"outbox":{cursor, backlog},"syncer":{"leader","problem"},
///  "last_reconcile"}. Parts that cannot be read are null, with the reason beside them. The
/// syncer's problem is null, or why it applies nothing and what to do (a cursor that belongs to
/// another database: syncer::CursorMismatch); the outbox backlog is then null, not 0.
[[nodiscard]] nlohmann::json StatusDocument(redis::Pool& redis, db::Store& store,
                                            core::Scripts& scripts);

}  // namespace invsync::api
