#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace invsync {

/// Parses a whole base-10 int64 ("-12"); nullopt on anything else, including overflow and a
/// leading '+' or spaces.
[[nodiscard]] inline std::optional<std::int64_t> ParseInt64(std::string_view text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return value;
}

}  // namespace invsync
