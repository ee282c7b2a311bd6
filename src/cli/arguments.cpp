#include "cli/arguments.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>

#include "cli/commands.hpp"
#include "common/numbers.hpp"

namespace invsync::cli {

namespace {

void AddCommands(CLI::App& app, Arguments& args) {
  auto* serve = app.add_subcommand(
      "serve", "Run the service: migrate, persist events, sync database changes, serve HTTP");
  serve->add_flag("--demo", args.demo,
                  "Load a small demo catalogue (SKU-1 ... SKU-12) if the catalogue is empty");
  app.add_subcommand("persist",
                     "Run only the persister: drain the Redis event stream into the "
                     "database");
  app.add_subcommand("sync",
                     "Run only the syncer: apply database-side changes (the outbox) to Redis");
  auto* reconcile = app.add_subcommand(
      "reconcile", "Compare Redis with the database, adjusted for changes in flight");
  reconcile->add_flag("--repair", args.repair,
                      "Fix drifted keys in Redis (compare-and-set: concurrent orders are kept)");
  reconcile->add_flag("--reset-cursor", args.reset_cursor,
                      "With --repair: first move the syncer's cursor to the database's present "
                      "position (after a restore or a move to another cluster; see `status`)");
  app.add_subcommand("migrate", "Apply the database schema migrations");
  app.add_subcommand("hash-token",
                     "Print the SHA-256 of an access token read from standard input (for the "
                     "config file's [[tokens]])");
  app.add_subcommand("status",
                     "Show Redis and database health, persister and syncer lag, last reconcile");
  auto* get = app.add_subcommand("get", "Show the stock of one or more SKUs");
  get->add_option("SKU", args.skus, "SKUs to show")->required();
  auto* warm = app.add_subcommand(
      "warm", "Load stock from the database into Redis, never overwriting a cached SKU");
  warm->add_flag("--all", args.all, "every SKU in the database");
  warm->add_option("SKU", args.skus, "SKUs to load");
  auto* deduct = app.add_subcommand("deduct", "Deduct an order, all lines or none");
  deduct->add_option("ORDER", args.order_id, "order id (replaying it changes nothing)")->required();
  deduct->add_option("LINES", args.lines, "lines as SKU:QTY")->required();
  auto* cancel = app.add_subcommand("cancel", "Cancel an order and return its stock");
  cancel->add_option("ORDER", args.order_id, "order id")->required();
  auto* order = app.add_subcommand("order", "Show an order");
  order->add_option("ORDER", args.order_id, "order id")->required();
  for (const char* name : {"restock", "set"}) {
    auto* command = app.add_subcommand(name, std::string(name) == "set"
                                                 ? "Set a SKU's stock (creates the SKU if new)"
                                                 : "Add stock to a SKU");
    command->add_option("SKU", args.sku, "SKU")->required();
    command->add_option("QTY", args.quantity, "quantity")->required();
    command->add_option("--request-id", args.request_id,
                        "idempotency key: repeating it changes nothing (default: random)");
  }
}

}  // namespace

std::variant<Arguments, int> ParseArguments(int argc, const char* const* argv, std::ostream& out,
                                            std::ostream& err) {
  CLI::App app{"invsync: stock counts in Redis for speed and in PostgreSQL for truth"};
  app.require_subcommand(1, 1);
  app.fallthrough();
  Arguments args;
  app.add_option("--config", args.config_path, "TOML configuration file")
      ->envname("INVSYNC_CONFIG");
  app.add_flag("--json", args.json, "Print one JSON document instead of text");
  CLI::Option* server_listen = nullptr;
  for (const auto& setting : config::KnownSettings()) {
    auto* option = app.add_option_function<std::string>(
                          setting.flag,
                          [&args, name = setting.name](const std::string& value) {
                            args.overrides[name] = value;
                          },
                          setting.description)
                       ->type_name("VALUE")
                       ->group("Settings (also INVSYNC_* variables and the config file)");
    if (setting.name == "server.listen") {
      server_listen = option;
    }
  }
  auto* listen =
      app.add_option_function<std::string>(
             "--listen",
             [&args](const std::string& value) { args.overrides["server.listen"] = value; },
             "HTTP address HOST:PORT (port 0 picks a free one); same as --server-listen")
          ->type_name("HOST:PORT");
  if (server_listen != nullptr) {
    listen->excludes(server_listen);  // one setting: given twice, which would win is a guess
  }
  AddCommands(app, args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) {  // --help, --version
      app.exit(error, out, err);
      return kExitOk;
    }
    // One line like every other error (CLI11's own message takes two), as a document with --json.
    const std::string message = fmt::format("{} (see invsync --help)", error.what());
    const std::span<const char* const> given(argv + 1,
                                             static_cast<std::size_t>(std::max(0, argc - 1)));
    if (std::any_of(given.begin(), given.end(),
                    [](const char* arg) { return std::string_view(arg) == "--json"; })) {
      out << nlohmann::json{{"error", {{"code", "invalid_argument"}, {"message", message}}}}.dump(
                 -1, ' ', false, nlohmann::json::error_handler_t::replace)
          << '\n';
    } else {
      err << "invsync: " << message << '\n';
    }
    return kExitUsage;
  }
  args.command = app.get_subcommands().front()->get_name();
  return args;
}

std::optional<std::int64_t> ParseQuantity(const std::string& text) { return ParseInt64(text); }

std::optional<core::Line> ParseOrderLine(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return std::nullopt;
  }
  auto quantity = ParseQuantity(text.substr(colon + 1));
  if (!quantity) {
    return std::nullopt;
  }
  return core::Line{text.substr(0, colon), *quantity};
}

}  // namespace invsync::cli
