#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace invsync::api {

/// What a token may do. Each role includes the ones before it: `read` (GET routes), `order`
/// (also orders and cancels), `admin` (also set, restock and status).
enum class Role { kRead = 0, kOrder = 1, kAdmin = 2 };

/// Parses "read", "order" or "admin".
[[nodiscard]] std::optional<Role> ParseRole(std::string_view name);

/// Lower-case hex SHA-256 of a text (what the config file stores for a token).
[[nodiscard]] std::string Sha256Hex(std::string_view text);

/// Bearer-token checks. Tokens are kept only as SHA-256 digests; a presented token is hashed and
/// compared with every configured digest in constant time, so neither timing nor logs reveal it.
class Authenticator {
 public:
  struct Entry {
    std::string name;
    std::array<unsigned char, 32> digest{};
    Role role = Role::kRead;
  };

  Authenticator() = default;
  /// `tokens` as (name, sha256 hex, role); throws std::invalid_argument on a malformed digest.
  explicit Authenticator(const std::vector<std::tuple<std::string, std::string, Role>>& tokens);

  /// True when at least one token is configured (otherwise the API is open).
  [[nodiscard]] bool enabled() const { return !entries_.empty(); }
  /// The role of the token in an `Authorization: Bearer <token>` header, nullopt if absent or
  /// unknown.
  [[nodiscard]] std::optional<Role> RoleOf(std::string_view authorization) const;

 private:
  std::vector<Entry> entries_;
};

}  // namespace invsync::api
