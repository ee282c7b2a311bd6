#include "config/config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "common/error.hpp"

namespace invsync::config {
namespace {

using std::chrono::milliseconds;
using namespace std::string_view_literals;

constexpr std::string_view kEnvPrefix = "INVSYNC_";

// --- Raw values ------------------------------------------------------------------------------

/// A TOML value of a type no setting takes (float, array, table, date); holds a description.
struct Unsupported {
  std::string what;
};

/// A value as it arrived: text (environment, flags, TOML strings) or a native TOML scalar.
using RawValue = std::variant<std::string, std::int64_t, bool, Unsupported>;

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToLower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

char ToUpper(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ToLower);
  return out;
}

/// Digits only: no sign, no spaces, no separators; nullopt on overflow.
std::optional<std::int64_t> ParseUnsigned(std::string_view text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), IsDigit)) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::optional<bool> ParseBool(std::string_view text) {
  const std::string lower = Lowercase(text);
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
    return true;
  }
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") {
    return false;
  }
  return std::nullopt;
}

struct DurationUnit {
  std::string_view suffix;
  std::int64_t millis;
};

// Largest first: FormatDuration picks the first unit that divides exactly.
constexpr std::array<DurationUnit, 5> kDurationUnits{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

/// Renders a limit the way a user would write it ("250ms", "5m", "365d").
std::string FormatDuration(milliseconds value) {
  const std::int64_t count = value.count();
  for (const DurationUnit& unit : kDurationUnits) {
    if (count != 0 && count % unit.millis == 0) {
      return fmt::format("{}{}", count / unit.millis, unit.suffix);
    }
  }
  return fmt::format("{}ms", count);
}

// --- Text checks ---------------------------------------------------------------------------
// Each returns why the value is invalid, or nullopt; it may normalise the value in place.

using TextCheck = std::optional<std::string> (*)(std::string& value);

std::optional<std::string> CheckRedisUrl(std::string& value) {
  if (value.empty()) {
    return std::nullopt;  // invsync's own Redis
  }
  if (value.starts_with("rediss://")) {
    return "TLS (rediss://) is not supported; use redis:// or unix://";
  }
  if (value.starts_with("unix://")) {
    if (!std::string_view(value).substr(7).starts_with('/')) {
      return "unix:// needs an absolute socket path, e.g. unix:///run/redis/redis.sock";
    }
    return std::nullopt;
  }
  if (!value.starts_with("redis://")) {
    return "must start with redis:// or unix://";
  }
  return std::nullopt;
}

std::optional<std::string> CheckDatabaseUrl(std::string& value) {
  if (value.empty()) {
    return std::nullopt;  // the embedded SQLite file
  }
  for (const std::string_view scheme : {"postgresql://"sv, "postgres://"sv, "sqlite://"sv}) {
    if (value.starts_with(scheme)) {
      return std::nullopt;
    }
  }
  return "must start with postgresql://, postgres:// or sqlite://";
}

std::optional<std::string> CheckDataDir(std::string& value) {
  const bool printable = std::all_of(value.begin(), value.end(),
                                     [](char c) { return static_cast<unsigned char>(c) >= ' '; });
  if (value.empty() || !printable) {
    return "must be a directory path (no control characters)";
  }
  return std::nullopt;
}

// A unix socket path has room for 107 bytes, and the managed Redis's lives in data.dir: its length
// matters only when Redis is not given by URL, and only once every layer is applied (the default,
// relative to a deep working directory, may well be too long and never used).
void CheckManagedRedisRoom(const Settings& settings) {
  constexpr std::size_t kLongest = 80;
  const std::string absolute = std::filesystem::absolute(settings.data_dir).string();
  if (settings.redis_url.empty() && absolute.size() > kLongest) {
    throw ConfigError(fmt::format(
        "data.dir: must be a path of at most {} bytes once made absolute when redis.url is not "
        "set (the managed Redis's socket lives there), got {} bytes: {}",
        kLongest, absolute.size(), absolute));
  }
}

std::optional<std::string> CheckKeyPrefix(std::string& value) {
  const bool printable =
      std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c <= '~'; });
  if (value.empty() || value.size() > 64 || !printable) {
    return "must be 1 to 64 printable ASCII characters without spaces";
  }
  return std::nullopt;
}

bool IsValidPort(std::string_view text) {
  const std::optional<std::int64_t> port = text.size() <= 5 ? ParseUnsigned(text) : std::nullopt;
  return port.has_value() && *port <= 65535;
}

std::optional<std::string> CheckListen(std::string& value) {
  constexpr std::string_view kReason =
      "must be ADDRESS:PORT, the address an IP address or localhost, with a port from 0 to 65535 "
      "(IPv6 as [::1]:8080)";
  const std::string_view text = value;
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return std::string(kReason);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::string(kReason);
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return std::string(kReason);  // a bare IPv6 address: the port would be ambiguous
    }
  }
  // Checked here, before anything is written: the server binds only after the database is
  // migrated (and a demo loaded), and it takes an address, not a name to look up.
  in6_addr address{};
  const std::string host_text(host);
  const bool host_ok = host == "localhost" ||
                       inet_pton(AF_INET, host_text.c_str(), &address) == 1 ||
                       inet_pton(AF_INET6, host_text.c_str(), &address) == 1;
  if (!host_ok || !IsValidPort(port)) {
    return std::string(kReason);
  }
  return std::nullopt;
}

std::optional<std::string> CheckLogLevel(std::string& value) {
  const std::string lower = Lowercase(value);
  for (const std::string_view level :
       {"trace"sv, "debug"sv, "info"sv, "warn"sv, "error"sv, "critical"sv, "off"sv}) {
    if (lower == level) {
      value = lower;
      return std::nullopt;
    }
  }
  return "must be one of trace, debug, info, warn, error, critical, off";
}

// --- The table -----------------------------------------------------------------------------

template <typename T>
struct IntField {
  T Settings::*member;
  T min;
  T max;
};

struct DurationField {
  milliseconds Settings::*member;
  milliseconds min;
  milliseconds max;
};

struct BoolField {
  bool Settings::*member;
};

struct TextField {
  std::string Settings::*member;
  TextCheck check;
};

using Field =
    std::variant<IntField<int>, IntField<std::int64_t>, DurationField, BoolField, TextField>;

struct SettingDef {
  std::string_view name;  ///< dotted: "<section>.<key>"
  std::string_view description;
  Field field;
  /// The documented environment variable when it is not the derived one; both are accepted.
  std::string_view documented_env = {};
};

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const std::array<SettingDef, 38> kSettings{{
    {"data.dir",
     "directory of the embedded SQLite database and the managed Redis (when their URLs are "
     "not set)",
     TextField{&Settings::data_dir, CheckDataDir}},
    {"redis.url",
     "Redis server: redis://[:password@]host[:port][/db] or unix:///path/to.sock; empty: "
     "`serve` runs its own in data.dir",
     TextField{&Settings::redis_url, CheckRedisUrl}},
    {"redis.key_prefix", "prefix of the per-SKU stock hashes (<prefix><sku>)",
     TextField{&Settings::redis_key_prefix, CheckKeyPrefix}},
    {"redis.pool_size", "Redis connections per process",
     IntField<int>{&Settings::redis_pool_size, 1, 1024}},
    {"redis.timeout", "connect and command timeout for Redis",
     DurationField{&Settings::redis_timeout, milliseconds(1), seconds(60)}},
    {"database.url",
     "database: postgresql://..., postgres://... or sqlite:///path/file.db; empty: SQLite in "
     "data.dir",
     TextField{&Settings::database_url, CheckDatabaseUrl}},
    {"database.pool_size", "database connections per process",
     IntField<int>{&Settings::database_pool_size, 1, 1024}},
    {"stock.max_line_quantity", "largest quantity one order line may ask for",
     IntField<std::int64_t>{&Settings::stock_max_line_quantity, 1, 1'000'000'000'000}},
    {"stock.max_order_lines", "most lines one order may have",
     IntField<int>{&Settings::stock_max_order_lines, 1, 10'000}},
    {"stock.idempotency_retention", "how long a request id's first result is remembered",
     DurationField{&Settings::stock_idempotency_retention, seconds(1), hours(24 * 365)}},
    {"stock.absent_ttl",
     "how long an unknown SKU is cached as absent; 0 disables the negative cache",
     DurationField{&Settings::stock_absent_ttl, milliseconds(0), hours(1)}},
    {"stock.fill_lock_ttl", "lifetime of the lock held while filling the cache",
     DurationField{&Settings::stock_fill_lock_ttl, milliseconds(10), seconds(60)}},
    {"stock.fill_wait", "how long a reader waits for another's cache fill",
     DurationField{&Settings::stock_fill_wait, milliseconds(10), minutes(5)}},
    {"persister.enabled", "run the stream-to-database persister in this process",
     BoolField{&Settings::persister_enabled}},
    {"persister.batch_size", "most stream events written in one transaction",
     IntField<int>{&Settings::persister_batch_size, 1, 100'000}},
    {"persister.threads",
     "persisters per process, each a consumer of the stream with its own database connection",
     IntField<int>{&Settings::persister_threads, 1, 64}},
    {"persister.batch_wait", "how long to wait for a batch to fill",
     DurationField{&Settings::persister_batch_wait, milliseconds(0), seconds(10)}},
    {"persister.claim_idle", "idle time after which another consumer's events are claimed",
     DurationField{&Settings::persister_claim_idle, milliseconds(100), hours(1)}},
    {"persister.max_backoff", "longest retry delay after a transient failure",
     DurationField{&Settings::persister_max_backoff, milliseconds(10), minutes(10)}},
    {"syncer.enabled",
     "run the outbox-to-Redis syncer in this process (one of all processes is active)",
     BoolField{&Settings::syncer_enabled}},
    {"syncer.batch_size", "most outbox rows applied to Redis in one script call",
     IntField<int>{&Settings::syncer_batch_size, 1, 100'000}},
    {"syncer.poll_interval",
     "longest wait for a change notification; also how often a standby syncer tries to lead",
     DurationField{&Settings::syncer_poll_interval, milliseconds(10), minutes(10)}},
    {"syncer.retention", "applied outbox rows are deleted after this (each SKU's newest row stays)",
     DurationField{&Settings::syncer_retention, minutes(2), hours(24 * 365)}},
    {"reconcile.interval",
     "run reconcile inside serve this often (one process at a time); 0 turns it off",
     DurationField{&Settings::reconcile_interval, milliseconds(0), hours(24 * 7)}},
    {"reconcile.repair", "scheduled reconcile runs also repair the drift they find",
     BoolField{&Settings::reconcile_repair}},
    {"server.listen",
     "HTTP address ADDRESS:PORT (an IP address or localhost), IPv6 as [::1]:8080 "
     "(INVSYNC_SERVER_LISTEN is also accepted; "
     "setting both to different values is an error)",
     TextField{&Settings::server_listen, CheckListen}, "INVSYNC_LISTEN"},
    {"server.io_threads", "HTTP I/O threads; 0 means one per core",
     IntField<int>{&Settings::server_io_threads, 0, 256}},
    {"server.workers", "threads running requests' calls into Redis and the database",
     IntField<int>{&Settings::server_workers, 1, 4096}},
    {"server.redis_connections",
     "Redis connections per I/O thread answering cached reads and orders without a worker; 0 "
     "sends every request to the workers",
     IntField<int>{&Settings::server_redis_connections, 0, 64}},
    {"server.body_limit", "largest request body in bytes (413 above)",
     IntField<std::int64_t>{&Settings::server_body_limit, 64, 64 * 1024 * 1024}},
    {"server.request_deadline", "a request still running after this is answered 504",
     DurationField{&Settings::server_request_deadline, milliseconds(10), minutes(10)}},
    {"server.read_timeout", "a client must send a whole request within this",
     DurationField{&Settings::server_read_timeout, milliseconds(100), minutes(10)}},
    {"server.idle_timeout", "an idle keep-alive connection is closed after this",
     DurationField{&Settings::server_idle_timeout, milliseconds(100), hours(1)}},
    {"server.max_connections", "open connections beyond this are closed at once",
     IntField<int>{&Settings::server_max_connections, 1, 1'000'000}},
    {"server.max_many_skus", "most SKUs one GET /v1/inventory?sku=... may ask for",
     IntField<int>{&Settings::server_max_many_skus, 1, 10'000}},
    {"server.access_log", "log one structured line per HTTP request",
     BoolField{&Settings::server_access_log}},
    {"server.protect_metrics", "when tokens are configured, /metrics needs one (role read)",
     BoolField{&Settings::server_protect_metrics}},
    {"log.level", "trace, debug, info, warn, error, critical or off",
     TextField{&Settings::log_level, CheckLogLevel}},
}};

const SettingDef* FindSetting(std::string_view name) {
  const auto* it = std::find_if(kSettings.begin(), kSettings.end(),
                                [&](const SettingDef& def) { return def.name == name; });
  return it == kSettings.end() ? nullptr : it;
}

bool IsSection(std::string_view name) {
  return std::any_of(kSettings.begin(), kSettings.end(), [&](const SettingDef& def) {
    return def.name.substr(0, def.name.find('.')) == name;
  });
}

std::string DerivedEnvName(std::string_view name) {
  std::string env(kEnvPrefix);
  for (const char c : name) {
    env += c == '.' ? '_' : ToUpper(c);
  }
  return env;
}

std::string FlagName(std::string_view name) {
  std::string flag = "--";
  for (const char c : name) {
    flag += (c == '.' || c == '_') ? '-' : c;
  }
  return flag;
}

// --- Storing values ------------------------------------------------------------------------

std::optional<std::int64_t> AsInteger(const RawValue& raw) {
  return std::visit(Overloaded{
                        [](const std::string& text) { return ParseUnsigned(text); },
                        [](std::int64_t value) { return std::optional(value); },
                        [](const auto&) { return std::optional<std::int64_t>(); },
                    },
                    raw);
}

std::optional<milliseconds> AsDuration(const RawValue& raw) {
  return std::visit(Overloaded{
                        [](const std::string& text) { return ParseDuration(text); },
                        [](std::int64_t value) { return std::optional(milliseconds(value)); },
                        [](const auto&) { return std::optional<milliseconds>(); },
                    },
                    raw);
}

std::optional<bool> AsBool(const RawValue& raw) {
  return std::visit(Overloaded{
                        [](const std::string& text) { return ParseBool(text); },
                        [](bool value) { return std::optional(value); },
                        [](const auto&) { return std::optional<bool>(); },
                    },
                    raw);
}

// StoreInto: stores `raw` into the field of `settings`, or returns why it cannot (leaving the
// field unchanged). One overload per kind of field.

template <typename T>
std::optional<std::string> StoreInto(const IntField<T>& f, const RawValue& raw,
                                     Settings& settings) {
  const std::optional<std::int64_t> value = AsInteger(raw);
  if (!value) {
    return fmt::format("must be a whole number between {} and {}", f.min, f.max);
  }
  if (*value < f.min || *value > f.max) {
    return fmt::format("must be between {} and {}", f.min, f.max);
  }
  settings.*f.member = static_cast<T>(*value);
  return std::nullopt;
}

std::optional<std::string> StoreInto(const DurationField& f, const RawValue& raw,
                                     Settings& settings) {
  const std::optional<milliseconds> value = AsDuration(raw);
  if (!value) {
    return fmt::format(
        "must be a duration between {} and {} such as \"250ms\", \"2s\", \"5m\", \"3h\", "
        "\"7d\" (a bare integer is milliseconds)",
        FormatDuration(f.min), FormatDuration(f.max));
  }
  if (*value < f.min || *value > f.max) {
    return fmt::format("must be between {} and {}", FormatDuration(f.min), FormatDuration(f.max));
  }
  settings.*f.member = *value;
  return std::nullopt;
}

std::optional<std::string> StoreInto(const BoolField& f, const RawValue& raw, Settings& settings) {
  const std::optional<bool> value = AsBool(raw);
  if (!value) {
    return "must be true/false, 1/0, yes/no or on/off";
  }
  settings.*f.member = *value;
  return std::nullopt;
}

std::optional<std::string> StoreInto(const TextField& f, const RawValue& raw, Settings& settings) {
  const auto* text = std::get_if<std::string>(&raw);
  if (text == nullptr) {
    return "must be a string";
  }
  std::string value = *text;
  if (std::optional<std::string> reason = f.check(value)) {
    return reason;
  }
  settings.*f.member = std::move(value);
  return std::nullopt;
}

/// Replaces passwords (URL user info, `password=...`) so error messages can be logged.
std::string RedactSecrets(std::string text) {
  const std::size_t scheme_end = text.find("://");
  if (scheme_end != std::string::npos) {
    const std::size_t start = scheme_end + 3;
    const std::size_t at = text.find('@', start);
    const std::size_t colon = text.find(':', start);
    if (at != std::string::npos && colon < at && text.find('/', start) > at) {
      text.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (std::size_t pos = Lowercase(text).find("password="); pos != std::string::npos;
       pos = Lowercase(text).find("password=", pos)) {
    pos += 9;
    const std::size_t end = std::min(text.find_first_of(" &", pos), text.size());
    text.replace(pos, end - pos, "***");
  }
  return text;
}

// The text in double quotes, with C escapes and every byte outside printable ASCII as \xNN. Flags
// and variables may hold bytes that are not UTF-8, on which fmt's "{:?}" asserts (and ends the
// process).
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string Describe(const RawValue& raw) {
  return std::visit(Overloaded{
                        [](const std::string& text) { return Quote(RedactSecrets(text)); },
                        [](std::int64_t value) { return fmt::format("{}", value); },
                        [](bool value) { return std::string(value ? "true" : "false"); },
                        [](const Unsupported& value) { return value.what; },
                    },
                    raw);
}

/// `origin` is where the value came from: "default", "<file>:<line>", an env var or a flag.
void Apply(const SettingDef& def, const RawValue& raw, std::string_view origin,
           Settings& settings) {
  const std::optional<std::string> reason =
      std::visit([&](const auto& field) { return StoreInto(field, raw, settings); }, def.field);
  if (reason) {
    throw ConfigError(
        fmt::format("{} (from {}): {}, got {}", def.name, origin, *reason, Describe(raw)));
  }
}

// --- Layers --------------------------------------------------------------------------------

RawValue DefaultValue(const SettingDef& def, const Settings& settings) {
  return std::visit(
      Overloaded{
          [&](const auto& f) { return RawValue(std::int64_t{settings.*f.member}); },
          [&](const DurationField& f) { return RawValue((settings.*f.member).count()); },
          [&](const BoolField& f) { return RawValue(settings.*f.member); },
          [&](const TextField& f) { return RawValue(settings.*f.member); },
      },
      def.field);
}

// Defaults pass the same checks as everything else, so a bad edit to a default is caught early.
void CheckDefaults(Settings& settings) {
  for (const SettingDef& def : kSettings) {
    Apply(def, DefaultValue(def, settings), "default", settings);
  }
}

struct FileCloser {
  void operator()(std::FILE* file) const noexcept {
    if (file != nullptr) {
      // A read-only stream has nothing to flush, and a deleter must not throw.
      static_cast<void>(std::fclose(file));
    }
  }
};

std::string ReadFile(const std::string& path) {
  errno = 0;
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    throw ConfigError(fmt::format("cannot open config file {}: {}", path,
                                  std::generic_category().message(errno)));
  }
  std::string text;
  std::array<char, 4096> buffer{};
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    text.append(buffer.data(), count);
  }
  if (std::ferror(file.get()) != 0) {
    throw ConfigError(fmt::format("cannot read config file {}: {}", path,
                                  std::generic_category().message(errno)));
  }
  return text;
}

std::string Location(const std::string& path, const toml::source_region& source) {
  return fmt::format("{}:{}", path, source.begin.line);
}

RawValue ToRaw(const toml::node& node) {
  if (const auto* text = node.as_string()) {
    return text->get();
  }
  if (const auto* integer = node.as_integer()) {
    return integer->get();
  }
  if (const auto* boolean = node.as_boolean()) {
    return boolean->get();
  }
  switch (node.type()) {
    case toml::node_type::floating_point:
      return Unsupported{"a TOML float"};
    case toml::node_type::table:
      return Unsupported{"a TOML table"};
    case toml::node_type::array:
      return Unsupported{"a TOML array"};
    default:
      return Unsupported{"a TOML date/time"};
  }
}

toml::table ParseToml(std::string_view text, const std::string& path) {
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& error) {
    throw ConfigError(fmt::format("cannot parse config file {}:{}:{}: {}", path,
                                  error.source().begin.line, error.source().begin.column,
                                  error.description()));
  }
}

/// One `key = value` of the file: `name` is dotted inside a known section, bare at the top level.
struct FileEntry {
  std::string name;
  bool in_section;
  const toml::key* key;
  const toml::node* node;
};

// toml++ iterates tables in key order; sorting by position reports the file's first mistake.
std::vector<FileEntry> EntriesInFileOrder(const toml::table& root) {
  std::vector<FileEntry> entries;
  for (const auto& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const auto* table = section_node.as_table();
    if (table == nullptr || !IsSection(section)) {
      entries.push_back({section, false, &section_key, &section_node});
      continue;
    }
    for (const auto& [key, node] : *table) {
      entries.push_back({fmt::format("{}.{}", section, key.str()), true, &key, &node});
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const FileEntry& a, const FileEntry& b) {
    return a.key->source().begin < b.key->source().begin;
  });
  return entries;
}

// `[[tokens]]`: each table has exactly name, sha256 (64 hex digits) and role.
void ApplyTokens(const std::string& path, const toml::node& node, Settings& settings) {
  const auto* array = node.as_array();
  if (array == nullptr) {
    throw ConfigError(fmt::format("tokens in {} must be an array of tables ([[tokens]])",
                                  Location(path, node.source())));
  }
  for (const auto& item : *array) {
    const std::string where = Location(path, item.source());
    const auto* table = item.as_table();
    if (table == nullptr) {
      throw ConfigError(fmt::format("tokens in {}: each entry must be a table", where));
    }
    AccessToken token;
    for (const auto& [key, value] : *table) {
      const auto* text = value.as_string();
      std::string name(key.str());
      if (text == nullptr || (name != "name" && name != "sha256" && name != "role")) {
        throw ConfigError(
            fmt::format("tokens.{} in {}: only string keys name, sha256 and role are "
                        "allowed",
                        name, Location(path, key.source())));
      }
      (name == "name" ? token.name : name == "sha256" ? token.sha256 : token.role) = text->get();
    }
    const bool hex = token.sha256.size() == 64 &&
                     std::all_of(token.sha256.begin(), token.sha256.end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    if (token.name.empty() || !hex) {
      throw ConfigError(fmt::format(
          "tokens in {}: each needs a name and sha256 = 64 lower-case hex digits (the SHA-256 of "
          "the token; `invsync hash-token` prints it), never the token itself",
          where));
    }
    if (token.role != "read" && token.role != "order" && token.role != "admin") {
      throw ConfigError(fmt::format("tokens.role in {}: must be read, order or admin, got \"{}\"",
                                    where, token.role));
    }
    settings.tokens.push_back(std::move(token));
  }
}

void ApplyFile(std::string_view text, const std::string& path, Settings& settings) {
  const toml::table root = ParseToml(text, path);
  for (const FileEntry& entry : EntriesInFileOrder(root)) {
    const std::string where = Location(path, entry.key->source());
    const SettingDef* def = entry.in_section ? FindSetting(entry.name) : nullptr;
    if (!entry.in_section && entry.name == "tokens") {
      ApplyTokens(path, *entry.node, settings);
    } else if (def != nullptr) {
      Apply(*def, ToRaw(*entry.node), Location(path, entry.node->source()), settings);
    } else if (!entry.in_section && IsSection(entry.name)) {
      throw ConfigError(
          fmt::format("\"{}\" in {} must be a table ([{}])", entry.name, where, entry.name));
    } else {
      throw ConfigError(fmt::format("unknown {} \"{}\" in {}",
                                    entry.node->is_table() ? "section" : "setting", entry.name,
                                    where));
    }
  }
}

const std::string* Lookup(const Environment& env, const std::string& name) {
  const auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

void ApplyEnvironment(const Environment& env, Settings& settings) {
  for (const SettingDef& def : kSettings) {
    std::string var = DerivedEnvName(def.name);
    const std::string* value = Lookup(env, var);
    if (!def.documented_env.empty()) {
      const std::string documented(def.documented_env);
      if (const std::string* alias = Lookup(env, documented)) {
        if (value != nullptr && *value != *alias) {
          throw ConfigError(fmt::format("{}: {}={} and {}={} disagree; set only one", def.name,
                                        documented, Quote(*alias), var, Quote(*value)));
        }
        value = alias;
        var = documented;
      }
    }
    if (value != nullptr) {
      Apply(def, *value, var, settings);
    }
  }
}

void ApplyFlags(const Overrides& flags, Settings& settings) {
  for (const auto& [name, value] : flags) {
    const SettingDef* def = FindSetting(name);
    if (def == nullptr) {
      throw ConfigError(fmt::format("unknown setting \"{}\" (from flags)", name));
    }
    Apply(*def, value, FlagName(def->name), settings);
  }
}

/// The accepted range, for help text: "1-1024", "10ms-5m"; empty when not a range.
std::string Range(const Field& field) {
  return std::visit(Overloaded{
                        [](const auto& f) { return fmt::format("{}-{}", f.min, f.max); },
                        [](const DurationField& f) {
                          return fmt::format("{}-{}", FormatDuration(f.min), FormatDuration(f.max));
                        },
                        [](const BoolField&) { return std::string(); },
                        [](const TextField&) { return std::string(); },
                    },
                    field);
}

}  // namespace

const std::vector<SettingInfo>& KnownSettings() {
  static const std::vector<SettingInfo> infos = [] {
    std::vector<SettingInfo> out;
    out.reserve(kSettings.size());
    for (const SettingDef& def : kSettings) {
      out.push_back(SettingInfo{
          .name = std::string(def.name),
          .env = def.documented_env.empty() ? DerivedEnvName(def.name)
                                            : std::string(def.documented_env),
          .flag = FlagName(def.name),
          .description = Range(def.field).empty()
                             ? std::string(def.description)
                             : fmt::format("{} ({})", def.description, Range(def.field)),
      });
    }
    return out;
  }();
  return infos;
}

Environment CurrentEnvironment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (text.starts_with(kEnvPrefix) && equals != std::string_view::npos) {
      env.emplace(text.substr(0, equals), text.substr(equals + 1));
    }
  }
  return env;
}

Settings Load(const std::optional<std::string>& toml_path, const Environment& env,
              const Overrides& flags) {
  Settings settings;
  CheckDefaults(settings);
  if (toml_path) {
    ApplyFile(ReadFile(*toml_path), *toml_path, settings);
  }
  ApplyEnvironment(env, settings);
  ApplyFlags(flags, settings);
  CheckManagedRedisRoom(settings);
  return settings;
}

Settings LoadText(std::string_view toml_text, const std::string& origin, const Environment& env,
                  const Overrides& flags) {
  Settings settings;
  CheckDefaults(settings);
  ApplyFile(toml_text, origin, settings);
  ApplyEnvironment(env, settings);
  ApplyFlags(flags, settings);
  CheckManagedRedisRoom(settings);
  return settings;
}

std::optional<milliseconds> ParseDuration(const std::string& text) {
  const std::string_view view = text;
  const std::size_t digits_end = std::min(view.find_first_not_of("0123456789"), view.size());
  const std::optional<std::int64_t> count = ParseUnsigned(view.substr(0, digits_end));
  const std::string_view suffix = view.substr(digits_end);
  if (!count) {
    return std::nullopt;
  }
  std::int64_t factor = suffix.empty() ? 1 : 0;
  for (const DurationUnit& unit : kDurationUnits) {
    if (unit.suffix == suffix) {
      factor = unit.millis;
    }
  }
  if (factor == 0 || *count > std::numeric_limits<std::int64_t>::max() / factor) {
    return std::nullopt;
  }
  return milliseconds(*count * factor);
}

std::string EffectiveRedisUrl(const Settings& settings) {
  if (!settings.redis_url.empty()) {
    return settings.redis_url;
  }
  return "unix://" + (std::filesystem::absolute(settings.data_dir) / "redis.sock").string();
}

std::string EffectiveDatabaseUrl(const Settings& settings) {
  if (!settings.database_url.empty()) {
    return settings.database_url;
  }
  return "sqlite://" + (std::filesystem::absolute(settings.data_dir) / "invsync.db").string();
}

}  // namespace invsync::config
