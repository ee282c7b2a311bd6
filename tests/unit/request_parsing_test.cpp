// Parsing of what the HTTP layer receives: targets, media types, JSON bodies and fields. Pure
// functions, tested without a server.
#include "api/request_parsing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "api/order_reader.hpp"

namespace invsync::api {
namespace {

Request JsonRequest(std::string body) {
  return {
      .method = "POST", .target = "/", .content_type = "application/json", .body = std::move(body)};
}

int StatusOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const RequestError& error) {
    return error.status;
  }
  return 0;
}

TEST(ParseTarget, SplitsAndDecodesPathSegments) {
  auto target = ParseTarget("/v1/inventory/a%2Fb/");
  ASSERT_EQ(target.segments.size(), 3U);
  EXPECT_EQ(target.segments[2], "a/b");
  EXPECT_EQ(target.path, "/v1/inventory/a%2Fb/");
}

TEST(ParseTarget, KeepsRepeatedQueryParametersInOrder) {
  auto target = ParseTarget("/v1/inventory?sku=B&sku=A%3A1&&sku=C+D");
  ASSERT_EQ(target.query.size(), 3U);
  EXPECT_EQ(target.query[1].second, "A:1");
  EXPECT_EQ(target.query[2].second, "C+D");  // '+' is not a space outside HTML forms
}

TEST(ParseTarget, MalformedEscapesAre400) {
  for (const char* bad : {"/v1/inventory/%ZZ", "/v1/inventory/%4", "/v1/x?sku=%G0"}) {
    EXPECT_EQ(StatusOf([&] { (void)ParseTarget(bad); }), 400) << bad;
  }
}

TEST(ParseBody, AcceptsAJsonObjectWithCharset) {
  auto request = JsonRequest(R"({"quantity": 3})");
  request.content_type = "Application/JSON; charset=utf-8";
  EXPECT_EQ(ParseBody(request, 1024)["quantity"], 3);
}

TEST(ParseBody, RefusesWithTheContractStatus) {
  EXPECT_EQ(StatusOf([] { (void)ParseBody(JsonRequest(""), 1024); }), 400);
  EXPECT_EQ(StatusOf([] { (void)ParseBody(JsonRequest("[1]"), 1024); }), 400);
  EXPECT_EQ(StatusOf([] { (void)ParseBody(JsonRequest(R"({"a":)"), 1024); }), 400);
  EXPECT_EQ(StatusOf([] { (void)ParseBody(JsonRequest(std::string(100, '[')), 1024); }), 400);
  EXPECT_EQ(StatusOf([] { (void)ParseBody(JsonRequest(R"({"a":1})"), 3); }), 413);
  auto text = JsonRequest(R"({"a":1})");
  text.content_type = "text/plain";
  EXPECT_EQ(StatusOf([&] { (void)ParseBody(text, 1024); }), 415);
}

TEST(ParseBody, NestingUpToTheLimitIsAccepted) {
  std::string body =
      "{\"a\":" + std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']') + "}";
  EXPECT_NO_THROW((void)ParseBody(JsonRequest(body), 1 << 20));
  std::string deeper =
      "{\"a\":" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  EXPECT_EQ(StatusOf([&] { (void)ParseBody(JsonRequest(deeper), 1 << 20); }), 400);
}

TEST(ParseBody, BracketsInsideStringsDoNotCountAsNesting) {
  std::string body = R"({"note":")" + std::string(100, '[') + R"(\"]"})";
  EXPECT_NO_THROW((void)ParseBody(JsonRequest(body), 1 << 20));
}

TEST(Fields, NumbersBeyondRangeNameTheirField) {
  for (const char* number : {"1e400", "-1e400", "99999999999999999999", "9223372036854775808",
                             "2.5", "2.0", "\"3\"", "true", "null"}) {
    auto body = ParseBody(JsonRequest(std::string(R"({"quantity":)") + number + "}"), 1024);
    try {
      (void)RequiredInteger(body, "quantity");
      ADD_FAILURE() << number << " was accepted";
    } catch (const RequestError& error) {
      EXPECT_EQ(error.status, 422) << number;
      EXPECT_EQ(error.code, "invalid_type") << number;
      EXPECT_EQ(error.field, "quantity") << number;
    }
  }
}

TEST(Fields, Int64ExtremesAreIntegers) {
  auto body = ParseBody(JsonRequest(R"({"a":9223372036854775807,"b":-9223372036854775808})"), 1024);
  EXPECT_EQ(RequiredInteger(body, "a"), INT64_MAX);
  EXPECT_EQ(RequiredInteger(body, "b"), INT64_MIN);
}

TEST(Fields, LinesNameTheOffendingLine) {
  auto body = ParseBody(JsonRequest(R"({"lines":[{"sku":"A","quantity":1},{"sku":7}]})"), 1024);
  try {
    (void)ParseLines(body);
    ADD_FAILURE() << "accepted";
  } catch (const RequestError& error) {
    EXPECT_EQ(error.field, "lines[1].sku");
    EXPECT_EQ(error.code, "invalid_type");
  }
  auto missing = ParseBody(JsonRequest(R"({"order_id":"o"})"), 1024);
  EXPECT_EQ(StatusOf([&] { (void)ParseLines(missing); }), 422);
}

TEST(Fields, HugeNumberMarkerDoesNotDisturbOrdinaryStrings) {
  auto body = ParseBody(JsonRequest(R"({"order_id":"1e400","n":1e400})"), 1024);
  EXPECT_EQ(RequiredString(body, "order_id"), "1e400");
}

using namespace std::string_literals;

// Bodies of POST /v1/orders of the usual shape (ReadUsualOrder reads them)...
const std::vector<std::string> kUsualOrderBodies = {
    R"({"order_id":"o-1","lines":[{"sku":"A","quantity":2}]})",
    R"({"lines":[{"quantity":2,"sku":"A"},{"sku":"B","quantity":9223372036854775807}],"order_id":"o"})",
    " \t\r\n{ \"order_id\" : \"o\" , \"lines\" : [ { \"sku\" : \"A\" , \"quantity\" : -3 } ] } \n",
    R"({"order_id":"o","lines":[]})",
    R"({"order_id":"o\u00e9\n","lines":[{"sku":"\u0041","quantity":1}]})",
    "{\"order_id\":\"caf\xc3\xa9\",\"lines\":[{\"sku\":\"A\",\"quantity\":1}]}",
};

// ... and of every other shape, valid or not (left to the document reading).
const std::vector<std::string> kOtherOrderBodies = {
    "{\"order_id\":\"bad \xc3\",\"lines\":[{\"sku\":\"A\",\"quantity\":1}]}",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}],"note":"gift"})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1,"note":null}]})",
    R"({"order_id":"o","order_id":"p","lines":[{"sku":"A","quantity":1}]})",
    R"({"order_id":"o","lines":[{"sku":"A","sku":"B","quantity":1}]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}],"lines":[]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1.0}]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1e400}]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":9223372036854775808}]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":"1"}]})",
    R"({"order_id":"o","lines":[{"sku":7,"quantity":1}]})",
    R"({"order_id":"o","lines":[{"sku":"A"}]})",
    R"({"order_id":"o","lines":[{"quantity":1}]})",
    R"({"order_id":"o","lines":[[]]})",
    R"({"order_id":"o","lines":["A"]})",
    R"({"order_id":"o","lines":{"sku":"A","quantity":1}})",
    R"({"order_id":null,"lines":[{"sku":"A","quantity":1}]})",
    R"({"order_id":["o"],"lines":[{"sku":"A","quantity":1}]})",
    R"({"lines":[{"sku":"A","quantity":1}]})",
    R"({"order_id":"o"})",
    R"({})",
    R"([{"order_id":"o","lines":[]}])",
    R"("order")",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}]} {})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}]}x)",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}])",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":01}]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1},]})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":1}]/**/})",
    R"({"order_id":"o","lines":[{"sku":"A","quantity":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]})",
    "",
    "{\"order_id\":\"o\0\",\"lines\":[]}"s,
};

// The order as the document reading gives it, or the error it answers.
struct ErrorAnswer {
  int status;
  std::string code;
  std::string message;
  std::string field;
  friend bool operator==(const ErrorAnswer&, const ErrorAnswer&) = default;
};
using OrderAnswer = std::variant<ErrorAnswer, std::pair<std::string, std::vector<core::Line>>>;

template <typename Read>
OrderAnswer AnswerOf(const Read& read) {
  try {
    OrderRequest order = read();
    return std::pair(order.order_id, order.lines);
  } catch (const RequestError& error) {
    return ErrorAnswer{error.status, error.code, error.what(), error.field};
  }
}

TEST(ParseOrder, AnswersEveryBodyAsTheDocumentReadingDoes) {
  std::vector<std::string> bodies = kUsualOrderBodies;
  bodies.insert(bodies.end(), kOtherOrderBodies.begin(), kOtherOrderBodies.end());
  for (const auto& text : bodies) {
    const Request request = JsonRequest(text);
    const OrderAnswer document = AnswerOf([&] {
      const auto body = ParseBody(request, 1024);
      return OrderRequest{RequiredString(body, "order_id"), ParseLines(body)};
    });
    EXPECT_EQ(AnswerOf([&] { return ParseOrder(request, 1024); }), document) << text;
  }
}

TEST(ReadUsualOrder, ReadsTheUsualShapeWithKeysInAnyOrder) {
  for (const auto& text : kUsualOrderBodies) {
    EXPECT_TRUE(ReadUsualOrder(text).has_value()) << text;
  }
  const auto order = ReadUsualOrder(kUsualOrderBodies[1]);
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->order_id, "o");
  EXPECT_EQ(order->lines, (std::vector<core::Line>{{"A", 2}, {"B", INT64_MAX}}));
  const auto spaced = ReadUsualOrder(kUsualOrderBodies[2]);
  ASSERT_TRUE(spaced.has_value());
  EXPECT_EQ(spaced->lines, (std::vector<core::Line>{{"A", -3}}));
  const auto escaped = ReadUsualOrder(kUsualOrderBodies[4]);
  ASSERT_TRUE(escaped.has_value());
  EXPECT_EQ(escaped->order_id, "o\xc3\xa9\n");
  EXPECT_EQ(escaped->lines, (std::vector<core::Line>{{"A", 1}}));
}

TEST(ReadUsualOrder, LeavesEveryOtherShapeToTheDocumentReading) {
  for (const auto& text : kOtherOrderBodies) {
    EXPECT_FALSE(ReadUsualOrder(text).has_value()) << text;
  }
}

}  // namespace
}  // namespace invsync::api
