#pragma once

#include <mutex>
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

/// A Lua script run with EVALSHA. The script is loaded on first use and again whenever the server
/// answers NOSCRIPT (after a restart or SCRIPT FLUSH), so callers never see that error.
class Script {
 public:
  Script(std::string name, std::string_view source) : name_(std::move(name)), source_(source) {}

  /// Runs the script once. Error replies throw (see `ThrowIfError`).
  Value Run(Connection& connection, const ScriptCall& call);
  /// Runs several calls in one round trip; replies are in call order, errors returned as values.
  std::vector<Value> RunMany(Connection& connection, const std::vector<ScriptCall>& calls);

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string_view source() const { return source_; }

 private:
  std::string Sha(Connection& connection);
  std::string Load(Connection& connection);

  std::string name_;
  std::string_view source_;
  std::mutex mutex_;
  std::string sha_;
};

}  // namespace invsync::redis
