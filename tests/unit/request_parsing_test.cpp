// Parsing of what the HTTP layer receives: targets, media types, JSON bodies and fields. Pure
// functions, tested without a server.
#include "api/request_parsing.hpp"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace invsync::api
