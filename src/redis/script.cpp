#include "redis/script.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>

#include "common/error.hpp"

namespace invsync::redis {

namespace {

std::string Sha1Hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) {
    throw PermanentError("cannot compute a script's SHA-1");
  }
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

}  // namespace

Args ScriptArgs(std::string_view command, std::string_view sha_or_source, const ScriptCall& call,
                const std::string& key_count) {
  Args args;
  args.reserve(3 + call.keys.size() + call.args.size());
  args.emplace_back(command);
  args.emplace_back(sha_or_source);
  args.emplace_back(key_count);
  for (const auto& key : call.keys) {
    args.emplace_back(key);
  }
  for (const auto& arg : call.args) {
    args.emplace_back(arg);
  }
  return args;
}

bool IsNoScript(const Value& reply) { return reply.IsError() && reply.str.starts_with("NOSCRIPT"); }

Script::Script(std::string name, std::string_view source)
    : name_(std::move(name)), source_(source), sha_(Sha1Hex(source)) {}

void Script::Load(Connection& connection) const {
  Value reply = connection.Command({"SCRIPT", "LOAD", source_});
  if (reply.AsString() != sha_) {
    throw PermanentError(
        fmt::format("Redis loaded script {} as {}, expected {}", name_, reply.AsString(), sha_));
  }
}

Value Script::Run(Connection& connection, const ScriptCall& call) const {
  const std::string key_count = std::to_string(call.keys.size());
  try {
    return connection.Command(ScriptArgs("EVALSHA", sha_, call, key_count));
  } catch (const NoScriptError&) {
    Load(connection);
    return connection.Command(ScriptArgs("EVALSHA", sha_, call, key_count));
  }
}

std::vector<Value> Script::RunMany(Connection& connection,
                                   const std::vector<ScriptCall>& calls) const {
  std::vector<std::string> key_counts;
  key_counts.reserve(calls.size());
  std::vector<Args> commands;
  commands.reserve(calls.size());
  for (const auto& call : calls) {
    key_counts.push_back(std::to_string(call.keys.size()));
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    commands.push_back(ScriptArgs("EVALSHA", sha_, calls[i], key_counts[i]));
  }
  std::vector<Value> replies = connection.Pipeline(commands);
  bool missing = false;
  for (const auto& reply : replies) {
    missing = missing || IsNoScript(reply);
  }
  if (missing) {
    // Only the calls that answered NOSCRIPT did not run; run just those again.
    Load(connection);
    for (std::size_t i = 0; i < replies.size(); ++i) {
      if (IsNoScript(replies[i])) {
        replies[i] = connection.Pipeline({commands[i]}).front();
      }
    }
  }
  return replies;
}

}  // namespace invsync::redis
