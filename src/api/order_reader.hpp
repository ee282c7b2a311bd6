#pragma once

#include <optional>
#include <string_view>

#include "api/request_parsing.hpp"

namespace invsync::api {

/// Reads an order body of the usual shape straight into an OrderRequest, with nlohmann's SAX
/// interface (its lexer, so the same JSON is accepted) and without building a document: an object
/// with exactly the keys "order_id" (a string) and "lines" (an array of objects with exactly the
/// keys "sku", a string, and "quantity", an integer within 64 bits), each key once, in any order.
/// Anything else, including every malformed body, is declined (nullopt); `ParseOrder` then reads
/// it as a document, which gives the same order for every body this accepts and the error
/// response for the others.
[[nodiscard]] std::optional<OrderRequest> ReadUsualOrder(std::string_view body);

}  // namespace invsync::api
