#include "bench_support.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "db/detail/pg.hpp"
#include "db/postgres_store.hpp"
#include "db/sqlite_store.hpp"

namespace invsync::bench {

namespace {

std::string FromEnv(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start-up, before any thread exists.
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') {
      return value;
    }
  }
  return {};
}

// The value of `field:` in an INFO section ("used_cpu_user:1.234"), 0 if absent.
double InfoField(std::string_view info, std::string_view field) {
  std::string needle = fmt::format("{}:", field);
  auto at = info.find(needle);
  if (at == std::string_view::npos) {
    return 0;
  }
  auto start = at + needle.size();
  auto end = info.find_first_of("\r\n", start);
  return std::strtod(std::string(info.substr(start, end - start)).c_str(), nullptr);
}

}  // namespace

void Flags::Add(std::string name, std::string default_value, std::string description) {
  order_.push_back(name);
  flags_[std::move(name)] = {std::move(default_value), std::move(description)};
}

bool Flags::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << fmt::format("Usage: {} [FLAGS]\n{}\n\n", program_, summary_);
      for (const auto& name : order_) {
        const auto& flag = flags_.at(name);
        std::cout << fmt::format("  --{:<14} {} (default: {})\n", name, flag.description,
                                 flag.value.empty() ? "none" : flag.value);
      }
      return false;
    }
    if (!arg.starts_with("--")) {
      throw std::invalid_argument(fmt::format("unexpected argument \"{}\" (try --help)", arg));
    }
    arg.remove_prefix(2);
    std::string name(arg.substr(0, arg.find('=')));
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      throw std::invalid_argument(fmt::format("unknown flag --{} (try --help)", name));
    }
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      it->second.value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      it->second.value = argv[++i];
    } else {
      throw std::invalid_argument(fmt::format("flag --{} needs a value", name));
    }
  }
  return true;
}

std::string Flags::String(const std::string& name) const { return flags_.at(name).value; }

std::int64_t Flags::Int(const std::string& name, std::int64_t low, std::int64_t high) const {
  std::string text = String(name);
  text.erase(std::remove(text.begin(), text.end(), '_'), text.end());  // 1_000_000
  auto value = ParseInt64(text);
  if (!value || *value < low || *value > high) {
    throw std::invalid_argument(
        fmt::format("--{} must be a whole number {}..{} (got \"{}\")", name, low, high, text));
  }
  return *value;
}

double Flags::Seconds(const std::string& name) const {
  std::string text = String(name);
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) || value < 0 ||
      value > 86400) {
    throw std::invalid_argument(
        fmt::format("--{} must be seconds, 0..86400 (got \"{}\")", name, text));
  }
  return value;
}

void AddServerFlags(Flags& flags) {
  flags.Add("redis-url", "", "Redis URL (default: $INVSYNC_TEST_REDIS_URL, $INVSYNC_REDIS_URL)");
  flags.Add("database-url", "",
            "postgresql:// or sqlite:// URL (default: $INVSYNC_TEST_DATABASE_URL, "
            "$INVSYNC_DATABASE_URL)");
}

Servers ResolveServers(const Flags& flags) {
  Servers servers{flags.String("redis-url"), flags.String("database-url")};
  if (servers.redis_url.empty()) {
    servers.redis_url = FromEnv({"INVSYNC_TEST_REDIS_URL", "INVSYNC_REDIS_URL"});
  }
  if (servers.database_url.empty()) {
    servers.database_url = FromEnv({"INVSYNC_TEST_DATABASE_URL", "INVSYNC_DATABASE_URL"});
  }
  if (servers.redis_url.empty() || servers.database_url.empty()) {
    throw std::invalid_argument(
        "no servers: pass --redis-url and --database-url, or run under scripts/with-services");
  }
  return servers;
}

void ResetState(const Servers& servers) {
  redis::Connection redis(redis::Endpoint::Parse(servers.redis_url), std::chrono::seconds(30));
  redis.Command({"FLUSHALL"});
  if (IsSqliteUrl(servers.database_url)) {
    const std::string path = SqlitePath(servers.database_url);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path + suffix);
    }
  } else {
    {
      db::detail::PgConnection pg(servers.database_url);
      pg.ExecScript(
          "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA "
          "public;");
    }
    Checkpoint(servers.database_url);
  }
  db::OpenStore(servers.database_url, 1)->Migrate();
}

bool IsSqliteUrl(const std::string& database_url) { return database_url.starts_with("sqlite://"); }

std::string SqlitePath(const std::string& database_url) {
  return database_url.substr(std::string_view("sqlite://").size());
}

void Checkpoint(const std::string& database_url) {
  db::detail::PgConnection pg(database_url);
  try {
    pg.ExecScript("CHECKPOINT");
  } catch (const PermanentError&) {
    // Needs a superuser or pg_checkpoint; without it runs are only a little noisier.
  }
}

void CompactAof(redis::Connection& connection) {
  auto persistence = [&] { return connection.Command({"INFO", "persistence"}).AsString(); };
  auto busy = [](const std::string& info) {
    return InfoField(info, "aof_rewrite_in_progress") > 0 ||
           InfoField(info, "aof_rewrite_scheduled") > 0;
  };
  std::string info = persistence();
  if (InfoField(info, "aof_enabled") == 0) {
    return;
  }
  // A rewrite already running started from older data: let it finish, then start ours.
  for (int round = 0; round < 2; ++round) {
    while (busy(info)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      info = persistence();
    }
    if (round == 0) {
      connection.Command({"BGREWRITEAOF"});
      info = persistence();
    }
  }
}

std::int64_t AofRewrites(redis::Connection& connection) {
  return static_cast<std::int64_t>(
      InfoField(connection.Command({"INFO", "persistence"}).AsString(), "aof_rewrites"));
}

double RedisCpuSeconds(redis::Connection& connection) {
  const std::string info = connection.Command({"INFO", "cpu"}).AsString();
  return InfoField(info, "used_cpu_user") + InfoField(info, "used_cpu_sys");
}

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double Median(std::vector<double> values) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::int64_t Quantile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) {
    return 0;
  }
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

void Check::Expect(bool condition, std::string what) {
  ok = ok && condition;
  lines.push_back(fmt::format("{} {}", condition ? "ok    " : "FAILED", what));
}

int Main(std::string_view program, const std::function<int()>& run) {
  try {
    return run();
  } catch (const std::invalid_argument& error) {
    std::cerr << program << ": " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << program << ": " << error.what() << '\n';
    return 1;
  }
}

void WriteJson(const std::string& path, const nlohmann::json& document) {
  std::ofstream out(path);
  out << document.dump(2) << '\n';
  if (!out) {
    throw std::runtime_error(fmt::format("cannot write {}", path));
  }
}

}  // namespace invsync::bench
