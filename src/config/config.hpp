#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace invsync::config {

/// A bearer token allowed to call the HTTP API, kept only as the SHA-256 of the token.
/// Configured in the file only, as `[[tokens]]` tables: name, sha256 (64 hex digits), role.
struct AccessToken {
  std::string name;    ///< for operators; never the token itself
  std::string sha256;  ///< lower-case hex of SHA-256(token)
  std::string role;    ///< "read", "order" or "admin"
  friend bool operator==(const AccessToken&, const AccessToken&) = default;
};

/// Every setting of the service, with its default. Each has one dotted name (`redis.url`), which
/// is its TOML path, its flag (`--redis-url`) and, upper-cased with `INVSYNC_`, its environment
/// variable (`INVSYNC_REDIS_URL`); `server.listen` is also `INVSYNC_LISTEN`.
struct Settings {
  // [data]
  std::string data_dir = "var";  ///< the embedded database and the managed Redis live here
  // [redis]
  std::string redis_url;  ///< empty: a Redis of invsync's own in data_dir (see ManagedRedis)
  std::string redis_key_prefix = "inventory:";  ///< prefix of the seed's `inventory:<sku>` hashes
  int redis_pool_size = 96;  // HTTP workers and persisters each hold one while they work
  std::chrono::milliseconds redis_timeout{2000};
  // [database]
  std::string database_url;  ///< empty: SQLite in data_dir
  int database_pool_size = 4;
  // [stock]
  std::int64_t stock_max_line_quantity = 1'000'000;
  int stock_max_order_lines = 100;
  std::chrono::milliseconds stock_idempotency_retention{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds stock_absent_ttl{std::chrono::seconds(2)};
  std::chrono::milliseconds stock_fill_lock_ttl{std::chrono::seconds(2)};
  std::chrono::milliseconds stock_fill_wait{std::chrono::seconds(3)};
  // [persister]
  bool persister_enabled = true;
  int persister_batch_size = 4000;
  /// Several overlap one batch's database commit with other batches' Redis reads and acks.
  int persister_threads = 4;
  std::chrono::milliseconds persister_batch_wait{50};
  std::chrono::milliseconds persister_claim_idle{std::chrono::seconds(30)};
  std::chrono::milliseconds persister_max_backoff{std::chrono::seconds(5)};
  // [syncer]
  bool syncer_enabled = true;
  int syncer_batch_size = 2000;
  std::chrono::milliseconds syncer_poll_interval{1000};
  std::chrono::milliseconds syncer_retention{std::chrono::hours(1)};
  // [reconcile]
  std::chrono::milliseconds reconcile_interval{0};  ///< 0: no scheduled runs
  bool reconcile_repair = false;
  // [server]
  std::string server_listen = "127.0.0.1:8080";
  int server_io_threads = 0;
  int server_workers = 16;  // more only adds context switches on a small machine
  /// Redis connections per I/O thread, for the cached reads and orders it answers itself.
  int server_redis_connections = 1;
  std::int64_t server_body_limit = 64 * 1024;
  std::chrono::milliseconds server_request_deadline{5000};
  std::chrono::milliseconds server_read_timeout{10'000};
  std::chrono::milliseconds server_idle_timeout{60'000};
  int server_max_connections = 4096;
  int server_max_many_skus = 100;
  bool server_access_log = false;       ///< one structured log line per request
  bool server_protect_metrics = false;  ///< /metrics needs a token (role read) when tokens exist
  std::vector<AccessToken> tokens;      ///< empty: the API is open (bind to loopback!)
  // [log]
  std::string log_level = "info";

  /// Field-by-field equality.
  bool operator==(const Settings&) const = default;
};

/// The Redis to use: `redis.url`, or the unix socket of the managed Redis in `data.dir`.
[[nodiscard]] std::string EffectiveRedisUrl(const Settings& settings);
/// True when invsync runs its own Redis (no `redis.url` configured).
[[nodiscard]] inline bool ManagesRedis(const Settings& settings) {
  return settings.redis_url.empty();
}
/// The database to use: `database.url`, or the SQLite file in `data.dir`.
[[nodiscard]] std::string EffectiveDatabaseUrl(const Settings& settings);

/// Raw `name=value` overrides, keyed by dotted setting name (`persister.batch_size`).
using Overrides = std::map<std::string, std::string>;

/// Environment as name → value (tests pass their own; `CurrentEnvironment()` reads the process's).
using Environment = std::map<std::string, std::string>;

/// One known setting, for help text and documentation.
struct SettingInfo {
  std::string name;         ///< dotted name, e.g. "redis.url"
  std::string env;          ///< environment variable, e.g. "INVSYNC_REDIS_URL"
  std::string flag;         ///< command-line flag, e.g. "--redis-url"
  std::string description;  ///< one line
};

/// All settings in documentation order.
[[nodiscard]] const std::vector<SettingInfo>& KnownSettings();

/// The process environment, restricted to variables starting with `INVSYNC_`.
[[nodiscard]] Environment CurrentEnvironment();

/// Builds settings from defaults, then the TOML file (if given), then the environment, then the
/// flags, each layer overriding the previous. Every value is validated; the first invalid or
/// unknown one throws `invsync::ConfigError` whose message names the setting and its source
/// (e.g. "persister.batch_size (from INVSYNC_PERSISTER_BATCH_SIZE): must be between 1 and 100000,
/// got \"0\""). Unknown `INVSYNC_*` variables are ignored; unknown TOML keys and override
/// names are errors. `INVSYNC_LISTEN` and `INVSYNC_SERVER_LISTEN` may both be set only if equal.
[[nodiscard]] Settings Load(const std::optional<std::string>& toml_path, const Environment& env,
                            const Overrides& flags);

/// `Load` with the file's text given rather than read; `origin` names it in error messages.
[[nodiscard]] Settings LoadText(std::string_view toml_text, const std::string& origin,
                                const Environment& env, const Overrides& flags);

/// Parses a duration such as "250ms", "2s", "5m", "3h", "7d" (a bare integer is milliseconds).
/// Returns nullopt on malformed or negative input or overflow.
[[nodiscard]] std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace invsync::config
