// argv vectors → the `invsync` command-line parser (`cli::ParseArguments`), then everything the
// program checks before it would connect anywhere: the settings given as flags
// (`config::Load`), order lines "SKU:QTY", quantities and the identifier rules. No command runs.
// The input is the arguments separated by NUL bytes.
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "common/error.hpp"
#include "config/config.hpp"
#include "core/validation.hpp"

namespace {

using namespace invsync;

constexpr std::size_t kMaxArguments = 24;

void Require(bool condition) {
  if (!condition) {
    std::abort();
  }
}

std::vector<std::string> SplitArguments(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"invsync"};
  std::string current;
  for (std::size_t i = 0; i < size && args.size() < kMaxArguments; ++i) {
    if (data[i] == 0) {
      args.push_back(std::move(current));
      current.clear();
    } else {
      current += static_cast<char>(data[i]);
    }
  }
  if (!current.empty() && args.size() < kMaxArguments) {
    args.push_back(std::move(current));
  }
  return args;
}

void CheckOrderLines(const cli::Arguments& args) {
  std::vector<core::Line> lines;
  for (const auto& text : args.lines) {
    auto line = cli::ParseOrderLine(text);
    if (!line) {
      continue;
    }
    // Splitting at the last ':' and joining again gives the line back.
    auto again = cli::ParseOrderLine(fmt::format("{}:{}", line->sku, line->quantity));
    Require(again && *again == *line);
    lines.push_back(std::move(*line));
  }
  std::ignore = core::CheckOrder(args.order_id, lines, core::Limits{});
}

void CheckCommand(const cli::Arguments& args) {
  try {
    std::ignore = config::Load(std::nullopt, {}, args.overrides);
  } catch (const ConfigError&) {
    // A bad setting flag: exit 2 with the setting named.
  }
  if (args.command == "deduct") {
    CheckOrderLines(args);
  } else if (args.command == "restock" || args.command == "set") {
    if (auto quantity = cli::ParseQuantity(args.quantity)) {
      std::ignore = args.command == "set"
                        ? core::CheckSet(args.sku, *quantity, args.request_id.value_or("r"))
                        : core::CheckRestock(args.sku, *quantity, args.request_id.value_or("r"));
    }
  } else if (args.command == "cancel" || args.command == "order") {
    std::ignore = core::CheckOrderId(args.order_id);
  } else {
    for (const auto& sku : args.skus) {
      std::ignore = core::CheckSku(sku);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> args = SplitArguments(data, size);
  std::vector<const char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& arg : args) {
    argv.push_back(arg.c_str());
  }
  argv.push_back(nullptr);
  std::ostream discard(nullptr);
  auto parsed = cli::ParseArguments(static_cast<int>(args.size()), argv.data(), discard, discard);
  if (const int* exit_code = std::get_if<int>(&parsed)) {
    Require(*exit_code == cli::kExitOk || *exit_code == cli::kExitUsage);
    return 0;
  }
  const auto& arguments = std::get<cli::Arguments>(parsed);
  Require(!arguments.command.empty());
  CheckCommand(arguments);
  return 0;
}
