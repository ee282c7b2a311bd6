#include "api/auth.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "common/text.hpp"

namespace invsync::api {

namespace {

std::array<unsigned char, 32> Digest(std::string_view text) {
  std::array<unsigned char, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "read") {
    return Role::kRead;
  }
  if (name == "order") {
    return Role::kOrder;
  }
  if (name == "admin") {
    return Role::kAdmin;
  }
  return std::nullopt;
}

std::string Sha256Hex(std::string_view text) {
  std::string hex;
  for (unsigned char byte : Digest(text)) {
    hex += fmt::format("{:02x}", byte);
  }
  return hex;
}

Authenticator::Authenticator(
    const std::vector<std::tuple<std::string, std::string, Role>>& tokens) {
  for (const auto& [name, hex, role] : tokens) {
    Entry entry{.name = name, .role = role};
    if (hex.size() != 64) {
      throw std::invalid_argument(fmt::format("token {}: sha256 must be 64 hex digits", name));
    }
    for (std::size_t i = 0; i < 32; ++i) {
      int high = HexDigit(hex[2 * i]);
      int low = HexDigit(hex[2 * i + 1]);
      if (high < 0 || low < 0) {
        throw std::invalid_argument(fmt::format("token {}: sha256 must be lower-case hex", name));
      }
      entry.digest[i] = static_cast<unsigned char>(high * 16 + low);
    }
    entries_.push_back(entry);
  }
}

std::optional<Role> Authenticator::RoleOf(std::string_view authorization) const {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return std::nullopt;
  }
  const auto presented = Digest(authorization.substr(kScheme.size()));
  std::optional<Role> found;
  // Every entry is compared, matching or not, so the time taken says nothing about which.
  for (const auto& entry : entries_) {
    if (CRYPTO_memcmp(presented.data(), entry.digest.data(), presented.size()) == 0) {
      found = entry.role;
    }
  }
  return found;
}

}  // namespace invsync::api
