#include "api/order_reader.hpp"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace invsync::api {

namespace {

using Json = nlohmann::json;

// SAX events of the usual order body, in a state machine that declines (returns false, which
// stops the parse) at the first event that does not fit the shape. Every order body of this shape
// is read here: the document path then never runs, sparing its allocation of a tree. The
// lower-case method names are those nlohmann::json_sax requires.
class UsualOrderReader {
 public:
  static bool null() { return false; }
  static bool boolean(bool /*value*/) { return false; }
  bool number_integer(Json::number_integer_t value) { return Quantity(value); }
  bool number_unsigned(Json::number_unsigned_t value) {
    // Beyond int64 is an error the document path names.
    return value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
           Quantity(static_cast<std::int64_t>(value));
  }
  static bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
    return false;
  }
  static bool binary(Json::binary_t& /*value*/) { return false; }

  bool string(Json::string_t& value) {
    switch (expect_) {
      case Expect::kOrderId:
        order_.order_id = std::move(value);
        break;
      case Expect::kSku:
        order_.lines.back().sku = std::move(value);
        break;
      default:
        return false;
    }
    expect_ = Expect::kNone;
    return true;
  }

  bool start_object(std::size_t /*elements*/) {
    if (place_ == Place::kOutside && !done_) {
      place_ = Place::kOrder;
      return true;
    }
    if (place_ == Place::kLines) {
      place_ = Place::kLine;
      order_.lines.emplace_back();
      has_sku_ = has_quantity_ = false;
      return true;
    }
    return false;
  }

  bool key(Json::string_t& name) {
    if (expect_ != Expect::kNone) {
      return false;
    }
    if (place_ == Place::kOrder) {
      return Claim(name == "order_id", has_order_id_, Expect::kOrderId) ||
             Claim(name == "lines", has_lines_, Expect::kLines);
    }
    if (place_ == Place::kLine) {
      return Claim(name == "sku", has_sku_, Expect::kSku) ||
             Claim(name == "quantity", has_quantity_, Expect::kQuantity);
    }
    return false;
  }

  bool end_object() {
    if (place_ == Place::kLine && has_sku_ && has_quantity_) {
      place_ = Place::kLines;
      return true;
    }
    if (place_ == Place::kOrder && has_order_id_ && has_lines_) {
      place_ = Place::kOutside;
      done_ = true;
      return true;
    }
    return false;
  }

  bool start_array(std::size_t /*elements*/) {
    if (expect_ != Expect::kLines) {
      return false;
    }
    expect_ = Expect::kNone;
    place_ = Place::kLines;
    return true;
  }

  bool end_array() {
    if (place_ != Place::kLines) {
      return false;
    }
    place_ = Place::kOrder;
    return true;
  }

  static bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                          const nlohmann::detail::exception& /*error*/) {
    return false;
  }

  [[nodiscard]] bool done() const { return done_; }
  OrderRequest Take() && { return std::move(order_); }

 private:
  enum class Place { kOutside, kOrder, kLines, kLine };
  enum class Expect { kNone, kOrderId, kLines, kSku, kQuantity };

  // A key of the shape, seen for the first time: its value comes next.
  bool Claim(bool matches, bool& seen, Expect value) {
    if (!matches || seen) {
      return false;
    }
    seen = true;
    expect_ = value;
    return true;
  }

  bool Quantity(std::int64_t value) {
    if (expect_ != Expect::kQuantity) {
      return false;
    }
    order_.lines.back().quantity = value;
    expect_ = Expect::kNone;
    return true;
  }

  OrderRequest order_;
  Place place_ = Place::kOutside;
  Expect expect_ = Expect::kNone;
  bool has_order_id_ = false;
  bool has_lines_ = false;
  bool has_sku_ = false;
  bool has_quantity_ = false;
  bool done_ = false;
};

}  // namespace

std::optional<OrderRequest> ReadUsualOrder(std::string_view body) {
  UsualOrderReader reader;
  // Strict, as Json::parse: nothing but whitespace may follow the object.
  if (!Json::sax_parse(body, &reader, Json::input_format_t::json, /*strict=*/true) ||
      !reader.done()) {
    return std::nullopt;
  }
  return std::move(reader).Take();
}

}  // namespace invsync::api
