#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "redis/client.hpp"

namespace invsync::bench {

/// The servers the benchmarks use: from --redis-url / --database-url, else INVSYNC_TEST_* (set by
/// scripts/with-services), else INVSYNC_REDIS_URL / INVSYNC_DATABASE_URL.
struct Servers {
  std::string redis_url;
  std::string database_url;
};

/// `--name value` / `--name=value` flags with defaults; `--help` prints them. Unknown flags and
/// malformed numbers throw `std::invalid_argument` naming the flag.
class Flags {
 public:
  Flags(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}

  /// Declares a flag with its default and a description (before `Parse`).
  void Add(std::string name, std::string default_value, std::string description);
  /// Returns false if `--help` was asked (usage is then printed).
  [[nodiscard]] bool Parse(int argc, char** argv);

  [[nodiscard]] std::string String(const std::string& name) const;
  [[nodiscard]] std::int64_t Int(const std::string& name, std::int64_t low,
                                 std::int64_t high) const;
  [[nodiscard]] double Seconds(const std::string& name) const;

 private:
  struct Flag {
    std::string value;
    std::string description;
  };
  std::string program_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
};

/// Adds --redis-url and --database-url to `flags`.
void AddServerFlags(Flags& flags);
/// Resolves the servers from the flags and the environment; throws if one is missing.
[[nodiscard]] Servers ResolveServers(const Flags& flags);

/// Makes runs independent, as tests/support does: FLUSHALL Redis, recreate the public schema,
/// then apply the migrations.
void ResetState(const Servers& servers);

/// True if `database_url` names a SQLite file (`sqlite://...`) rather than PostgreSQL.
[[nodiscard]] bool IsSqliteUrl(const std::string& database_url);
/// The file a `sqlite://` URL names (`sqlite:///abs/path` or `sqlite://relative/path`).
[[nodiscard]] std::string SqlitePath(const std::string& database_url);

/// Writes dirty pages out now, so that a checkpoint forced by earlier writes does not land inside
/// the next timed section.
void Checkpoint(const std::string& database_url);

/// Rewrites Redis's append-only file now (BGREWRITEAOF) and waits until it is done, so that a
/// rewrite owed to the setup's writes does not land inside the next timed section. Returns at
/// once if the append-only file is off.
void CompactAof(redis::Connection& connection);
/// Append-only file rewrites Redis has completed since it started (INFO persistence).
[[nodiscard]] std::int64_t AofRewrites(redis::Connection& connection);

/// CPU seconds (user + system) Redis reports having used so far (INFO cpu).
[[nodiscard]] double RedisCpuSeconds(redis::Connection& connection);
/// CPU seconds (user + system) this process has used so far, all threads.
[[nodiscard]] double ProcessCpuSeconds();

/// Median of the values (mean of the middle two for an even count); 0 for none.
[[nodiscard]] double Median(std::vector<double> values);
/// The q-quantile (0..1, nearest rank) of sorted values; 0 for none.
[[nodiscard]] std::int64_t Quantile(const std::vector<std::int64_t>& sorted, double q);

/// Seconds since `start` as a double.
[[nodiscard]] inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Correctness checks of a run: each a line "ok     what" or "FAILED what"; `ok` if all held.
struct Check {
  bool ok = true;
  std::vector<std::string> lines;
  void Expect(bool condition, std::string what);
};

/// A benchmark's `main`: runs `run` and returns its exit status; bad flags
/// (`std::invalid_argument`) exit 2 and other failures 1, each with one line naming `program`.
int Main(std::string_view program, const std::function<int()>& run);

/// Writes `document` to `path` (pretty-printed); throws `std::runtime_error` on failure.
void WriteJson(const std::string& path, const nlohmann::json& document);

}  // namespace invsync::bench
