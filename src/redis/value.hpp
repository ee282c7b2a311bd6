#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace invsync::redis {

/// An owned copy of one Redis reply.
struct Value {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };

  Type type = Type::kNil;
  std::int64_t integer = 0;
  std::string str;  ///< for kString, kStatus and kError
  std::vector<Value> elements;

  [[nodiscard]] bool IsNil() const { return type == Type::kNil; }
  [[nodiscard]] bool IsError() const { return type == Type::kError; }
  [[nodiscard]] bool IsArray() const { return type == Type::kArray; }

  /// Accessors that throw `PermanentError` ("unexpected Redis reply ...") on a type mismatch, so
  /// a malformed reply is an error, never undefined behaviour.
  [[nodiscard]] std::int64_t AsInteger() const;
  [[nodiscard]] const std::string& AsString() const;
  [[nodiscard]] const std::vector<Value>& AsArray() const;
  /// A string or nil (HGET and friends).
  [[nodiscard]] std::optional<std::string> AsOptionalString() const;
  /// An integer, or a string holding a whole decimal number (HGET of a counter); nil → nullopt.
  [[nodiscard]] std::optional<std::int64_t> AsOptionalInteger() const;
  /// Element `i` of an array, bounds-checked.
  [[nodiscard]] const Value& At(std::size_t i) const;

  /// Human-readable form for logs and error messages (truncated).
  [[nodiscard]] std::string Describe() const;
};

/// Raised for a `NOSCRIPT` reply, so script callers can load the script and retry.
class NoScriptError : public PermanentError {
 public:
  using PermanentError::PermanentError;
};

/// Throws the exception that matches an error reply: `TransientError` for LOADING, BUSY,
/// MASTERDOWN, TRYAGAIN, READONLY, CLUSTERDOWN and OOM; `PermanentError` otherwise.
void ThrowIfError(const Value& value, std::string_view command);

}  // namespace invsync::redis
