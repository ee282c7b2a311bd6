#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "core/types.hpp"

namespace invsync::cli {

/// The command line of `invsync`, parsed: the subcommand and what it was given. Nothing is
/// checked beyond the command line's shape; settings are validated by `config::Load`, SKUs, ids
/// and quantities by the command (the stock service's rules).
struct Arguments {
  std::string command;  ///< "serve", "get", "deduct", ...
  std::optional<std::string> config_path;
  bool json = false;
  config::Overrides overrides;  ///< settings given as flags, by dotted name
  std::vector<std::string> skus;
  std::string order_id;
  std::vector<std::string> lines;  ///< deduct: "SKU:QTY" each
  std::string sku;
  std::string quantity;  ///< restock and set, as typed
  std::optional<std::string> request_id;
  bool repair = false;
  bool reset_cursor = false;
  bool demo = false;
  bool all = false;
};

/// Parses `invsync`'s arguments (argv[0] is the program name). Returns the arguments, or the
/// exit code when the parse ends the program: 0 after `--help` (printed to `out`), 2
/// (`kExitUsage`) for a bad command line (the error and a hint printed to `err`).
[[nodiscard]] std::variant<Arguments, int> ParseArguments(int argc, const char* const* argv,
                                                          std::ostream& out, std::ostream& err);

/// A whole base-10 quantity as typed on the command line; nullopt for anything else.
[[nodiscard]] std::optional<std::int64_t> ParseQuantity(const std::string& text);

/// An order line "SKU:QTY", split at the last ':' (SKUs may contain ':'); nullopt if there is no
/// ':' or the quantity is not a whole number. The SKU and quantity are not validated here.
[[nodiscard]] std::optional<core::Line> ParseOrderLine(const std::string& text);

}  // namespace invsync::cli
