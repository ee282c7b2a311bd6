#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "redis/client.hpp"

namespace invsync::redis {

/// One call of a script: its keys and arguments.
struct ScriptCall {
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

/// The arguments of `EVALSHA <sha> ...` or `EVAL <source> ...` for one call; `key_count` is
/// `std::to_string(call.keys.size())`. All views point into the arguments.
[[nodiscard]] Args ScriptArgs(std::string_view command, std::string_view sha_or_source,
                              const ScriptCall& call, const std::string& key_count);

/// True for a `NOSCRIPT` error reply (the server does not have the script: after a restart or a
/// SCRIPT FLUSH); the call did not run.
[[nodiscard]] bool IsNoScript(const Value& reply);

/// A Lua script run with EVALSHA. Its SHA-1 is computed here, so a call needs no prior SCRIPT
/// LOAD; the script is loaded whenever the server answers NOSCRIPT (after a restart or SCRIPT
/// FLUSH) and the call run again, so callers never see that error.
class Script {
 public:
  Script(std::string name, std::string_view source);

  /// Runs the script once. Error replies throw (see `ThrowIfError`).
  Value Run(Connection& connection, const ScriptCall& call) const;
  /// Runs several calls in one round trip; replies are in call order, errors returned as values.
  std::vector<Value> RunMany(Connection& connection, const std::vector<ScriptCall>& calls) const;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string_view source() const { return source_; }
  /// Lower-case hex SHA-1 of the source: the name Redis knows the script by.
  [[nodiscard]] const std::string& sha() const { return sha_; }

 private:
  void Load(Connection& connection) const;

  std::string name_;
  std::string_view source_;
  std::string sha_;
};

}  // namespace invsync::redis
