#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>  // also POSIX mkdtemp, setenv, unsetenv
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace invsync::config {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

/// The message of the ConfigError that Load throws, or "" if it succeeds.
std::string LoadError(const std::optional<std::string>& path, const Environment& env,
                      const Overrides& flags) {
  try {
    static_cast<void>(Load(path, env, flags));
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

const SettingInfo& Info(std::string_view name) {
  const auto& all = KnownSettings();
  const auto it =
      std::find_if(all.begin(), all.end(), [&](const SettingInfo& i) { return i.name == name; });
  if (it == all.end()) {
    throw std::logic_error("no such setting in KnownSettings()");
  }
  return *it;
}

/// Gives each test its own temporary directory for TOML files and removes it afterwards.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "invsync-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteToml(std::string_view text) {
    const std::filesystem::path path = dir_ / "invsync.toml";
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
};

TEST(ConfigLoadTest, NothingSetGivesDefaults) {
  const Settings settings = Load(std::nullopt, {}, {});
  EXPECT_EQ(settings, Settings{});
  EXPECT_EQ(settings.redis_url, "");  // invsync runs its own
  EXPECT_EQ(settings.persister_batch_wait, 50ms);
  EXPECT_EQ(settings.stock_idempotency_retention, std::chrono::hours(24 * 7));
}

TEST(ConfigLoadTest, UnsetUrlsMeanTheManagedRedisAndTheEmbeddedDatabaseInTheDataDir) {
  const Settings settings = Load(std::nullopt, {{"INVSYNC_DATA_DIR", "/srv/shop"}}, {});
  EXPECT_TRUE(ManagesRedis(settings));
  EXPECT_EQ(EffectiveRedisUrl(settings), "unix:///srv/shop/redis.sock");
  EXPECT_EQ(EffectiveDatabaseUrl(settings), "sqlite:///srv/shop/invsync.db");
  const Settings configured =
      Load(std::nullopt, {},
           {{"redis.url", "redis://cache:6379"}, {"database.url", "postgresql://db/shop"}});
  EXPECT_FALSE(ManagesRedis(configured));
  EXPECT_EQ(EffectiveRedisUrl(configured), "redis://cache:6379");
  EXPECT_EQ(EffectiveDatabaseUrl(configured), "postgresql://db/shop");
}

// The managed Redis's socket lives in data.dir, so its length counts only when Redis is not
// given by URL, and only for the value finally chosen: a default resolved against a deep working
// directory stopped every command before.
TEST(ConfigLoadTest, DataDirLengthCountsOnlyForTheManagedRedis) {
  const std::string deep = "/" + std::string(90, 'd');
  EXPECT_NO_THROW(Load(std::nullopt, {{"INVSYNC_DATA_DIR", "/srv/shop"}}, {}));
  EXPECT_NO_THROW(Load(std::nullopt, {}, {{"data.dir", deep}, {"redis.url", "redis://cache"}}));
  try {
    static_cast<void>(Load(std::nullopt, {}, {{"data.dir", deep}}));
    ADD_FAILURE() << "a data.dir too long for the managed Redis's socket was accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("data.dir"), std::string::npos) << error.what();
  }
  // A default relative to a deep working directory: fine while the directory given is short.
  const auto before = std::filesystem::current_path();
  const auto deep_cwd = std::filesystem::temp_directory_path() / std::string(90, 'w');
  std::filesystem::create_directories(deep_cwd);
  std::filesystem::current_path(deep_cwd);
  EXPECT_NO_THROW(Load(std::nullopt, {}, {{"data.dir", "/srv/shop"}}));
  EXPECT_THROW(Load(std::nullopt, {}, {}), ConfigError);
  std::filesystem::current_path(before);
  std::filesystem::remove(deep_cwd);
}

TEST_F(ConfigFileTest, FileOverridesDefaults) {
  const std::string path = WriteToml(R"(
[redis]
url = "unix:///run/redis.sock"
pool_size = 32
timeout = "250ms"
[stock]
max_line_quantity = 1_000_000_000_000
absent_ttl = 1500
[persister]
enabled = false
[server]
listen = "[::1]:9000"
)");
  const Settings settings = Load(path, {}, {});
  EXPECT_EQ(settings.redis_url, "unix:///run/redis.sock");
  EXPECT_EQ(settings.redis_pool_size, 32);
  EXPECT_EQ(settings.redis_timeout, 250ms);
  EXPECT_EQ(settings.stock_max_line_quantity, 1'000'000'000'000);
  EXPECT_EQ(settings.stock_absent_ttl, 1500ms);  // a TOML integer duration is milliseconds
  EXPECT_FALSE(settings.persister_enabled);
  EXPECT_EQ(settings.server_listen, "[::1]:9000");
  EXPECT_EQ(settings.database_url, Settings{}.database_url);
}

TEST_F(ConfigFileTest, TokensAreReadAsHashesWithRoles) {
  const std::string hash(64, 'a');
  const std::string path = WriteToml("[[tokens]]\nname = \"orders\"\nsha256 = \"" + hash +
                                     "\"\nrole = \"order\"\n[[tokens]]\nname = \"ops\"\n"
                                     "sha256 = \"" +
                                     std::string(64, 'b') + "\"\nrole = \"admin\"\n");
  const Settings settings = Load(path, {}, {});
  ASSERT_EQ(settings.tokens.size(), 2U);
  EXPECT_EQ(settings.tokens[0].name, "orders");
  EXPECT_EQ(settings.tokens[0].sha256, hash);
  EXPECT_EQ(settings.tokens[1].role, "admin");
}

TEST_F(ConfigFileTest, ATokenInPlainTextOrWithAnUnknownRoleIsRefused) {
  for (const std::string& body :
       {std::string("[[tokens]]\nname = \"x\"\nsha256 = \"secret-token\"\nrole = \"read\"\n"),
        "[[tokens]]\nname = \"x\"\nsha256 = \"" + std::string(64, 'a') + "\"\nrole = \"root\"\n",
        "[[tokens]]\nname = \"x\"\nsha256 = \"" + std::string(64, 'a') +
            "\"\nrole = \"read\"\ntoken = \"plain\"\n",
        std::string("tokens = 5\n")}) {
    const std::string path = WriteToml(body);
    EXPECT_THROW((void)Load(path, {}, {}), ConfigError) << body;
  }
}

TEST_F(ConfigFileTest, EnvironmentOverridesFile) {
  const std::string path = WriteToml("[persister]\nbatch_size = 10\n[redis]\npool_size = 32\n");
  const Settings settings = Load(path, {{"INVSYNC_PERSISTER_BATCH_SIZE", "20"}}, {});
  EXPECT_EQ(settings.persister_batch_size, 20);
  EXPECT_EQ(settings.redis_pool_size, 32);
}

TEST_F(ConfigFileTest, FlagOverridesEnvironmentAndFile) {
  const std::string path = WriteToml("[persister]\nbatch_size = 10\nbatch_wait = \"1s\"\n");
  const Settings settings =
      Load(path, {{"INVSYNC_PERSISTER_BATCH_SIZE", "20"}, {"INVSYNC_LOG_LEVEL", "debug"}},
           {{"persister.batch_size", "30"}, {"persister.batch_wait", "0"}});
  EXPECT_EQ(settings.persister_batch_size, 30);
  EXPECT_EQ(settings.persister_batch_wait, 0ms);
  EXPECT_EQ(settings.log_level, "debug");
}

TEST(ConfigLoadTest, LimitsAreInclusive) {
  const Settings low = Load(std::nullopt, {},
                            {{"redis.pool_size", "1"},
                             {"stock.absent_ttl", "0"},
                             {"redis.timeout", "1ms"},
                             {"server.listen", "0.0.0.0:0"}});
  EXPECT_EQ(low.redis_pool_size, 1);
  EXPECT_EQ(low.stock_absent_ttl, 0ms);
  EXPECT_EQ(low.redis_timeout, 1ms);
  const Settings high = Load(std::nullopt, {},
                             {{"redis.pool_size", "1024"},
                              {"stock.max_line_quantity", "1000000000000"},
                              {"stock.idempotency_retention", "365d"},
                              {"server.listen", "localhost:65535"}});
  EXPECT_EQ(high.redis_pool_size, 1024);
  EXPECT_EQ(high.stock_max_line_quantity, 1'000'000'000'000);
  EXPECT_EQ(high.stock_idempotency_retention, std::chrono::hours(24 * 365));
}

TEST(ConfigLoadTest, BooleansAcceptEverySpelling) {
  for (const auto* text : {"true", "1", "yes", "on", "TRUE", "Yes"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(Load(std::nullopt, {{"INVSYNC_PERSISTER_ENABLED", text}}, {}).persister_enabled);
  }
  for (const auto* text : {"false", "0", "no", "off", "False", "OFF"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(Load(std::nullopt, {{"INVSYNC_PERSISTER_ENABLED", text}}, {}).persister_enabled);
  }
}

TEST(ConfigLoadTest, LogLevelIsCaseInsensitiveAndStoredLowercase) {
  EXPECT_EQ(Load(std::nullopt, {}, {{"log.level", "WARN"}}).log_level, "warn");
}

TEST(ConfigLoadTest, DatabaseUrlAcceptsEverySupportedScheme) {
  for (const auto* url : {"postgresql://u@db/x", "postgres://db/x", "sqlite:///var/lib/x.db"}) {
    SCOPED_TRACE(url);
    EXPECT_EQ(Load(std::nullopt, {}, {{"database.url", url}}).database_url, url);
  }
}

// --- Invalid values --------------------------------------------------------------------------

struct BadValue {
  std::string name;      ///< dotted setting name
  std::string value;     ///< as given in the environment or a flag
  std::string fragment;  ///< expected somewhere in the message ("" to skip)
};

void PrintTo(const BadValue& bad, std::ostream* out) {
  *out << bad.name << "=\"" << bad.value << "\"";
}

const std::vector<BadValue> kBadValues = {
    {"redis.url", "http://127.0.0.1:6379", "redis:// or unix://"},
    {"redis.url", "rediss://cache:6380", "not supported"},
    {"redis.url", "unix://relative.sock", "absolute socket path"},
    {"data.dir", "", "directory path"},
    {"data.dir", "dir\twith\ttabs", "directory path"},
    {"database.url", "mysql://db/x", "postgresql://"},
    {"database.url", "dbname=x", ""},
    {"redis.key_prefix", "", "1 to 64"},
    {"redis.key_prefix", "has space:", ""},
    {"redis.key_prefix", std::string(65, 'k'), ""},
    {"redis.key_prefix", "tab\t", ""},
    {"redis.key_prefix", "caf\xc3\xa9:", ""},
    {"redis.pool_size", "0", "between 1 and 1024"},
    {"redis.pool_size", "1025", "between 1 and 1024"},
    {"redis.pool_size", "-1", "whole number"},
    {"redis.pool_size", "+5", "whole number"},
    {"redis.pool_size", "16x", "whole number"},
    {"redis.pool_size", " 16", "whole number"},
    {"redis.pool_size", "1.5", "whole number"},
    {"redis.pool_size", "", "whole number"},
    {"redis.pool_size", "99999999999999999999", "whole number"},
    {"database.pool_size", "2000", "between 1 and 1024"},
    {"redis.timeout", "0", "between 1ms and 1m"},
    {"redis.timeout", "61s", "between 1ms and 1m"},
    {"redis.timeout", "2x", "duration"},
    {"redis.timeout", "-5ms", "duration"},
    {"stock.max_line_quantity", "0", ""},
    {"stock.max_line_quantity", "1000000000001", "1000000000000"},
    {"stock.max_line_quantity", "9223372036854775808", ""},
    {"stock.max_order_lines", "10001", "between 1 and 10000"},
    {"stock.idempotency_retention", "999ms", "between 1s and 365d"},
    {"stock.idempotency_retention", "366d", "between 1s and 365d"},
    {"stock.absent_ttl", "61m", "between 0ms and 1h"},
    {"stock.fill_lock_ttl", "9ms", "between 10ms and 1m"},
    {"stock.fill_lock_ttl", "61s", ""},
    {"stock.fill_wait", "5ms", "between 10ms and 5m"},
    {"stock.fill_wait", "301s", ""},
    {"persister.enabled", "maybe", "true/false"},
    {"persister.enabled", "2", ""},
    {"persister.enabled", "", ""},
    {"persister.batch_size", "0", "between 1 and 100000"},
    {"persister.batch_size", "100001", ""},
    {"persister.threads", "0", "between 1 and 64"},
    {"persister.threads", "65", ""},
    {"persister.batch_wait", "11s", "between 0ms and 10s"},
    {"persister.claim_idle", "99ms", "between 100ms and 1h"},
    {"persister.claim_idle", "2h", ""},
    {"persister.max_backoff", "9ms", "between 10ms and 10m"},
    {"persister.max_backoff", "11m", ""},
    {"server.listen", "8080", "ADDRESS:PORT"},
    {"server.listen", "localhost", ""},
    {"server.listen", "localhost:65536", ""},
    {"server.listen", "localhost:-1", ""},
    {"server.listen", "localhost:http", ""},
    {"server.listen", "shop.example:8080", ""},
    {"server.listen", "nonexistent.invalid:8080", ""},
    {"server.listen", "300.1.1.1:8080", ""},
    {"server.listen", ":8080", ""},
    {"server.listen", "::1:8080", "[::1]:8080"},
    {"server.listen", "[::1]8080", ""},
    {"server.listen", "[]:8080", ""},
    {"log.level", "verbose", "trace, debug"},
    {"log.level", "", ""},
};

/// True when the value appears verbatim in quotes, i.e. needs no escaping.
bool PrintsVerbatim(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= ' ' && c <= '~' && c != '"' && c != '\\'; });
}

void ExpectRejection(const BadValue& bad, const std::string& message, const std::string& source) {
  EXPECT_NE(message.find(bad.name + " (from " + source + ")"), std::string::npos) << message;
  EXPECT_NE(message.find(bad.fragment), std::string::npos) << message;
  if (PrintsVerbatim(bad.value)) {
    EXPECT_NE(message.find("got \"" + bad.value + "\""), std::string::npos) << message;
  }
}

class InvalidValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(InvalidValueTest, FlagIsRejectedNamingSettingFlagAndValue) {
  const BadValue& bad = GetParam();
  ExpectRejection(bad, LoadError(std::nullopt, {}, {{bad.name, bad.value}}), Info(bad.name).flag);
}

TEST_P(InvalidValueTest, EnvironmentIsRejectedNamingSettingVariableAndValue) {
  const BadValue& bad = GetParam();
  const std::string& var = Info(bad.name).env;
  ExpectRejection(bad, LoadError(std::nullopt, {{var, bad.value}}, {}), var);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, InvalidValueTest, ::testing::ValuesIn(kBadValues));

TEST_F(ConfigFileTest, InvalidFileValueNamesFileAndLine) {
  const std::string path = WriteToml("[persister]\nbatch_size = 0\n");
  const std::string message = LoadError(path, {}, {});
  EXPECT_NE(message.find("persister.batch_size (from " + path + ":2)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("got 0"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, FileValueOfWrongTypeIsRejected) {
  std::string message = LoadError(WriteToml("[redis]\npool_size = 16.0\n"), {}, {});
  EXPECT_NE(message.find("redis.pool_size"), std::string::npos) << message;
  EXPECT_NE(message.find("a TOML float"), std::string::npos) << message;
  message = LoadError(WriteToml("[log]\nlevel = 3\n"), {}, {});
  EXPECT_NE(message.find("log.level"), std::string::npos) << message;
  EXPECT_NE(message.find("must be a string"), std::string::npos) << message;
}

TEST(ConfigLoadTest, PasswordsInRejectedUrlsAreRedacted) {
  for (const auto* url : {"mysql://app:s3cret@db/x", "host=db password=s3cret dbname=x"}) {
    const std::string message = LoadError(std::nullopt, {}, {{"database.url", url}});
    EXPECT_NE(message.find("database.url"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
    EXPECT_NE(message.find("***"), std::string::npos) << message;
  }
}

// --- Unknown names and unreadable files -----------------------------------------------------

TEST_F(ConfigFileTest, UnknownTomlKeyIsRejected) {
  const std::string path = WriteToml("[redis]\nulr = \"redis://x\"\n");
  EXPECT_NE(LoadError(path, {}, {}).find("unknown setting \"redis.ulr\" in " + path + ":2"),
            std::string::npos)
      << LoadError(path, {}, {});
}

TEST_F(ConfigFileTest, UnknownTomlSectionIsRejected) {
  const std::string path = WriteToml("[redsi]\nurl = \"redis://x\"\n");
  EXPECT_NE(LoadError(path, {}, {}).find("unknown section \"redsi\" in " + path + ":1"),
            std::string::npos)
      << LoadError(path, {}, {});
}

TEST_F(ConfigFileTest, TopLevelTomlKeyIsRejected) {
  const std::string path = WriteToml("url = \"redis://x\"\n");
  EXPECT_NE(LoadError(path, {}, {}).find("unknown setting \"url\" in " + path), std::string::npos)
      << LoadError(path, {}, {});
}

TEST_F(ConfigFileTest, SectionThatIsNotATableIsRejected) {
  const std::string path = WriteToml("redis = \"redis://x\"\n");
  EXPECT_NE(LoadError(path, {}, {}).find("\"redis\" in " + path + ":1 must be a table"),
            std::string::npos)
      << LoadError(path, {}, {});
}

TEST_F(ConfigFileTest, QuotedDottedKeyIsNotASetting) {
  const std::string path = WriteToml("\"redis.url\" = \"redis://x\"\n");
  EXPECT_NE(LoadError(path, {}, {}).find("unknown setting \"redis.url\""), std::string::npos)
      << LoadError(path, {}, {});
}

TEST_F(ConfigFileTest, FirstMistakeInFileOrderIsReported) {
  // [stock] sorts after [server] but comes first in the file.
  const std::string path = WriteToml("[stock]\nabsent_ttl = -1\n[server]\nlisten = 1\n");
  const std::string message = LoadError(path, {}, {});
  EXPECT_NE(message.find("stock.absent_ttl (from " + path + ":2)"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, TomlSyntaxErrorNamesFileAndLine) {
  const std::string path = WriteToml("[redis]\n\npool_size = = 3\n");
  const std::string message = LoadError(path, {}, {});
  EXPECT_NE(message.find(path + ":3:"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, MissingFileIsRejected) {
  const std::string path = (dir_ / "absent.toml").string();
  const std::string message = LoadError(path, {}, {});
  EXPECT_NE(message.find("cannot open config file " + path), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, UnreadableFileIsRejected) {
  const std::string message = LoadError(dir_.string(), {}, {});  // a directory opens, never reads
  EXPECT_NE(message.find("config file " + dir_.string()), std::string::npos) << message;
}

TEST(ConfigLoadTest, UnknownOverrideIsRejected) {
  const std::string message = LoadError(std::nullopt, {}, {{"redis.ulr", "redis://x"}});
  EXPECT_NE(message.find("unknown setting \"redis.ulr\""), std::string::npos) << message;
}

TEST(ConfigLoadTest, UnknownInvsyncVariablesAreIgnored) {
  const Environment env = {{"INVSYNC_TEST_REDIS_URL", "redis://elsewhere"},
                           {"INVSYNC_NO_SUCH_SETTING", "garbage"}};
  EXPECT_EQ(Load(std::nullopt, env, {}), Settings{});
}

// --- server.listen's two variables -------------------------------------------------------------

TEST(ConfigLoadTest, ListenAliasIsAccepted) {
  EXPECT_EQ(Load(std::nullopt, {{"INVSYNC_LISTEN", "0.0.0.0:9000"}}, {}).server_listen,
            "0.0.0.0:9000");
}

TEST(ConfigLoadTest, CanonicalListenVariableIsAccepted) {
  EXPECT_EQ(Load(std::nullopt, {{"INVSYNC_SERVER_LISTEN", "0.0.0.0:9000"}}, {}).server_listen,
            "0.0.0.0:9000");
}

TEST(ConfigLoadTest, AgreeingListenVariablesAreAccepted) {
  const Environment env = {{"INVSYNC_LISTEN", "[::1]:80"}, {"INVSYNC_SERVER_LISTEN", "[::1]:80"}};
  EXPECT_EQ(Load(std::nullopt, env, {}).server_listen, "[::1]:80");
}

TEST(ConfigLoadTest, ConflictingListenVariablesAreRejected) {
  const Environment env = {{"INVSYNC_LISTEN", "[::1]:80"}, {"INVSYNC_SERVER_LISTEN", "[::1]:81"}};
  const std::string message = LoadError(std::nullopt, env, {});
  EXPECT_NE(message.find("INVSYNC_LISTEN=\"[::1]:80\""), std::string::npos) << message;
  EXPECT_NE(message.find("INVSYNC_SERVER_LISTEN=\"[::1]:81\""), std::string::npos) << message;
}

// --- Known settings and the environment ----------------------------------------------------

TEST(KnownSettingsTest, EachSettingHasItsEnvironmentVariableAndFlag) {
  const auto& all = KnownSettings();
  EXPECT_EQ(all.size(), 38U);
  EXPECT_EQ(Info("persister.batch_size").env, "INVSYNC_PERSISTER_BATCH_SIZE");
  EXPECT_EQ(Info("persister.batch_size").flag, "--persister-batch-size");
  EXPECT_EQ(Info("redis.url").flag, "--redis-url");
  EXPECT_EQ(Info("server.listen").env, "INVSYNC_LISTEN");
  EXPECT_TRUE(Info("persister.batch_size").description.ends_with(" (1-100000)"));
  EXPECT_TRUE(Info("stock.fill_wait").description.ends_with(" (10ms-5m)"));
  std::set<std::string> names;
  for (const SettingInfo& info : all) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_FALSE(info.description.empty()) << info.name;
  }
}

// Ties KnownSettings() to Load(): every listed name, variable and flag is the one Load uses.
TEST(KnownSettingsTest, LoadRecognisesEveryListedName) {
  for (const SettingInfo& info : KnownSettings()) {
    const std::string junk = "\x01";
    const std::string from_flag = LoadError(std::nullopt, {}, {{info.name, junk}});
    EXPECT_TRUE(from_flag.starts_with(info.name + " (from " + info.flag + ")")) << from_flag;
    const std::string from_env = LoadError(std::nullopt, {{info.env, junk}}, {});
    EXPECT_TRUE(from_env.starts_with(info.name + " (from " + info.env + ")")) << from_env;
  }
}

// NOLINTBEGIN(concurrency-mt-unsafe): no other thread runs while this test edits the environment.
TEST(CurrentEnvironmentTest, ReadsOnlyInvsyncVariables) {
  ASSERT_EQ(::setenv("INVSYNC_TEST_CONFIG_PROBE", "a=b", 1), 0);
  ASSERT_EQ(::setenv("NOT_INVSYNC_CONFIG_PROBE", "x", 1), 0);
  const Environment env = CurrentEnvironment();
  EXPECT_EQ(::unsetenv("INVSYNC_TEST_CONFIG_PROBE"), 0);
  EXPECT_EQ(::unsetenv("NOT_INVSYNC_CONFIG_PROBE"), 0);
  ASSERT_EQ(env.count("INVSYNC_TEST_CONFIG_PROBE"), 1U);
  EXPECT_EQ(env.at("INVSYNC_TEST_CONFIG_PROBE"), "a=b");
  for (const auto& [name, value] : env) {
    EXPECT_TRUE(name.starts_with("INVSYNC_")) << name;
  }
}
// NOLINTEND(concurrency-mt-unsafe)

// --- ParseDuration -------------------------------------------------------------------------

struct GoodDuration {
  std::string text;
  milliseconds expected;
};

void PrintTo(const GoodDuration& good, std::ostream* out) { *out << '"' << good.text << '"'; }

class ParseDurationAcceptsTest : public ::testing::TestWithParam<GoodDuration> {};

TEST_P(ParseDurationAcceptsTest, GivesMilliseconds) {
  EXPECT_EQ(ParseDuration(GetParam().text), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Units, ParseDurationAcceptsTest,
                         ::testing::Values(GoodDuration{"0", 0ms}, GoodDuration{"250", 250ms},
                                           GoodDuration{"250ms", 250ms}, GoodDuration{"2s", 2s},
                                           GoodDuration{"5m", 5min}, GoodDuration{"3h", 3h},
                                           GoodDuration{"7d", std::chrono::hours(24 * 7)},
                                           GoodDuration{"0s", 0ms}, GoodDuration{"007s", 7s},
                                           GoodDuration{"9223372036854775807", milliseconds::max()},
                                           GoodDuration{"106751991167d",
                                                        std::chrono::hours(24 * 106751991167)}));

class ParseDurationRejectsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseDurationRejectsTest, GivesNullopt) {
  EXPECT_EQ(ParseDuration(GetParam()), std::nullopt);
}

INSTANTIATE_TEST_SUITE_P(Malformed, ParseDurationRejectsTest,
                         ::testing::Values("", "-1", "-5s", "+5s", "1.5s", "5 s", " 5s", "5s ",
                                           "5sec", "5S", "s", "ms", "5us", "5ms5", "1s500ms",
                                           "0x10", "9223372036854775808", "9223372036854775807s",
                                           "106751991168d"));

}  // namespace
}  // namespace invsync::config
