#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "bench_support.hpp"
#include "common/numbers.hpp"

namespace invsync::bench {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::string_view kBegin = "<!-- suite:begin -->";
constexpr std::string_view kEnd = "<!-- suite:end -->";
const std::vector<std::string> kPeers = {"invsync", "db-only", "naive-cache"};
const std::vector<int> kSweep = {1, 4, 16, 64, 256};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

double Number(const json& doc, const json::json_pointer& at);

// A result's throughput: orders/s, operations/s or (redis-benchmark) requests/s.
double Rate(const json& doc) {
  // A catalogue's figure is its operations of all kinds; elsewhere, orders.
  if (doc.is_object() && doc.value("scenario", "") == "catalogue") {
    return Number(doc, "/requests_per_s"_json_pointer);
  }
  for (const char* field : {"/orders_per_s", "/requests_per_s", "/rps"}) {
    const double rate = Number(doc, json::json_pointer(field));
    if (std::isfinite(rate)) {
      return rate;
    }
  }
  return std::nan("");
}

bool Clean(const json& doc) {
  return !doc.is_object() || !doc.contains("audit") || doc["audit"].value("clean", false);
}

// The result standing for the repetitions of one run (see LoadResults).
json Representative(const std::vector<json>& reps) {
  std::vector<std::size_t> order(reps.size());
  for (std::size_t i = 0; i < reps.size(); ++i) {
    order[i] = i;
  }
  auto rate = [&](std::size_t i) {  // a run without a figure (it failed) sorts first
    const double value = Rate(reps[i]);
    return std::isfinite(value) ? value : -1.0;
  };
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return rate(a) < rate(b); });
  std::size_t chosen = order[(order.size() - 1) / 2];
  for (std::size_t i = 0; i < reps.size(); ++i) {
    if (!Clean(reps[i])) {
      chosen = i;
      break;
    }
  }
  json doc = reps[chosen];
  if (doc.is_object()) {
    doc["repetitions"] = reps;
  }
  return doc;
}

double Number(const json& doc, const json::json_pointer& at) {
  return doc.is_object() && doc.contains(at) && doc[at].is_number() ? doc[at].get<double>()
                                                                    : std::nan("");
}

std::string Thousands(double value) {
  if (!std::isfinite(value)) {
    return "—";
  }
  const std::string digits = fmt::format("{:.0f}", std::fabs(value));
  std::string out = value < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return out;
}

std::string Millis(double value) {
  return std::isfinite(value) ? fmt::format("{:.2f}", value) : "—";
}

// invsync's figure over a peer's: "25.1×" (invsync is faster) or "58.0%" (it reaches that share).
std::string Ratio(double invsync, double peer) {
  if (!std::isfinite(invsync) || !std::isfinite(peer) || peer <= 0) {
    return "—";
  }
  return invsync >= peer ? fmt::format("{:.1f}×", invsync / peer)
                         : fmt::format("{:.1f}%", invsync / peer * 100);
}

std::string Verdict(bool met) { return met ? "met" : "**not met**"; }

std::string Audit(const json& doc) {
  if (!doc.contains("audit")) {
    return "—";
  }
  const auto& audit = doc["audit"];
  return audit["clean"].get<bool>() ? "clean"
                                    : fmt::format("**{}**", audit["summary"].get<std::string>());
}

// One row of a scenario table: figures of `doc`, ratio against `base` (orders/s).
std::string Row(const std::string& name, const json& doc, const std::string& rate_field,
                double base) {
  const double rate = Number(doc, json::json_pointer("/" + rate_field));
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", name, Thousands(rate),
                     Ratio(base, rate), Millis(Number(doc, "/latency/p50_ms"_json_pointer)),
                     Millis(Number(doc, "/latency/p99_ms"_json_pointer)),
                     Millis(Number(doc, "/latency/p999_ms"_json_pointer)), Audit(doc));
}

const json& Get(const std::map<std::string, json>& results, const std::string& name) {
  static const json kMissing;
  auto it = results.find(name);
  return it == results.end() ? kMissing : it->second;
}

// The table of a scenario: a header, then a row per target; `unit` names the rate column.
std::string Table(const std::map<std::string, json>& r, const std::string& scenario,
                  const std::string& unit, const std::string& rate_field) {
  const double base = Number(Get(r, scenario + "-invsync"), json::json_pointer("/" + rate_field));
  std::string out = fmt::format(
      "| target | {} | invsync ÷ target | p50 ms | p99 ms | p999 ms | audit |\n"
      "|---|---:|---:|---:|---:|---:|---|\n",
      unit);
  for (const auto& peer : kPeers) {
    out += Row(peer, Get(r, fmt::format("{}-{}", scenario, peer)), rate_field, base);
  }
  return out;
}

// Each repetition's value at `at` (throughput if `at` is empty), in run order.
std::vector<double> PerRepetition(const json& doc, const std::string& at = "") {
  std::vector<double> values;
  auto value = [&](const json& rep) {
    return at.empty() ? Rate(rep) : Number(rep, json::json_pointer(at));
  };
  if (doc.is_object() && doc.contains("repetitions")) {
    for (const auto& rep : doc["repetitions"]) {
      values.push_back(value(rep));
    }
  } else {
    values.push_back(value(doc));
  }
  return values;
}

// Each repetition's `numerators[i] / denominators[i]`, for the repetitions both have and where the
// denominator is positive (a failed peer run has none).
std::vector<double> PairRatios(const std::vector<double>& numerators,
                               const std::vector<double>& denominators) {
  std::vector<double> ratios;
  for (std::size_t i = 0; i < numerators.size() && i < denominators.size(); ++i) {
    if (denominators[i] > 0) {
      ratios.push_back(numerators[i] / denominators[i]);
    }
  }
  return ratios;
}

std::string Times(std::size_t count) {
  return count == 1 ? std::string("once") : fmt::format("{} times", count);
}

std::string Joined(const std::vector<double>& values, const std::string& suffix = "") {
  std::string out;
  for (const double value : values) {
    out += (out.empty() ? "" : ", ") + (suffix == "×"   ? fmt::format("{:.1f}×", value)
                                        : suffix == "%" ? fmt::format("{:.1f}%", value * 100)
                                                        : Thousands(value));
  }
  return out;
}

std::string FlashSale(const std::map<std::string, json>& r) {
  const json& inv = Get(r, "flash-sale-invsync");
  const json& db_doc = Get(r, "flash-sale-db-only");
  const json& raw = Get(r, "redis-raw-50");
  const double base = Number(inv, "/orders_per_s"_json_pointer);
  const std::vector<double> inv_rates = PerRepetition(inv);
  const std::vector<double> db_rates = PerRepetition(db_doc);
  const std::vector<double> raw_rates = PerRepetition(raw);
  std::string out = fmt::format(
      "### flash-sale\n\nOne SKU; {} connections each buying 1–3 units in a closed loop until a "
      "refusal reports the stock at 0. The stock is sized from a warm-up on another SKU to last "
      "about the measured time (invsync: {} units). Latency: from send to answer. invsync, "
      "db-only and redis-raw ran {}, interleaved (invsync, db-only, redis-raw, invsync, "
      "...); each row shows the repetition of median throughput, and the targets are judged on "
      "the median of the ratios of each repetition's adjacent runs.\n\n",
      Number(inv, "/connections"_json_pointer), Thousands(Number(inv, "/stock"_json_pointer)),
      Times(inv_rates.size()));
  out += Table(r, "flash-sale", "orders/s", "orders_per_s");
  const double raw_rps = Number(raw, "/rps"_json_pointer);
  out += fmt::format(
      "| redis-raw (`redis-benchmark`, EVALSHA deduct.lua, 50 clients) | {} | {} | "
      "{} | {} | — | (stock not sold out: ceiling only) |\n\n",
      Thousands(raw_rps), Ratio(base, raw_rps), Millis(Number(raw, "/p50_ms"_json_pointer)),
      Millis(Number(raw, "/p99_ms"_json_pointer)));
  const std::vector<double> over_db = PairRatios(inv_rates, db_rates);
  const std::vector<double> over_raw = PairRatios(inv_rates, raw_rates);
  const double times_db = over_db.empty() ? std::nan("") : Median(over_db);
  const double share_raw = over_raw.empty() ? std::nan("") : Median(over_raw);
  const double p99 = Median(PerRepetition(inv, "/latency/p99_ms"));
  out += fmt::format(
      "Orders/s per repetition: invsync {}; db-only {}; redis-raw {}. invsync ÷ db-only per "
      "repetition {}; invsync ÷ redis-raw {}.\n\n",
      Joined(inv_rates), Joined(db_rates), Joined(raw_rates), Joined(over_db, "×"),
      Joined(over_raw, "%"));
  out += fmt::format(
      "Targets: invsync ≥ 25× db-only: {:.1f}× ({}); ≥ 50% of redis-raw: {:.1f}% ({}); zero "
      "oversell: {}; p99 < 10 ms at 64 connections: {} ms, median of the repetitions ({}).\n\n",
      times_db, Verdict(times_db >= 25), share_raw * 100, Verdict(share_raw >= 0.5), Audit(inv),
      Millis(p99), Verdict(p99 < 10));
  return out;
}

std::string Catalogue(const std::map<std::string, json>& r) {
  const json& inv = Get(r, "catalogue-invsync");
  const double base = Number(inv, "/requests_per_s"_json_pointer);
  const std::vector<double> inv_rates = PerRepetition(inv);  // operations/s: see Rate()
  const std::vector<double> db_rates = PerRepetition(Get(r, "catalogue-db-only"));
  std::string out = fmt::format(
      "### catalogue\n\n{} SKUs, popularity Zipf (s = 1.1), {} connections in a closed loop: 90% "
      "reads of one SKU, 9% orders of 1–5 lines (1–2 units each), 1% cancels of an order accepted "
      "earlier in the run. Figures are operations/s of all three kinds. invsync and db-only ran "
      "{}, interleaved; each row shows the repetition of median throughput, and the target "
      "is judged on it (every repetition's audit counts).\n\n",
      Thousands(Number(inv, "/skus"_json_pointer)), Number(inv, "/connections"_json_pointer),
      Times(inv_rates.size()));
  out += Table(r, "catalogue", "operations/s", "requests_per_s");
  const std::vector<double> over_db = PairRatios(inv_rates, db_rates);
  out += fmt::format(
      "\nOperations/s per repetition: invsync {}; db-only {}; invsync ÷ db-only {}.\n\n",
      Joined(inv_rates), Joined(db_rates), Joined(over_db, "×"));
  out += fmt::format(
      "Target ≥ 40,000 operations/s with the audit clean: {} ({} operations/s, audit {}).\n"
      "invsync serve's peak RSS (VmHWM) at the end of this run: {} MiB. Redis memory per SKU "
      "(Redis's used_memory growth while the catalogue was seeded and cached, divided by the "
      "SKUs): invsync {} bytes (its hash and its entry in the fill-position hash), naive-cache "
      "{} bytes (its hash).\n\n",
      Verdict(base >= 40000 && inv.contains("audit") && inv["audit"]["clean"].get<bool>()),
      Thousands(base), Audit(inv), Millis(Number(inv, "/serve_peak_rss_kib"_json_pointer) / 1024),
      Thousands(Number(inv, "/redis_bytes_per_sku"_json_pointer)),
      Thousands(Number(Get(r, "catalogue-naive-cache"), "/redis_bytes_per_sku"_json_pointer)));
  return out;
}

// invsync on SQLite beside invsync on PostgreSQL: same scenarios, same run.
std::string Stores(const std::map<std::string, json>& r) {
  std::string out =
      "### invsync on SQLite beside PostgreSQL\n\n"
      "flash-sale and catalogue as above, invsync only, the database a SQLite file (WAL) instead "
      "of PostgreSQL; Redis the same. Persister lag: the age of the oldest event not yet in the "
      "database, sampled every 250 ms during the run; drain: from the end of the load until "
      "everything is in the database.\n\n"
      "| scenario | store | operations/s | SQLite ÷ PostgreSQL | p99 ms | persister lag max ms | "
      "drain s | audit |\n|---|---|---:|---:|---:|---:|---:|---|\n";
  bool kept_up = true;
  for (const auto& [scenario, rate_field] :
       {std::pair{"flash-sale", "orders_per_s"}, std::pair{"catalogue", "requests_per_s"}}) {
    const auto at = json::json_pointer(std::string("/") + rate_field);
    const double postgres = Number(Get(r, fmt::format("{}-invsync", scenario)), at);
    for (const auto& [store, name] :
         {std::pair{"PostgreSQL", fmt::format("{}-invsync", scenario)},
          std::pair{"SQLite", fmt::format("{}-invsync-sqlite", scenario)}}) {
      const json& doc = Get(r, name);
      const double lag = Number(doc, "/persist_lag_max_ms"_json_pointer);
      if (std::string_view(store) == "SQLite") {
        kept_up = kept_up && doc.contains("persist_lag_max_ms") && lag < 1000;
      }
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", scenario, store,
                         Thousands(Number(doc, at)),
                         std::string_view(store) == "SQLite"
                             ? fmt::format("{:.0f}%", 100 * Number(doc, at) / postgres)
                             : std::string("—"),
                         Millis(Number(doc, "/latency/p99_ms"_json_pointer)), Thousands(lag),
                         Millis(Number(doc, "/drain_s"_json_pointer)), Audit(doc));
    }
  }
  out += fmt::format(
      "\nTarget: the SQLite persister keeps up with the rate the HTTP path sustains (lag under "
      "one second): {}.\n\n",
      Verdict(kept_up));
  return out;
}

std::string Backoffice(const std::map<std::string, json>& r) {
  const json& inv = Get(r, "backoffice-invsync");
  std::string out = fmt::format(
      "### backoffice\n\nOrders (1–3 lines over 1,000 SKUs, 2% cancels) in an open loop at {} "
      "orders/s on {} connections, latency from each order's intended send time; meanwhile "
      "another PostgreSQL connection runs `UPDATE inventory SET quantity = quantity + k WHERE "
      "sku = $1 RETURNING quantity` {} times a second, alternately on a SKU orders are buying "
      "and on one of 20 probe SKUs no order touches. Propagation: from the probe UPDATE's "
      "commit (its answer) until `HGET inventory:<sku> quantity` on a dedicated Redis "
      "connection, polled every 0.2 ms, shows the value the UPDATE returned; a probe SKU has "
      "no other writer, so the value is exact.\n\n"
      "| target | orders/s | p50 ms | p99 ms | p999 ms | propagation p50 / p99 / max ms | audit "
      "|\n|---|---:|---:|---:|---:|---|---|\n",
      Thousands(Number(inv, "/order_rate"_json_pointer)), Number(inv, "/connections"_json_pointer),
      Number(inv, "/backoffice_rate"_json_pointer));
  for (const auto& peer : kPeers) {
    const json& doc = Get(r, "backoffice-" + peer);
    std::string propagation = peer == "db-only" ? "— (no cache)" : "never (no database→cache path)";
    if (peer == "invsync") {
      propagation = fmt::format("{} / {} / {} ({} changes, {} not seen within 5 s)",
                                Millis(Number(doc, "/propagation/p50_ms"_json_pointer)),
                                Millis(Number(doc, "/propagation/p99_ms"_json_pointer)),
                                Millis(Number(doc, "/propagation/max_ms"_json_pointer)),
                                Number(doc, "/propagation/count"_json_pointer),
                                Number(doc, "/propagation/not_seen_within_5s"_json_pointer));
    }
    out +=
        fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", peer,
                    Thousands(Number(doc, "/orders_per_s"_json_pointer)),
                    Millis(Number(doc, "/latency/p50_ms"_json_pointer)),
                    Millis(Number(doc, "/latency/p99_ms"_json_pointer)),
                    Millis(Number(doc, "/latency/p999_ms"_json_pointer)), propagation, Audit(doc));
  }
  const double p99 = Number(inv, "/propagation/p99_ms"_json_pointer);
  out += fmt::format("\nTarget propagation p99 ≤ 50 ms: {} ({} ms).\n\n", Verdict(p99 <= 50),
                     Millis(p99));
  return out;
}

std::string Sweep(const std::map<std::string, json>& r) {
  std::string out =
      "### sweep\n\nflash-sale at each number of connections (shorter runs; redis-benchmark "
      "with as many clients).\n\n| connections | invsync orders/s | p99 ms | db-only | p99 ms | "
      "naive-cache | p99 ms | redis-raw | p99 ms | audits |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (int c : kSweep) {
    std::string line = fmt::format("| {} ", c);
    std::string audits;
    bool any = false;
    for (const auto& peer : kPeers) {
      const json& doc = Get(r, fmt::format("sweep-{}-{}", peer, c));
      any = any || doc.is_object();
      line += fmt::format("| {} | {} ", Thousands(Number(doc, "/orders_per_s"_json_pointer)),
                          Millis(Number(doc, "/latency/p99_ms"_json_pointer)));
      if (doc.is_object() && Audit(doc) != "clean") {
        audits += fmt::format("{}{}: {}", audits.empty() ? "" : "; ", peer, Audit(doc));
      }
    }
    const json& raw = Get(r, fmt::format("redis-raw-{}", c));
    line +=
        fmt::format("| {} | {} | {} |\n", Thousands(Number(raw, "/rps"_json_pointer)),
                    Millis(Number(raw, "/p99_ms"_json_pointer)), audits.empty() ? "clean" : audits);
    if (any) {
      out += line;
    }
  }
  out +=
      "\n![orders/s vs connections](bench/sweep-throughput.svg)\n"
      "![p99 vs connections](bench/sweep-p99.svg)\n"
      "![latency distribution, flash-sale and catalogue](bench/latency.svg)\n\n";
  return out;
}

std::string Machine(const json& m) {
  auto text = [&](const char* key) {
    return m.contains(key) ? m[key].get<std::string>() : std::string("?");
  };
  return fmt::format(
      "Generated by `scripts/bench-suite{}` on {}; raw results in `{}`.\n\n"
      "Machine: {} CPUs ({}), Linux {}; redis-server {}, PostgreSQL {}, private to the run "
      "(scripts/with-services), on the same machine as the load generator, over loopback TCP. "
      "Load average before: {}, after: {}. Other processes (not this run's) seen at ≥ 10% of a "
      "CPU, sampled every ~5 s: {}.\n\n",
      text("mode") == "quick" ? " --quick" : "", text("date"), text("results"), text("nproc"),
      text("cpu"), text("kernel"), text("redis"), text("postgresql"), text("load_before"),
      text("load_after"), text("others"));
}

std::string Method() {
  return "How to read it: every run starts from an empty Redis and a fresh schema; invsync runs "
         "as `invsync serve` with default settings and is driven over HTTP/1.1 keep-alive "
         "connections by `invsync-bench` (one event-loop thread); the peers run inside "
         "`invsync-bench`, one thread and one blocking connection per store per "
         "\"connection\", as a shop's own code would: **they pay no HTTP cost, which favours "
         "them**. After each run invsync is left to drain (every event persisted, every outbox "
         "row applied), then the audit reads Redis and PostgreSQL directly: every 2xx order "
         "exactly once in the ledger (`deduct:<order id>`) with its lines, no 409 order there, "
         "every 2xx cancel given back, units sold ≤ stock (= stock where demand exceeded it), "
         "database quantity = seed + back-office changes − net units sold, Redis = database for "
         "every SKU touched. The peers write the same ledger rows in their order transaction. "
         "db-only and naive-cache run against the same tables without invsync's capture "
         "trigger. Peers beyond 128 connections are not run: PostgreSQL here allows 200 "
         "connections, and a shop would put a pool in front (capping its concurrency).\n\n";
}

void WriteData(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) {
    throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  }
}

void Plot(const std::map<std::string, json>& r, const fs::path& data, const fs::path& plots) {
  fs::create_directories(plots);
  std::vector<std::string> series = kPeers;
  series.emplace_back("redis-raw");
  for (const auto& name : series) {
    std::string rows;
    for (int c : kSweep) {
      const json& doc = name == "redis-raw" ? Get(r, fmt::format("redis-raw-{}", c))
                                            : Get(r, fmt::format("sweep-{}-{}", name, c));
      const double rate = name == "redis-raw" ? Number(doc, "/rps"_json_pointer)
                                              : Number(doc, "/orders_per_s"_json_pointer);
      const double p99 = Number(
          doc, name == "redis-raw" ? "/p99_ms"_json_pointer : "/latency/p99_ms"_json_pointer);
      if (std::isfinite(rate)) {
        rows += fmt::format("{} {} {}\n", c, rate, p99);
      }
    }
    WriteData(data / fmt::format("sweep-{}.dat", name), rows);
  }
  for (const auto& scenario : {"flash-sale", "catalogue"}) {
    for (const auto& peer : kPeers) {
      std::string rows;
      const json& doc = Get(r, fmt::format("{}-{}", scenario, peer));
      if (doc.contains("cdf")) {
        for (const auto& point : doc["cdf"]) {
          rows += fmt::format("{} {}\n", point[0].get<double>(), point[1].get<double>());
        }
      }
      WriteData(data / fmt::format("cdf-{}-{}.dat", scenario, peer), rows);
    }
  }
  auto sweep_plot = [&](const std::string& file, int column, const std::string& ylabel) {
    std::string script = fmt::format(
        "set terminal svg size 720,420 dynamic font 'sans,11'\nset output '{}'\n"
        "set logscale x 2\nset logscale y\nset xlabel 'connections'\nset ylabel '{}'\n"
        "set key below\nset grid\nplot ",
        (plots / file).string(), ylabel);
    for (std::size_t i = 0; i < series.size(); ++i) {
      script += fmt::format("{}'{}' using 1:{} with linespoints title '{}'", i == 0 ? "" : ", ",
                            (data / ("sweep-" + series[i] + ".dat")).string(), column, series[i]);
    }
    return script + "\n";
  };
  std::string cdf = fmt::format(
      "set terminal svg size 720,420 dynamic font 'sans,11'\nset output '{}'\n"
      "unset logscale y\nset yrange [0:1]\nset logscale x\nset xlabel 'latency (ms)'\n"
      "set ylabel 'fraction of requests answered within'\n"
      "set key below\nset grid\nplot ",
      (plots / "latency.svg").string());
  std::string separator;
  for (const auto& scenario : {"flash-sale", "catalogue"}) {
    for (const auto& peer : kPeers) {
      cdf += fmt::format("{}'{}' using 1:2 with lines title '{} {}'", separator,
                         (data / fmt::format("cdf-{}-{}.dat", scenario, peer)).string(), scenario,
                         peer);
      separator = ", ";
    }
  }
  const std::string script = sweep_plot("sweep-throughput.svg", 2, "orders/s") +
                             sweep_plot("sweep-p99.svg", 3, "p99 latency (ms)") + cdf + "\n";
  WriteData(data / "plots.gp", script);
  const std::string command = fmt::format("gnuplot '{}'", (data / "plots.gp").string());
  if (std::system(command.c_str()) != 0) {  // NOLINT(concurrency-mt-unsafe): single-threaded
    throw std::runtime_error("gnuplot failed on " + (data / "plots.gp").string());
  }
}

}  // namespace

std::map<std::string, json> LoadResults(const fs::path& dir) {
  std::map<std::string, json> results;
  std::map<std::string, std::map<int, json>> repeated;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") {
      continue;
    }
    json doc = json::parse(ReadFile(entry.path()), nullptr, /*allow_exceptions=*/false);
    const std::string stem = entry.path().stem().string();
    const auto rep = stem.rfind(".rep");
    const auto number = rep == std::string::npos ? std::nullopt : ParseInt64(stem.substr(rep + 4));
    if (number) {
      repeated[stem.substr(0, rep)][static_cast<int>(*number)] = std::move(doc);
    } else {
      results[stem] = std::move(doc);
    }
  }
  for (auto& [stem, reps] : repeated) {
    std::vector<json> in_order;
    for (auto& [number, doc] : reps) {
      in_order.push_back(std::move(doc));
    }
    results[stem] = Representative(in_order);
  }
  return results;
}

std::string ReplaceSection(const std::string& document, const std::string& section) {
  const auto begin = document.find(kBegin);
  const auto end = begin == std::string::npos ? std::string::npos : document.find(kEnd, begin);
  const std::string body = fmt::format("{}\n{}{}", kBegin, section, kEnd);
  if (end == std::string::npos) {
    std::string out = document;
    if (!out.empty() && !out.ends_with("\n\n")) {
      out += out.ends_with('\n') ? "\n" : "\n\n";
    }
    return out + body + "\n";
  }
  return document.substr(0, begin) + body + document.substr(end + kEnd.size());
}

int Report(int argc, char** argv) {
  Flags flags("invsync-bench report",
              "Writes the suite's section of the benchmarks document and its plots.");
  flags.Add("results", "", "directory of the run's result files");
  flags.Add("doc", "docs/benchmarks.md", "document to update (between the suite markers)");
  flags.Add("plots", "docs/bench", "directory for the SVG plots");
  if (!flags.Parse(argc, argv)) {
    return 0;
  }
  const fs::path results = flags.String("results");
  const auto r = LoadResults(results);
  std::string section = "## Benchmark suite: invsync beside the alternatives\n\n" +
                        Machine(Get(r, "machine")) + Method() + FlashSale(r) + Catalogue(r) +
                        Stores(r) + Backoffice(r) + Sweep(r);
  Plot(r, results, flags.String("plots"));
  const fs::path doc = flags.String("doc");
  const std::string before = fs::exists(doc) ? ReadFile(doc) : std::string();
  WriteData(doc, ReplaceSection(before, section));
  std::cout << "report: wrote " << doc.string() << " and plots in " << flags.String("plots")
            << '\n';
  return 0;
}

}  // namespace invsync::bench
