#include "api/request_parsing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

#include "api/order_reader.hpp"
#include "common/text.hpp"

namespace invsync::api {

namespace {

std::string Decode(std::string_view text, const char* code) {
  auto decoded = PercentDecode(text);
  if (!decoded) {
    throw RequestError(400, code,
                       fmt::format("malformed percent-escape in \"{}\"", text.substr(0, 200)));
  }
  return *decoded;
}

// Nesting depth of a JSON text, counted without parsing (strings skipped), so a hostile body of
// a million '[' is refused before a parser sees it.
int JsonDepth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxJsonDepth) {
        return deepest;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// What a number too large even for a double becomes (see NeutralizeHugeNumbers).
// In the JSON text an escaped NUL leads it, so no ordinary string looks the same once parsed.
constexpr std::string_view kHugeNumberJson = R"(\u0000number out of range)";
constexpr std::string_view kHugeNumberValue{"\0number out of range", 20};

// A JSON number beyond double range (1e400) makes the parser reject the whole body; replaced by a
// marker string, it reaches the field accessors, which then name the field (422 invalid_type).
std::string NeutralizeHugeNumbers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      out += c;
      continue;
    }
    std::size_t end = i + 1;
    while (end < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[end])) != 0 || text[end] == '.' ||
            text[end] == 'e' || text[end] == 'E' || text[end] == '+' || text[end] == '-')) {
      ++end;
    }
    const std::string token(text.substr(i, end - i));
    const double value = std::strtod(token.c_str(), nullptr);
    if (std::isinf(value)) {
      out += '"';
      out += kHugeNumberJson;
      out += '"';
    } else {
      out += token;
    }
    i = end - 1;
  }
  return out;
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') {
    type.remove_suffix(1);
  }
  constexpr std::string_view kJson = "application/json";
  return std::equal(type.begin(), type.end(), kJson.begin(), kJson.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

const char* TypeName(const nlohmann::json& value) {
  if (value.is_number_float()) {
    return "a fractional number";
  }
  if (value.is_string() && value.get_ref<const std::string&>() == kHugeNumberValue) {
    return "a number out of range";
  }
  return value.type_name();
}

}  // namespace

Target ParseTarget(std::string_view target) {
  Target parsed;
  auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  parsed.path = std::string(path);
  while (!path.empty()) {
    auto slash = path.find('/');
    std::string_view segment = path.substr(0, slash);
    if (!segment.empty()) {
      parsed.segments.push_back(Decode(segment, "bad_path"));
    }
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  }
  if (question == std::string_view::npos) {
    return parsed;
  }
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    auto equals = pair.find('=');
    parsed.query.emplace_back(Decode(pair.substr(0, equals), "bad_query"),
                              equals == std::string_view::npos
                                  ? std::string()
                                  : Decode(pair.substr(equals + 1), "bad_query"));
  }
  return parsed;
}

bool RouteMatch::Allows(std::string_view method) const {
  std::string_view rest = allow;
  while (!rest.empty()) {
    auto comma = rest.find(", ");
    if (rest.substr(0, comma) == method) {
      return true;
    }
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
  }
  return false;
}

RouteMatch MatchRoute(const Target& target) {
  struct Shape {
    std::vector<std::string_view> segments;  ///< "*": any one segment
    RouteMatch match;
  };
  static const std::array<Shape, 10> kRoutes{{
      {{"healthz"}, {Route::kHealthz, "/healthz", "GET"}},
      {{"metrics"}, {Route::kMetrics, "/metrics", "GET"}},
      {{"readyz"}, {Route::kReadyz, "/readyz", "GET"}},
      {{"v1", "status"}, {Route::kStatus, "/v1/status", "GET"}},
      {{"v1", "inventory"}, {Route::kInventoryMany, "/v1/inventory", "GET"}},
      {{"v1", "inventory", "*"}, {Route::kInventorySku, "/v1/inventory/{sku}", "GET, PUT"}},
      {{"v1", "inventory", "*", "restock"},
       {Route::kRestock, "/v1/inventory/{sku}/restock", "POST"}},
      {{"v1", "orders"}, {Route::kOrders, "/v1/orders", "POST"}},
      {{"v1", "orders", "*"}, {Route::kOrder, "/v1/orders/{order_id}", "GET"}},
      {{"v1", "orders", "*", "cancel"}, {Route::kCancel, "/v1/orders/{order_id}/cancel", "POST"}},
  }};
  const auto& path = target.segments;
  for (const auto& shape : kRoutes) {
    if (shape.segments.size() == path.size() &&
        std::equal(shape.segments.begin(), shape.segments.end(), path.begin(),
                   [](std::string_view want, const std::string& got) {
                     return want == "*" || want == got;
                   })) {
      return shape.match;
    }
  }
  return {};
}

namespace {

// What every JSON body must pass before it is parsed: its size, presence and media type.
void CheckJsonBody(const Request& request, std::size_t limit) {
  if (request.body.size() > limit) {
    throw RequestError(
        413, "body_too_large",
        fmt::format("body of {} bytes is over the limit of {}", request.body.size(), limit));
  }
  if (request.body.empty()) {
    throw RequestError(400, "malformed_json", "this request needs a JSON object body");
  }
  if (!IsJsonMediaType(request.content_type)) {
    throw RequestError(415, "unsupported_media_type",
                       fmt::format("Content-Type must be application/json, got \"{}\"",
                                   request.content_type.substr(0, 100)));
  }
}

nlohmann::json ParseCheckedBody(const Request& request) {
  if (JsonDepth(request.body) > kMaxJsonDepth) {
    throw RequestError(400, "malformed_json",
                       fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
  }
  auto body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    // Only a refused body pays for the second pass: a number beyond double range is the one
    // parse failure that is a field error (422) rather than malformed JSON (400).
    body = nlohmann::json::parse(NeutralizeHugeNumbers(request.body), nullptr,
                                 /*allow_exceptions=*/false);
  }
  if (body.is_discarded()) {
    throw RequestError(400, "malformed_json", "the body is not valid JSON");
  }
  if (!body.is_object()) {
    throw RequestError(400, "malformed_json", "the body must be a JSON object");
  }
  return body;
}

}  // namespace

nlohmann::json ParseBody(const Request& request, std::size_t limit) {
  CheckJsonBody(request, limit);
  return ParseCheckedBody(request);
}

std::int64_t RequiredInteger(const nlohmann::json& object, const std::string& name,
                             const std::string& field) {
  const std::string& label = field.empty() ? name : field;
  auto it = object.find(name);
  if (it == object.end()) {
    throw RequestError(422, "missing_field", fmt::format("{} is required", label), label);
  }
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX) {
      throw RequestError(422, "invalid_type",
                         fmt::format("{} must be an integer within 64 bits", label), label);
    }
    return it->get<std::int64_t>();
  }
  throw RequestError(422, "invalid_type",
                     fmt::format("{} must be an integer, got {}", label, TypeName(*it)), label);
}

std::string RequiredString(const nlohmann::json& object, const std::string& name,
                           const std::string& field) {
  const std::string& label = field.empty() ? name : field;
  auto it = object.find(name);
  if (it == object.end()) {
    throw RequestError(422, "missing_field", fmt::format("{} is required", label), label);
  }
  if (!it->is_string()) {
    throw RequestError(422, "invalid_type",
                       fmt::format("{} must be a string, got {}", label, TypeName(*it)), label);
  }
  return it->get<std::string>();
}

std::optional<std::string> OptionalString(const nlohmann::json& object, const std::string& name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    return std::nullopt;
  }
  return RequiredString(object, name);
}

std::vector<core::Line> ParseLines(const nlohmann::json& body) {
  auto it = body.find("lines");
  if (it == body.end()) {
    throw RequestError(422, "missing_field", "lines is required", "lines");
  }
  if (!it->is_array()) {
    throw RequestError(422, "invalid_type",
                       fmt::format("lines must be an array, got {}", TypeName(*it)), "lines");
  }
  std::vector<core::Line> lines;
  lines.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& line = (*it)[i];
    std::string field = fmt::format("lines[{}]", i);
    if (!line.is_object()) {
      throw RequestError(422, "invalid_type",
                         fmt::format("{} must be an object, got {}", field, TypeName(line)), field);
    }
    lines.push_back({RequiredString(line, "sku", field + ".sku"),
                     RequiredInteger(line, "quantity", field + ".quantity")});
  }
  return lines;
}

OrderRequest ParseOrder(const Request& request, std::size_t body_limit) {
  CheckJsonBody(request, body_limit);
  if (auto order = ReadUsualOrder(request.body)) {
    return std::move(*order);
  }
  const nlohmann::json body = ParseCheckedBody(request);
  OrderRequest order;
  order.order_id = RequiredString(body, "order_id");
  order.lines = ParseLines(body);
  return order;
}

}  // namespace invsync::api
