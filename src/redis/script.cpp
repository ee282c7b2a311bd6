#include "redis/script.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

namespace invsync::redis {

namespace {

Args EvalShaArgs(const std::string& sha, const ScriptCall& call, const std::string& key_count) {
  Args args;
  args.reserve(3 + call.keys.size() + call.args.size());
  args.emplace_back("EVALSHA");
  args.emplace_back(sha);
  args.emplace_back(key_count);
  for (const auto& key : call.keys) {
    args.emplace_back(key);
  }
  for (const auto& arg : call.args) {
    args.emplace_back(arg);
  }
  return args;
}

bool IsNoScript(const Value& value) { return value.IsError() && value.str.starts_with("NOSCRIPT"); }

}  // namespace

std::string Script::Sha(Connection& connection) {
  {
    std::lock_guard lock(mutex_);
    if (!sha_.empty()) {
      return sha_;
    }
  }
  return Load(connection);
}

std::string Script::Load(Connection& connection) {
  Value reply = connection.Command({"SCRIPT", "LOAD", source_});
  std::lock_guard lock(mutex_);
  sha_ = reply.AsString();
  return sha_;
}

Value Script::Run(Connection& connection, const ScriptCall& call) {
  std::string key_count = std::to_string(call.keys.size());
  std::string sha = Sha(connection);
  try {
    return connection.Command(EvalShaArgs(sha, call, key_count));
  } catch (const NoScriptError&) {
    sha = Load(connection);
    return connection.Command(EvalShaArgs(sha, call, key_count));
  }
}

std::vector<Value> Script::RunMany(Connection& connection, const std::vector<ScriptCall>& calls) {
  std::string sha = Sha(connection);
  std::vector<std::string> key_counts;
  key_counts.reserve(calls.size());
  std::vector<Args> commands;
  commands.reserve(calls.size());
  for (const auto& call : calls) {
    key_counts.push_back(std::to_string(call.keys.size()));
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    commands.push_back(EvalShaArgs(sha, calls[i], key_counts[i]));
  }
  std::vector<Value> replies = connection.Pipeline(commands);
  bool missing = false;
  for (const auto& reply : replies) {
    missing = missing || IsNoScript(reply);
  }
  if (missing) {
    // Only the calls that answered NOSCRIPT did not run; run just those again.
    sha = Load(connection);
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (IsNoScript(replies[i])) {
        replies[i] = connection.Pipeline({EvalShaArgs(sha, calls[i], key_counts[i])}).front();
      }
    }
  }
  return replies;
}

}  // namespace invsync::redis
