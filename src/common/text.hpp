#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace invsync {

/// Longest SKU, order id or request id.
inline constexpr std::size_t kMaxIdLength = 128;

/// True for a byte allowed in identifiers: visible ASCII (0x21-0x7E), no space or control byte.
[[nodiscard]] inline bool IsIdentifierByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte >= 0x21 && byte <= 0x7e;
}

/// True for an identifier (SKU, order id, request id): 1 to kMaxIdLength identifier bytes.
[[nodiscard]] inline bool IsIdentifier(std::string_view text) {
  if (text.empty() || text.size() > kMaxIdLength) {
    return false;
  }
  for (char c : text) {
    if (!IsIdentifierByte(c)) {
      return false;
    }
  }
  return true;
}

/// True for well-formed UTF-8 without a NUL byte: text a database column can hold.
[[nodiscard]] inline bool IsStorableText(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead == 0) {
      return false;
    }
    // Length of the sequence, and the smallest code point it may encode (no overlong forms).
    std::size_t length = 1;
    char32_t point = lead;
    char32_t smallest = 0;
    if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      point = lead & 0x07u;
      smallest = 0x10000;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      point = lead & 0x0fu;
      smallest = 0x800;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      point = lead & 0x1fu;
      smallest = 0x80;
    } else if (lead >= 0x80) {
      return false;
    }
    if (text.size() - i < length) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0u) != 0x80u) {
        return false;
      }
      point = (point << 6) | (next & 0x3fu);
    }
    if (point < smallest || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

/// Value of a hexadecimal digit (either case), -1 for anything else.
[[nodiscard]] inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// Decodes %XX escapes ('+' stays '+'); nullopt if an escape is malformed.
[[nodiscard]] inline std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

}  // namespace invsync
