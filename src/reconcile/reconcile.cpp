#include "reconcile/reconcile.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <set>
#include <thread>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/text.hpp"
#include "syncer/syncer.hpp"

namespace invsync::reconcile {

using core::Keys;
using nlohmann::json;

namespace {

// SCAN's MATCH is a glob: the prefix's own *, ?, [ and \ must match literally.
std::string GlobEscaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

json Optional(const std::optional<std::int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

struct Reconciler::RedisSide {
  std::optional<std::string> quantity;  ///< as stored; nullopt: not cached
  std::string inflight, persisted, fillpos;
  friend bool operator==(const RedisSide&, const RedisSide&) = default;
};

struct Reconciler::Snapshot {
  db::OutboxPosition cursor;
  std::vector<RedisSide> sides;
};

bool Report::clean() const {
  return oversold.empty() &&
         std::all_of(drifted.begin(), drifted.end(), [](const Drift& d) { return d.repaired; });
}

json Report::Json() const {
  json drifts = json::array();
  for (const auto& drift : drifted) {
    drifts.push_back({{"sku", drift.sku},
                      {"redis", drift.redis},
                      {"database", Optional(drift.database)},
                      {"expected", Optional(drift.expected)},
                      {"repaired", drift.repaired}});
  }
  json negatives = json::array();
  for (const auto& entry : oversold) {
    negatives.push_back({{"sku", entry.sku}, {"side", entry.side}, {"quantity", entry.quantity}});
  }
  json body = Summary();
  body["drifted"] = drifts;
  body["oversold"] = negatives;
  body["busy"] = busy;
  return body;
}

json Report::Summary() const {
  return {{"finished_at", finished_at},
          {"duration_ms", duration.count()},
          {"checked", checked},
          {"not_cached", not_cached},
          {"drifted", drifted.size()},
          {"repaired", repaired},
          {"oversold", oversold.size()},
          {"busy", busy.size()},
          {"clean", clean()}};
}

Reconciler::Reconciler(redis::Pool& redis, db::Store& store, ReconcileOptions options)
    : redis_(redis), store_(store), options_(std::move(options)), keys_(options_.key_prefix) {}

Report Reconciler::Run(const Progress& progress) {
  const auto started = std::chrono::steady_clock::now();
  Report report;
  std::vector<std::string> busy;
  const std::int64_t total = store_.CountSkus();
  std::int64_t done = 0;
  for (std::string after;;) {
    auto skus = store_.ListSkus(after, options_.page_size);
    if (skus.empty()) {
      break;
    }
    after = skus.back();
    Judge(skus, /*redis_only=*/false, report, busy);
    done += static_cast<std::int64_t>(skus.size());
    if (progress) {
      progress(done, std::max(total, done));
    }
  }
  const auto cached = CachedSkus();
  for (std::size_t i = 0; i < cached.size(); i += options_.page_size) {
    const auto end = std::min(cached.size(), i + options_.page_size);
    Judge({cached.begin() + static_cast<std::ptrdiff_t>(i),
           cached.begin() + static_cast<std::ptrdiff_t>(end)},
          /*redis_only=*/true, report, busy);
  }
  for (int round = 0; round < options_.busy_rounds && !busy.empty(); ++round) {
    std::this_thread::sleep_for(options_.busy_pause);
    std::vector<std::string> still;
    for (std::size_t i = 0; i < busy.size(); i += options_.page_size) {
      const auto end = std::min(busy.size(), i + options_.page_size);
      Judge({busy.begin() + static_cast<std::ptrdiff_t>(i),
             busy.begin() + static_cast<std::ptrdiff_t>(end)},
            /*redis_only=*/false, report, still);
    }
    busy = std::move(still);
  }
  report.busy = std::move(busy);
  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  report.finished_at = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
  auto conn = redis_.Acquire();
  conn->Command({"SET", Keys::kLastReconcile, report.Summary().dump()});
  return report;
}

Reconciler::Snapshot Reconciler::ReadRedis(const std::vector<std::string>& skus) {
  redis::ScriptCall call{{std::string(Keys::kSyncCursor), std::string(Keys::kInflight),
                          std::string(Keys::kPersisted), std::string(Keys::kFillPositions)},
                         skus};
  for (const auto& sku : skus) {
    call.keys.push_back(keys_.Inventory(sku));
  }
  redis::Value reply;
  {
    auto conn = redis_.Acquire();
    reply = scripts_.audit_state.Run(*conn, call);
  }
  Snapshot snapshot;
  snapshot.cursor = syncer::ParseCursor(reply.At(0).AsString());
  snapshot.sides.reserve(skus.size());
  for (std::size_t i = 0; i < skus.size(); ++i) {
    const std::size_t at = 1 + 4 * i;
    snapshot.sides.push_back({reply.At(at).AsOptionalString(), reply.At(at + 1).AsString(),
                              reply.At(at + 2).AsString(), reply.At(at + 3).AsString()});
  }
  return snapshot;
}

void Reconciler::Judge(const std::vector<std::string>& skus, bool redis_only, Report& report,
                       std::vector<std::string>& busy) {
  if (skus.empty()) {
    return;
  }
  // A key whose SKU no database column can hold (not UTF-8: something else wrote it) is judged
  // as a SKU without a database row, rather than failing the database's read of the page.
  std::vector<std::string> storable;
  std::copy_if(skus.begin(), skus.end(), std::back_inserter(storable), IsStorableText);
  static const db::StockAudit kNoRow;
  const Snapshot before = ReadRedis(skus);
  const auto audits = store_.AuditStock(storable, before.cursor);
  const Snapshot after = ReadRedis(skus);
  for (std::size_t i = 0; i < skus.size(); ++i) {
    const std::string& sku = skus[i];
    const db::StockAudit& audit = IsStorableText(sku) ? audits.at(sku) : kNoRow;
    if (redis_only && audit.quantity) {
      continue;
    }
    const RedisSide& side = before.sides[i];
    if (side != after.sides[i] || ParseInt64(side.inflight).value_or(1) != 0) {
      busy.push_back(sku);  // events in flight, or something moved while judging
      continue;
    }
    if (!side.quantity) {
      if (audit.quantity) {
        report.checked += 1;
        report.not_cached += 1;
        if (*audit.quantity < 0) {
          report.oversold.push_back({sku, "database", *audit.quantity});
        }
      }
      continue;
    }
    // Database-side changes Redis does not show yet: after the cursor, and newer than what the
    // fill that loaded the key read.
    const std::int64_t fillpos = ParseInt64(side.fillpos).value_or(0);
    std::int64_t unapplied = 0;
    bool reshaping = false;
    for (const auto& change : audit.pending) {
      if (change.position.id > fillpos) {
        reshaping = reshaping || change.kind != db::ChangeKind::kUpdate;
        unapplied += change.delta;
      }
    }
    if (reshaping) {
      busy.push_back(sku);  // an insert or delete on its way: the syncer will drop the key
      continue;
    }
    report.checked += 1;
    const auto cached = ParseInt64(*side.quantity);
    if (audit.quantity && *audit.quantity < 0) {
      report.oversold.push_back({sku, "database", *audit.quantity});
    }
    if (cached && *cached < 0) {
      report.oversold.push_back({sku, "redis", *cached});
    }
    std::optional<std::int64_t> expected;
    if (audit.quantity) {
      expected = *audit.quantity - unapplied;
    }
    if (cached != expected || !cached) {
      Drift drift{
          .sku = sku, .redis = *side.quantity, .database = audit.quantity, .expected = expected};
      if (options_.repair) {
        Repair(drift, report);
      }
      report.drifted.push_back(std::move(drift));
    }
  }
}

void Reconciler::Repair(Drift& drift, Report& report) {
  if (options_.before_repair) {
    options_.before_repair(drift);
  }
  auto conn = redis_.Acquire();
  auto reply = scripts_.repair.Run(
      *conn,
      {{keys_.Inventory(drift.sku), std::string(Keys::kInflight)},
       {drift.sku, drift.redis, drift.expected ? std::to_string(*drift.expected) : std::string()}});
  drift.repaired = reply.AsString() == "repaired";
  if (drift.repaired) {
    report.repaired += 1;
    spdlog::info("reconcile: repaired {}: Redis had {}, now {}", drift.sku, drift.redis,
                 drift.expected ? std::to_string(*drift.expected) : "no key");
  }
}

std::vector<std::string> Reconciler::CachedSkus() {
  const std::string pattern = GlobEscaped(options_.key_prefix) + "*";
  const std::string count = std::to_string(options_.page_size);
  std::vector<std::string> skus;
  auto conn = redis_.Acquire();
  std::string cursor = "0";
  do {
    auto reply = conn->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", count});
    cursor = reply.At(0).AsString();
    for (const auto& key : reply.At(1).elements) {
      skus.push_back(key.AsString().substr(options_.key_prefix.size()));
    }
  } while (cursor != "0");
  std::sort(skus.begin(), skus.end());
  skus.erase(std::unique(skus.begin(), skus.end()), skus.end());
  return skus;
}

}  // namespace invsync::reconcile
