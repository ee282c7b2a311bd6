#include "cli/commands.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "api/auth.hpp"
#include "api/handlers.hpp"
#include "api/server.hpp"
#include "api/status.hpp"
#include "cli/arguments.hpp"
#include "cli/progress.hpp"
#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/process.hpp"
#include "core/warm.hpp"

namespace invsync::cli {

namespace {

using nlohmann::json;

// Messages may quote arguments, which need not be UTF-8: invalid bytes become U+FFFD rather than
// failing the report.
void PrintJson(const Output& output, const json& document) {
  output.out << document.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

// Blocks until a stop is requested (SIGINT/SIGTERM through the caller's stop token).
void WaitUntilStopped(const std::stop_token& stop) {
  std::condition_variable_any wake;
  std::mutex mutex;
  std::unique_lock lock(mutex);
  wake.wait(lock, stop, [] { return false; });
}

int Usage(const Output& output, const std::string& message) {
  if (output.json) {
    PrintJson(output, {{"error", {{"code", "invalid_argument"}, {"message", message}}}});
  } else {
    output.err << "invsync: " << message << '\n';
  }
  return kExitUsage;
}

int Invalid(const Output& output, const core::ValidationError& error) {
  if (output.json) {
    PrintJson(output, {{"error",
                        {{"code", core::CodeName(error.code)},
                         {"field", error.field},
                         {"message", error.message}}}});
  } else {
    output.err << "invsync: invalid " << error.field << ": " << error.message << '\n';
  }
  return kExitUsage;
}

int Refused(const Output& output, const std::string& code, const std::string& message,
            json details = json::object()) {
  if (output.json) {
    details["code"] = code;
    details["message"] = message;
    PrintJson(output, {{"error", details}});
  } else {
    output.err << "invsync: " << message << '\n';
  }
  return kExitRefused;
}

std::string RandomRequestId() {
  std::random_device device;
  std::mt19937_64 engine(device());
  return fmt::format("cli-{:016x}", engine());
}

json OrderJson(const core::OrderResult& result) {
  json lines = json::array();
  for (const auto& line : result.lines) {
    lines.push_back(
        {{"sku", line.sku}, {"quantity", line.quantity}, {"remaining", line.remaining}});
  }
  return {{"order_id", result.order_id},
          {"status", core::StateName(result.state)},
          {"replayed", result.replayed},
          {"lines", lines}};
}

int ReportOrder(const core::OrderResult& result, const Output& output) {
  switch (result.status) {
    case core::StockStatus::kOk:
      if (output.json) {
        PrintJson(output, OrderJson(result));
      } else {
        output.out << fmt::format(
            "order {} {}{}\n", result.order_id, core::StateName(result.state),
            result.replayed ? " (already done earlier; nothing changed)" : "");
        for (const auto& line : result.lines) {
          output.out << fmt::format("  {} x{}  remaining {}\n", line.sku, line.quantity,
                                    line.remaining);
        }
      }
      return kExitOk;
    case core::StockStatus::kInvalid:
      return Invalid(output, *result.invalid);
    case core::StockStatus::kInsufficient: {
      const auto& shortage = *result.shortage;
      return Refused(output, "insufficient_stock",
                     fmt::format("insufficient stock for {}: requested {}, available {}; nothing "
                                 "was deducted",
                                 shortage.sku, shortage.requested, shortage.available),
                     {{"sku", shortage.sku},
                      {"requested", shortage.requested},
                      {"available", shortage.available}});
    }
    case core::StockStatus::kUnknownSku:
      return Refused(output, "unknown_sku", fmt::format("unknown SKU {}", result.unknown_sku),
                     {{"sku", result.unknown_sku}});
    case core::StockStatus::kUnknownOrder:
      return Refused(output, "unknown_order", fmt::format("unknown order {}", result.order_id),
                     {{"order_id", result.order_id}});
    case core::StockStatus::kOrderConflict:
      return Refused(
          output, "order_conflict",
          fmt::format("order {} was already placed with different lines", result.order_id),
          {{"order_id", result.order_id}});
    case core::StockStatus::kRequestConflict:
      break;
  }
  return Refused(output, core::StatusName(result.status), core::StatusName(result.status));
}

int ReportStock(const core::StockResult& result, const std::string& request_id,
                const Output& output) {
  switch (result.status) {
    case core::StockStatus::kOk:
      if (output.json) {
        json document = {{"sku", result.sku}, {"quantity", result.quantity}};
        if (!request_id.empty()) {
          document["request_id"] = request_id;
          document["replayed"] = result.replayed;
        }
        PrintJson(output, document);
      } else {
        output.out << fmt::format(
            "{} {}{}\n", result.sku, result.quantity,
            result.replayed ? " (request already done; nothing changed)" : "");
      }
      return kExitOk;
    case core::StockStatus::kInvalid:
      return Invalid(output, *result.invalid);
    case core::StockStatus::kUnknownSku:
      return Refused(output, "unknown_sku", fmt::format("unknown SKU {}", result.sku),
                     {{"sku", result.sku}});
    case core::StockStatus::kRequestConflict:
      return Refused(
          output, "request_conflict",
          fmt::format("request id {} was already used for a different change", request_id),
          {{"request_id", request_id}});
    default:
      return Refused(output, core::StatusName(result.status), core::StatusName(result.status));
  }
}

}  // namespace

int Get(Parts& parts, const std::vector<std::string>& skus, const Output& output) {
  if (skus.size() == 1) {
    return ReportStock(parts.stock->Get(skus.front()), "", output);
  }
  auto result = parts.stock->GetMany(skus);
  if (result.status == core::StockStatus::kInvalid) {
    return Invalid(output, *result.invalid);
  }
  if (output.json) {
    json items = json::array();
    for (const auto& [sku, quantity] : result.items) {
      items.push_back({{"sku", sku}, {"quantity", quantity}});
    }
    PrintJson(output, {{"items", items}, {"unknown", result.unknown}});
  } else {
    for (const auto& [sku, quantity] : result.items) {
      output.out << fmt::format("{} {}\n", sku, quantity);
    }
    for (const auto& sku : result.unknown) {
      output.err << fmt::format("invsync: unknown SKU {}\n", sku);
    }
  }
  return result.unknown.empty() ? kExitOk : kExitRefused;
}

int Deduct(Parts& parts, const std::string& order_id, const std::vector<std::string>& lines,
           const Output& output) {
  std::vector<core::Line> parsed;
  for (const auto& text : lines) {
    auto line = ParseOrderLine(text);
    if (!line) {
      return Usage(output, fmt::format("invalid line \"{}\": expected SKU:QTY, e.g. A-1:2", text));
    }
    parsed.push_back(std::move(*line));
  }
  return ReportOrder(parts.stock->Deduct(order_id, std::move(parsed)), output);
}

int Cancel(Parts& parts, const std::string& order_id, const Output& output) {
  return ReportOrder(parts.stock->Cancel(order_id), output);
}

int ShowOrder(Parts& parts, const std::string& order_id, const Output& output) {
  return ReportOrder(parts.stock->GetOrder(order_id), output);
}

int Restock(Parts& parts, const std::string& sku, const std::string& quantity,
            const std::optional<std::string>& request_id, const Output& output) {
  auto parsed = ParseQuantity(quantity);
  if (!parsed) {
    return Usage(output, fmt::format("invalid quantity \"{}\": expected a whole number", quantity));
  }
  std::string id = request_id.value_or(RandomRequestId());
  return ReportStock(parts.stock->Restock(sku, *parsed, id), id, output);
}

int Set(Parts& parts, const std::string& sku, const std::string& quantity,
        const std::optional<std::string>& request_id, const Output& output) {
  auto parsed = ParseQuantity(quantity);
  if (!parsed) {
    return Usage(output, fmt::format("invalid quantity \"{}\": expected a whole number", quantity));
  }
  std::string id = request_id.value_or(RandomRequestId());
  return ReportStock(parts.stock->Set(sku, *parsed, id), id, output);
}

int Status(Parts& parts, const Output& output) {
  const json document = api::StatusDocument(*parts.redis, *parts.store, parts.stock->scripts());
  const bool redis_ok = document["redis"] == "ok";
  const bool database_ok = document["database"] == "ok";
  // A syncer that applies nothing needs an operator as much as an unreachable server does.
  const bool syncer_ok = document["syncer"].is_null() || document["syncer"]["problem"].is_null();
  if (output.json) {
    PrintJson(output, document);
    return redis_ok && database_ok && syncer_ok ? kExitOk : kExitUnavailable;
  }
  auto text = [](const json& value) {
    return value.is_null()     ? std::string("-")
           : value.is_string() ? value.get<std::string>()
                               : value.dump();
  };
  output.out << fmt::format("redis      {}{}\n", text(document["redis"]),
                            redis_ok ? "" : ": " + text(document["redis_error"]));
  output.out << fmt::format("database   {}{}\n", text(document["database"]),
                            database_ok ? "" : ": " + text(document.value("database_error", "")));
  if (const auto& lag = document["persister"]; !lag.is_null()) {
    output.out << fmt::format(
        "stream     {} entries, {} unpersisted ({} pending, {} not yet read), oldest {}\n",
        text(lag["stream_length"]), text(lag["unpersisted"]), text(lag["pending"]),
        text(lag["undelivered"]),
        lag["oldest_unpersisted_age_ms"].is_null()
            ? "-"
            : fmt::format("{} ms", text(lag["oldest_unpersisted_age_ms"])));
  }
  if (const auto& outbox = document["outbox"]; !outbox.is_null()) {
    output.out << fmt::format("outbox     {} unapplied, oldest {}, cursor {}\n",
                              text(outbox["unapplied"]),
                              outbox["oldest_unapplied_age_ms"].is_null()
                                  ? "-"
                                  : fmt::format("{} ms", text(outbox["oldest_unapplied_age_ms"])),
                              text(outbox["cursor"]));
  }
  if (const auto& syncer = document["syncer"]; !syncer.is_null()) {
    output.out << fmt::format("syncer     {}\n", syncer["leader"].is_null()
                                                     ? "no active syncer"
                                                     : "active: " + text(syncer["leader"]));
    if (!syncer["problem"].is_null()) {
      output.out << fmt::format("syncer     PROBLEM: {}\n", text(syncer["problem"]));
    }
  }
  output.out << fmt::format("reconcile  {}\n", text(document["last_reconcile"]));
  return redis_ok && database_ok && syncer_ok ? kExitOk : kExitUnavailable;
}

int Warm(Parts& parts, bool all, const std::vector<std::string>& skus, const Output& output) {
  if (all == !skus.empty()) {
    return Usage(output, all ? "warm takes either --all or SKUs, not both"
                             : "warm needs --all or the SKUs to load");
  }
  for (const auto& sku : skus) {
    if (auto error = core::CheckSku(sku)) {
      return Invalid(output, *error);
    }
  }
  core::CacheCounters counters;
  // No negative-cache markers: warming a SKU the database lacks changes nothing.
  core::CacheFiller filler(*parts.redis, *parts.store, parts.stock->keys(), parts.stock->scripts(),
                           {.absent_ttl = std::chrono::milliseconds(0)}, counters);
  core::Warmer warmer(*parts.redis, *parts.store, filler);
  const auto started = std::chrono::steady_clock::now();
  core::WarmCounts counts;
  {
    ProgressBar bar(output.err, "warm", output.progress);
    auto progress = [&bar](const core::WarmCounts& so_far, std::int64_t total) {
      bar.Update(so_far.done(), total);
    };
    counts = all ? warmer.WarmAll(progress) : warmer.WarmSkus(skus, progress);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double rate = seconds > 0 ? static_cast<double>(counts.done()) / seconds : 0.0;
  if (output.json) {
    PrintJson(output, {{"loaded", counts.loaded},
                       {"cached", counts.cached},
                       {"skipped", counts.skipped},
                       {"absent", counts.absent},
                       {"elapsed_s", seconds},
                       {"skus_per_s", rate},
                       {"skipped_skus", counts.skipped_skus},
                       {"absent_skus", counts.absent_skus}});
  } else {
    output.out << fmt::format(
        "warmed {} SKUs in {:.2f} s ({:.0f}/s): {} loaded, {} already cached, {} skipped (events "
        "not yet persisted), {} absent from the database\n",
        counts.done(), seconds, rate, counts.loaded, counts.cached, counts.skipped, counts.absent);
    auto list = [&output](std::string_view label, const std::vector<std::string>& listed,
                          std::int64_t count) {
      if (!listed.empty()) {
        output.out << fmt::format("{}: {}{}\n", label, fmt::join(listed, " "),
                                  count > static_cast<std::int64_t>(listed.size()) ? " ..." : "");
      }
    };
    list("skipped", counts.skipped_skus, counts.skipped);
    list("absent", counts.absent_skus, counts.absent);
  }
  return !all && counts.absent > 0 ? kExitRefused : kExitOk;
}

int HashToken(std::istream& input, const Output& output) {
  std::string token;
  std::getline(input, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) {
    return Usage(output, "hash-token reads the token from standard input; got nothing");
  }
  const std::string hash = api::Sha256Hex(token);
  if (output.json) {
    PrintJson(output, {{"sha256", hash}});
  } else {
    output.out << hash << '\n';
  }
  return kExitOk;
}

bool WantsDemo(Parts& parts, bool load) {
  if (parts.store->CountSkus() > 0) {
    if (load) {
      spdlog::info("demo catalogue not loaded: the catalogue is not empty");
    }
    return false;
  }
  if (!load) {
    spdlog::info("the catalogue is empty; `invsync serve --demo` loads a small demo one");
  }
  return load;
}

void LoadDemo(Parts& parts) {
  constexpr int kDemoSkus = 12;
  for (int i = 1; i <= kDemoSkus; ++i) {
    const std::string sku = fmt::format("SKU-{}", i);
    // Through Redis like any change (persisted by the persisters); the request ids make a
    // second --demo, or a second try, a no-op for what is done.
    auto result = parts.stock->Set(sku, 10 * i, "demo-" + sku);
    if (result.status != core::StockStatus::kOk) {
      throw PermanentError(fmt::format("cannot load demo SKU {}", sku));
    }
  }
  spdlog::info("loaded the demo catalogue: SKU-1 ... SKU-{} with 10 ... {} units", kDemoSkus,
               10 * kDemoSkus);
}

int Migrate(Parts& parts, const Output& output) {
  parts.store->Migrate();
  if (output.json) {
    PrintJson(output, {{"migrated", true}});
  } else {
    output.out << "database schema is up to date\n";
  }
  return kExitOk;
}

namespace {

persister::PersisterOptions PersisterOptionsOf(const config::Settings& settings) {
  return {.batch_size = settings.persister_batch_size,
          .batch_wait = settings.persister_batch_wait,
          .claim_idle = settings.persister_claim_idle,
          .max_backoff = settings.persister_max_backoff,
          .redis_timeout = settings.redis_timeout,
          .key_prefix = settings.redis_key_prefix};
}

}  // namespace

PersisterGroup::PersisterGroup(Parts& parts)
    : threads_(*parts.redis, *parts.store, PersisterOptionsOf(parts.settings),
               parts.settings.persister_threads) {
  spdlog::info("{} persister(s) draining {} into the database", threads_.size(),
               core::Keys::kEvents);
}

PersisterGroup::~PersisterGroup() { Stop(); }

void PersisterGroup::Stop() { threads_.Stop(); }

void PersisterGroup::AppendMetrics(std::string& out) const {
  std::int64_t events = 0;
  std::int64_t batches = 0;
  std::int64_t errors = 0;
  std::int64_t last_batch = 0;
  std::int64_t lost = 0;
  std::int64_t refusals = 0;
  std::int64_t repairs = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    const auto& counters = threads_.at(i).counters();
    events += counters.events.load();
    batches += counters.batches.load();
    errors += counters.database_errors.load();
    last_batch = std::max(last_batch, counters.last_batch_size.load());
    lost += counters.lost_redis_writes.load();
    refusals += counters.database_refusals.load();
    repairs += counters.redis_repairs.load();
  }
  api::AppendMetric(out, "invsync_persister_events_total", "counter",
                    "Events this process's persisters wrote to the database.",
                    static_cast<double>(events));
  api::AppendMetric(out, "invsync_persister_batches_total", "counter",
                    "Batches this process's persisters committed.", static_cast<double>(batches));
  api::AppendMetric(out, "invsync_persister_last_batch_size", "gauge",
                    "Events in the largest of the persisters' last batches.",
                    static_cast<double>(last_batch));
  api::AppendMetric(out, "invsync_persister_database_errors_total", "counter",
                    "Failed attempts to write a batch (retried).", static_cast<double>(errors));
  api::AppendMetric(out, "invsync_persister_database_refusals_total", "counter",
                    "Failed attempts to write a batch that the database refused for a reason "
                    "other than its data (read-only, privilege, schema); retried until fixed.",
                    static_cast<double>(refusals));
  api::AppendMetric(out, "invsync_persister_lost_redis_writes_total", "counter",
                    "Times Redis was found to have lost writes the database has (its stock keys "
                    "were dropped and reloaded).",
                    static_cast<double>(lost));
  api::AppendMetric(out, "invsync_persister_redis_repairs_total", "counter",
                    "Values in Redis an acknowledgement could not update (a stock quantity or a "
                    "count that is not an integer) and replaced instead.",
                    static_cast<double>(repairs));
}

std::int64_t PersisterGroup::Events() const {
  std::int64_t events = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    events += threads_.at(i).counters().events.load();
  }
  return events;
}

SyncerThread::SyncerThread(Parts& parts)
    : syncer_(*parts.redis, *parts.store,
              {.batch_size = parts.settings.syncer_batch_size,
               .poll = parts.settings.syncer_poll_interval,
               .retention = parts.settings.syncer_retention,
               .key_prefix = parts.settings.redis_key_prefix}),
      thread_([this](const std::stop_token& stop) { syncer_.Run(stop); }) {
  spdlog::info("syncer {} applying database-side changes to Redis (one process is active)",
               syncer_.name());
}

SyncerThread::~SyncerThread() { Stop(); }

void SyncerThread::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

void SyncerThread::AppendMetrics(std::string& out) {
  const auto& counters = syncer_.counters();
  api::AppendMetric(out, "invsync_syncer_rows_total", "counter",
                    "Outbox rows this process's syncer applied to Redis.",
                    static_cast<double>(counters.rows.load()));
  api::AppendMetric(out, "invsync_syncer_cached_rows_total", "counter",
                    "Of those, rows that changed a cached key.",
                    static_cast<double>(counters.cached_rows.load()));
  api::AppendMetric(out, "invsync_syncer_malformed_rows_total", "counter",
                    "Outbox rows that were not a valid change; their SKU's cached key was dropped.",
                    static_cast<double>(counters.malformed_rows.load()));
  api::AppendMetric(out, "invsync_syncer_dropped_keys_total", "counter",
                    "Updates Redis could not add to a cached key (overflow); the key was dropped.",
                    static_cast<double>(counters.dropped_keys.load()));
  api::AppendMetric(out, "invsync_syncer_batches_total", "counter", "Batches applied.",
                    static_cast<double>(counters.batches.load()));
  api::AppendMetric(out, "invsync_syncer_errors_total", "counter",
                    "Syncer failures (retried with backoff).",
                    static_cast<double>(counters.errors.load()));
  api::AppendMetric(out, "invsync_syncer_leader", "gauge",
                    "1 while this process's syncer is the active one.",
                    counters.leader.load() ? 1.0 : 0.0);
  api::AppendMetric(out, "invsync_syncer_cursor_mismatch", "gauge",
                    "1 while the cursor in Redis belongs to another database's history (nothing "
                    "is applied; see `invsync status`).",
                    counters.cursor_mismatch.load() ? 1.0 : 0.0);
  try {
    const auto backlog = syncer_.ReadBacklog();
    api::AppendMetric(out, "invsync_syncer_unapplied_rows", "gauge",
                      "Database-side changes not yet applied to Redis.",
                      static_cast<double>(backlog.rows));
    api::AppendMetric(
        out, "invsync_syncer_oldest_unapplied_seconds", "gauge", "Age of the oldest of them.",
        backlog.oldest_age ? static_cast<double>(backlog.oldest_age->count()) / 1000 : 0.0);
  } catch (const syncer::CursorMismatchError&) {
    out += "# invsync_syncer_unapplied_rows unknown: the cursor belongs to another database\n";
  } catch (const Error&) {
    out += "# invsync_syncer_unapplied_rows unavailable: Redis or the database unreachable\n";
  }
}

namespace {

reconcile::ReconcileOptions ReconcileOptionsOf(const config::Settings& settings, bool repair) {
  return {.repair = repair, .key_prefix = settings.redis_key_prefix};
}

void LogReport(const reconcile::Report& report) {
  const auto summary = report.Summary().dump();
  if (report.clean()) {
    spdlog::info("reconcile: {}", summary);
    return;
  }
  spdlog::warn("reconcile found problems: {}", summary);
  for (const auto& drift : report.drifted) {
    spdlog::warn("reconcile: {} drifted: Redis {}, database {}, expected {}{}", drift.sku,
                 drift.redis, drift.database ? std::to_string(*drift.database) : "none",
                 drift.expected ? std::to_string(*drift.expected) : "no key",
                 drift.repaired ? " (repaired)" : "");
  }
  for (const auto& entry : report.oversold) {
    spdlog::warn("reconcile: {} oversold: {} quantity {}", entry.sku, entry.side, entry.quantity);
  }
}

}  // namespace

int Reconcile(Parts& parts, bool repair, bool reset_cursor, const Output& output) {
  if (reset_cursor) {
    if (!repair) {
      // Without the repair, cached keys would miss the changes made since the restore for good.
      return Usage(output, "--reset-cursor needs --repair");
    }
    db::OutboxPosition cursor;
    {
      auto conn = parts.redis->Acquire();
      cursor = syncer::ResetCursor(*conn, *parts.store);
    }
    spdlog::warn("reconcile: moved the syncer cursor to {}:{} in this database; repairing Redis",
                 cursor.xid, cursor.id);
  }
  reconcile::Reconciler reconciler(*parts.redis, *parts.store,
                                   ReconcileOptionsOf(parts.settings, repair));
  reconcile::Report report;
  {
    ProgressBar bar(output.err, "reconcile", output.progress);
    report =
        reconciler.Run([&bar](std::int64_t done, std::int64_t total) { bar.Update(done, total); });
  }
  if (output.json) {
    PrintJson(output, report.Json());
    return report.clean() ? kExitOk : kExitRefused;
  }
  output.out << fmt::format(
      "{} SKUs checked in {} ms: {} drifted ({} repaired), {} oversold, {} not cached, {} busy\n",
      report.checked, report.duration.count(), report.drifted.size(), report.repaired,
      report.oversold.size(), report.not_cached, report.busy.size());
  for (const auto& drift : report.drifted) {
    output.out << fmt::format("drift     {}  redis {}  database {}  expected {}{}\n", drift.sku,
                              drift.redis,
                              drift.database ? std::to_string(*drift.database) : "(none)",
                              drift.expected ? std::to_string(*drift.expected) : "(no key)",
                              drift.repaired ? "  repaired" : "");
  }
  for (const auto& entry : report.oversold) {
    output.out << fmt::format("oversold  {}  {} {}\n", entry.sku, entry.side, entry.quantity);
  }
  if (!report.busy.empty()) {
    output.out << fmt::format(
        "busy      {} SKU(s) had changes in flight throughout and were not judged; run again "
        "later\n",
        report.busy.size());
  }
  return report.clean() ? kExitOk : kExitRefused;
}

ReconcileSchedule::ReconcileSchedule(Parts& parts)
    : thread_([&parts](const std::stop_token& stop) {
        const auto interval = parts.settings.reconcile_interval;
        reconcile::Reconciler reconciler(
            *parts.redis, *parts.store,
            ReconcileOptionsOf(parts.settings, parts.settings.reconcile_repair));
        while (!stop.stop_requested()) {
          PauseUnlessStopped(interval, stop);
          if (stop.stop_requested()) {
            break;
          }
          try {
            auto conn = parts.redis->Acquire();
            // One process runs each round; the lock lapses by itself before the next.
            // (At least 1 ms: Redis refuses PX 0.)
            const auto hold = std::max<std::int64_t>(1, interval.count() * 9 / 10);
            auto locked = conn->Command({"SET", core::Keys::kReconcileLock, HostAndPid(), "NX",
                                         "PX", std::to_string(hold)});
            if (locked.IsNil()) {
              continue;
            }
          } catch (const Error& error) {
            spdlog::warn("reconcile: cannot take the schedule lock: {}", error.what());
            continue;
          }
          try {
            LogReport(reconciler.Run());
          } catch (const Error& error) {
            spdlog::warn("reconcile run failed: {}", error.what());
          }
        }
      }) {
  spdlog::info("reconcile scheduled every {} ms{}", parts.settings.reconcile_interval.count(),
               parts.settings.reconcile_repair ? ", repairing drift" : "");
}

void ReconcileSchedule::Stop() {
  thread_.request_stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

int Sync(Parts& parts, const std::stop_token& stop, const Output& output) {
  std::int64_t rows = 0;
  {
    SyncerThread syncer(parts);
    WaitUntilStopped(stop);
    syncer.Stop();
    rows = syncer.syncer().counters().rows.load();
  }
  spdlog::info("syncer stopped after {} outbox rows", rows);
  if (output.json) {
    PrintJson(output, {{"rows", rows}});
  }
  return kExitOk;
}

int Persist(Parts& parts, const std::stop_token& stop, const Output& output) {
  std::int64_t events = 0;
  {
    PersisterGroup persisters(parts);
    WaitUntilStopped(stop);
    persisters.Stop();
    events = persisters.Events();
  }
  spdlog::info("persisters stopped after {} events", events);
  if (output.json) {
    PrintJson(output, {{"events", events}});
  }
  return kExitOk;
}

namespace {

// Every connection takes a descriptor, and the usual soft limit (1024) is below the default
// server.max_connections: take the hard limit, as a server is expected to.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      spdlog::debug("could not raise the open-file limit to {}", limit.rlim_max);
    }
  }
}

// What the probes show of this process's syncer (none: nothing).
std::function<std::optional<std::string>()> SyncerProblemSource(
    const std::optional<SyncerThread>& syncer) {
  if (!syncer) {
    return {};
  }
  return [&running = syncer->syncer()] { return running.Problem(); };
}

}  // namespace

int Serve(Parts& parts, const std::stop_token& stop, const Output& output) {
  const auto& settings = parts.settings;
  RaiseOpenFileLimit();
  std::optional<PersisterGroup> persisters;
  if (settings.persister_enabled) {
    persisters.emplace(parts);
  }
  std::optional<SyncerThread> syncer;
  if (settings.syncer_enabled) {
    syncer.emplace(parts);
  }
  std::optional<ReconcileSchedule> reconciles;
  if (settings.reconcile_interval.count() > 0) {
    reconciles.emplace(parts);
  }
  std::vector<std::tuple<std::string, std::string, api::Role>> tokens;
  for (const auto& token : settings.tokens) {
    tokens.emplace_back(token.name, token.sha256, api::ParseRole(token.role).value());
  }
  api::Handlers handlers(*parts.stock, *parts.store, *parts.redis,
                         {.max_many_skus = static_cast<std::size_t>(settings.server_max_many_skus),
                          .body_limit = static_cast<std::size_t>(settings.server_body_limit),
                          .auth = api::Authenticator(tokens),
                          .protect_metrics = settings.server_protect_metrics,
                          .syncer_problem = SyncerProblemSource(syncer)});
  if (tokens.empty() && !settings.server_listen.starts_with("127.") &&
      !settings.server_listen.starts_with("[::1]")) {
    spdlog::warn(
        "no access tokens configured and listening on {}: anyone who can reach it can "
        "change stock",
        settings.server_listen);
  }
  api::Server server({.listen = settings.server_listen,
                      .io_threads = settings.server_io_threads,
                      .workers = settings.server_workers,
                      .redis_connections = settings.server_redis_connections,
                      .read_timeout = settings.server_read_timeout,
                      .idle_timeout = settings.server_idle_timeout,
                      .request_deadline = settings.server_request_deadline,
                      .max_connections = static_cast<std::size_t>(settings.server_max_connections),
                      .access_log = settings.server_access_log},
                     handlers);
  if (persisters) {
    handlers.metrics().AddSource(
        [&persisters](std::string& out) { persisters->AppendMetrics(out); });
  }
  if (syncer) {
    handlers.metrics().AddSource([&syncer](std::string& out) { syncer->AppendMetrics(out); });
  }
  const auto port = server.Start();
  const std::string host = settings.server_listen.substr(0, settings.server_listen.rfind(':'));
  spdlog::info("listening on http://{}:{}", host, port);
  if (output.json) {
    PrintJson(output, {{"listening", fmt::format("{}:{}", host, port)}});
    output.out.flush();
  }
  WaitUntilStopped(stop);
  if (reconciles) {
    reconciles->Stop();
  }
  spdlog::info("stopping: no new connections; finishing requests in flight");
  server.Stop();
  if (persisters) {
    // Everything accepted goes to the database before exit, as far as it is reachable.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        auto conn = parts.redis->Acquire();
        if (persister::ReadLag(*conn, parts.stock->scripts()).unpersisted() == 0) {
          break;
        }
      } catch (const Error& error) {
        spdlog::warn("cannot read the stream lag: {}", error.what());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    persisters->Stop();
  }
  if (syncer) {
    syncer->Stop();
  }
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace invsync::cli
