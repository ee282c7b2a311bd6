// invsync: wiring only. Parses the command line and configuration, builds the parts and hands
// them to the command that was asked for.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>
#include <variant>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/managed_redis.hpp"
#include "cli/progress.hpp"
#include "common/error.hpp"
#include "config/config.hpp"
#include "core/stock_service.hpp"
#include "db/sqlite_store.hpp"
#include "redis/client.hpp"

namespace {

using namespace invsync;

// Blocks SIGINT/SIGTERM for every thread and turns them into a stop request.
class SignalStop {
 public:
  SignalStop() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    waiter_ = std::jthread([this](const std::stop_token& done) {
      const timespec tick{0, 200'000'000};
      while (!done.stop_requested()) {
        if (sigtimedwait(&signals_, nullptr, &tick) > 0) {
          spdlog::info("stopping: finishing the batch in hand");
          source_.request_stop();
          return;
        }
      }
    });
  }
  [[nodiscard]] std::stop_token token() const { return source_.get_token(); }

 private:
  sigset_t signals_{};
  std::stop_source source_;
  std::jthread waiter_;
};

// At service start the database or Redis may still be coming up: a step that needs one (the
// migrations, the demo catalogue) is retried for a while.
void RetryAtStart(std::string_view doing, const std::function<void()>& step,
                  const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (true) {
    try {
      step();
      return;
    } catch (const TransientError& error) {
      if (stop.stop_requested() || std::chrono::steady_clock::now() > deadline) {
        throw;
      }
      spdlog::warn("{}: {}; retrying", doing, error.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

// Only the service's commands create a SQLite file: for the others a mistyped path is an error,
// not a new empty database. A file the service would create needs its directory (the data
// directory, created below, for the default one): waiting would not make a mistyped one appear.
void CheckSqlitePath(const std::string& database_url, bool explicit_url, bool runs_service) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (!database_url.starts_with(kSqlite)) {
    return;
  }
  const std::filesystem::path file = database_url.substr(kSqlite.size());
  std::error_code error;
  if (!runs_service && !std::filesystem::exists(file, error)) {
    if (!explicit_url) {
      throw ConfigError(fmt::format(
          "database.url is not set and there is no embedded database at {}: run `invsync "
          "serve` first, or set database.url (and data.dir)",
          file.string()));
    }
    throw ConfigError(fmt::format(
        "database.url: there is no SQLite database at {} (`invsync migrate` or `invsync "
        "serve` creates one)",
        file.string()));
  }
  const std::filesystem::path directory = file.has_parent_path() ? file.parent_path() : ".";
  if (runs_service && explicit_url && !std::filesystem::is_directory(directory, error)) {
    throw ConfigError(fmt::format(
        "database.url: {} is not a directory, so the SQLite database {} cannot be created there "
        "(create the directory, or fix the path)",
        directory.string(), file.string()));
  }
}

// A failure no command reported itself: one line on standard error, or the error document on
// standard output with --json (as the commands' own errors).
int Fail(const cli::Output& output, int exit_code, std::string_view code, std::string_view kind,
         std::string_view message) {
  if (output.json) {
    output.out << nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(
                      -1, ' ', false, nlohmann::json::error_handler_t::replace)
               << '\n';
  } else {
    output.err << "invsync: " << kind << ": " << message << '\n';
  }
  return exit_code;
}

// A data directory that cannot be made is the configuration's fault (one line, exit 2), not an
// internal error.
void CreateDataDir(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw ConfigError(fmt::format("data.dir: cannot create {}: {}", dir, error.message()));
  }
}

int Dispatch(const cli::Arguments& args, cli::Parts& parts, const cli::Output& output) {
  const std::string& command = args.command;
  if (command == "serve" || command == "persist" || command == "sync") {
    SignalStop signal_stop;
    if (command == "persist") {
      return cli::Persist(parts, signal_stop.token(), output);
    }
    if (command == "sync") {
      return cli::Sync(parts, signal_stop.token(), output);
    }
    RetryAtStart(
        "migrating the database", [&] { parts.store->Migrate(); }, signal_stop.token());
    bool demo = false;
    RetryAtStart(
        "reading the catalogue", [&] { demo = cli::WantsDemo(parts, args.demo); },
        signal_stop.token());
    if (demo) {
      RetryAtStart(
          "loading the demo catalogue", [&] { cli::LoadDemo(parts); }, signal_stop.token());
    }
    return cli::Serve(parts, signal_stop.token(), output);
  }
  if (command == "hash-token") {
    return cli::HashToken(std::cin, output);
  }
  if (command == "reconcile") {
    return cli::Reconcile(parts, args.repair, args.reset_cursor, output);
  }
  if (command == "migrate") {
    return cli::Migrate(parts, output);
  }
  if (command == "status") {
    return cli::Status(parts, output);
  }
  if (command == "get") {
    return cli::Get(parts, args.skus, output);
  }
  if (command == "warm") {
    return cli::Warm(parts, args.all, args.skus, output);
  }
  if (command == "deduct") {
    return cli::Deduct(parts, args.order_id, args.lines, output);
  }
  if (command == "cancel") {
    return cli::Cancel(parts, args.order_id, output);
  }
  if (command == "order") {
    return cli::ShowOrder(parts, args.order_id, output);
  }
  if (command == "restock") {
    return cli::Restock(parts, args.sku, args.quantity, args.request_id, output);
  }
  return cli::Set(parts, args.sku, args.quantity, args.request_id, output);
}

int Run(int argc, char** argv) {
  // A peer that went away must fail the write, not end the process (hiredis writes with write(2)).
  std::signal(SIGPIPE, SIG_IGN);
  auto parsed = cli::ParseArguments(argc, argv, std::cout, std::cerr);
  if (const int* exit_code = std::get_if<int>(&parsed)) {
    return *exit_code;
  }
  const cli::Arguments& args = std::get<cli::Arguments>(parsed);
  const cli::Output output{args.json, std::cout, std::cerr, cli::IsTerminal(STDERR_FILENO)};
  try {
    cli::Parts parts{
        .settings = config::Load(args.config_path, config::CurrentEnvironment(), args.overrides)};
    const auto& settings = parts.settings;
    spdlog::set_default_logger(spdlog::stderr_color_mt("invsync"));
    spdlog::set_level(spdlog::level::from_str(settings.log_level));
    const std::string& command = args.command;
    const bool runs_service =
        command == "serve" || command == "persist" || command == "sync" || command == "migrate";
    const bool needs_data_dir = config::ManagesRedis(settings) || settings.database_url.empty();
    const std::string database_url = config::EffectiveDatabaseUrl(settings);
    CheckSqlitePath(database_url, !settings.database_url.empty(), runs_service);
    if (runs_service && needs_data_dir) {
      CreateDataDir(settings.data_dir);
    }
    std::optional<cli::ManagedRedis> managed_redis;
    if (config::ManagesRedis(settings) && command == "serve") {
      managed_redis.emplace(settings.data_dir);
      managed_redis->Start();
    }
    redis::Pool redis(redis::Endpoint::Parse(config::EffectiveRedisUrl(settings)),
                      static_cast<std::size_t>(settings.redis_pool_size), settings.redis_timeout);
    auto store = db::OpenStore(
        database_url,
        // Persisters each hold a connection per batch, the syncer one; readers keep theirs.
        static_cast<std::size_t>(settings.database_pool_size + settings.persister_threads + 1));
    core::StockOptions options{.limits = {.max_line_quantity = settings.stock_max_line_quantity,
                                          .max_order_lines = settings.stock_max_order_lines},
                               .idempotency_retention = settings.stock_idempotency_retention,
                               .fill = {.absent_ttl = settings.stock_absent_ttl,
                                        .lock_ttl = settings.stock_fill_lock_ttl,
                                        .wait = settings.stock_fill_wait}};
    core::StockService stock(redis, *store, core::Keys(settings.redis_key_prefix), options);
    parts.redis = &redis;
    parts.store = store.get();
    parts.stock = &stock;
    return Dispatch(args, parts, output);
  } catch (const ConfigError& error) {
    return Fail(output, cli::kExitUsage, "invalid_configuration", "configuration", error.what());
  } catch (const Error& error) {
    return Fail(output, cli::kExitUnavailable, "unavailable", "unavailable", error.what());
  } catch (const std::exception& error) {
    return Fail(output, cli::kExitInternal, "internal", "internal error", error.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (...) {
    // Run reports every failure itself; this only keeps an escaping exception from aborting.
    return cli::kExitInternal;
  }
}
