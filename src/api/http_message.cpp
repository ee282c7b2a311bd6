#include "api/http_message.hpp"

#include <string_view>
#include <utility>

#include "common/text.hpp"

namespace invsync::api {

namespace http = boost::beast::http;

Request RequestFromMessage(http::request<http::string_body>&& message) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.content_type = std::string(message[http::field::content_type]);
  request.body = std::move(message.body());
  auto authorization = message[http::field::authorization];
  request.authorization.assign(authorization.data(), authorization.size());
  auto given = message["X-Request-Id"];
  const std::string_view given_id(given.data(), given.size());
  if (IsIdentifier(given_id)) {
    request.request_id = std::string(given_id);
  }
  return request;
}

}  // namespace invsync::api
