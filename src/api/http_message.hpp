#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>

#include "api/handlers.hpp"

namespace invsync::api {

/// Largest header section the server reads (431 beyond it).
inline constexpr std::size_t kHeaderLimit = std::size_t{16} * 1024;

/// A parsed HTTP request as the handlers see it. `request_id` is the client's X-Request-Id when
/// it is a valid identifier, else empty (the server then makes one up).
[[nodiscard]] Request RequestFromMessage(
    boost::beast::http::request<boost::beast::http::string_body>&& message);

}  // namespace invsync::api
