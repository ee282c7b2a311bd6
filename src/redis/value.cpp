#include "redis/value.hpp"

#include <fmt/format.h>

#include <array>

#include "common/error.hpp"
#include "common/numbers.hpp"

namespace invsync::redis {

namespace {

[[noreturn]] void Unexpected(const Value& value, std::string_view wanted) {
  throw PermanentError(
      fmt::format("unexpected Redis reply: wanted {}, got {}", wanted, value.Describe()));
}

}  // namespace

std::int64_t Value::AsInteger() const {
  if (type != Type::kInteger) {
    Unexpected(*this, "an integer");
  }
  return integer;
}

const std::string& Value::AsString() const {
  if (type != Type::kString && type != Type::kStatus) {
    Unexpected(*this, "a string");
  }
  return str;
}

const std::vector<Value>& Value::AsArray() const {
  if (type != Type::kArray) {
    Unexpected(*this, "an array");
  }
  return elements;
}

std::optional<std::string> Value::AsOptionalString() const {
  if (type == Type::kNil) {
    return std::nullopt;
  }
  return AsString();
}

std::optional<std::int64_t> Value::AsOptionalInteger() const {
  switch (type) {
    case Type::kNil:
      return std::nullopt;
    case Type::kInteger:
      return integer;
    case Type::kString: {
      auto parsed = ParseInt64(str);
      if (!parsed) {
        Unexpected(*this, "a whole number");
      }
      return parsed;
    }
    default:
      Unexpected(*this, "an integer or nil");
  }
}

const Value& Value::At(std::size_t i) const {
  const auto& array = AsArray();
  if (i >= array.size()) {
    Unexpected(*this, fmt::format("an array of at least {} elements", i + 1));
  }
  return array[i];
}

std::string Value::Describe() const {
  constexpr std::size_t kMaxText = 120;
  auto clip = [](const std::string& text) {
    return text.size() <= kMaxText ? text : text.substr(0, kMaxText) + "...";
  };
  switch (type) {
    case Type::kNil:
      return "nil";
    case Type::kInteger:
      return fmt::format("integer {}", integer);
    case Type::kString:
      return fmt::format("string \"{}\"", clip(str));
    case Type::kStatus:
      return fmt::format("status {}", clip(str));
    case Type::kError:
      return fmt::format("error \"{}\"", clip(str));
    case Type::kArray:
      return fmt::format("array of {}", elements.size());
  }
  return "unknown";
}

void ThrowIfError(const Value& value, std::string_view command) {
  if (value.type != Value::Type::kError) {
    return;
  }
  std::string_view code = value.str;
  code = code.substr(0, code.find(' '));
  auto message = fmt::format("Redis {} failed: {}", command, value.str);
  if (code == "NOSCRIPT") {
    throw NoScriptError(message);
  }
  // Replies that mean "the server cannot answer right now", not "your request is wrong".
  static constexpr std::array kTransient = {"LOADING",  "BUSY",       "MASTERDOWN",
                                            "TRYAGAIN", "READONLY",   "CLUSTERDOWN",
                                            "OOM",      "NOREPLICAS", "MISCONF"};
  for (std::string_view transient : kTransient) {
    if (code == transient) {
      throw TransientError(message);
    }
  }
  throw PermanentError(message);
}

}  // namespace invsync::redis
