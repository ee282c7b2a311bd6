// Inputs the fuzzers in fuzz/ found to break a parser, fed to the same entry points the fuzzers
// use, with the answer the contract asks for. Each input is also a seed of its fuzzer's corpus
// (fuzz/corpus/<target>/regression_*).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "api/call.hpp"
#include "api/handlers.hpp"
#include "api/http_message.hpp"
#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "common/error.hpp"
#include "config/config.hpp"
#include "core/stock_service.hpp"
#include "db/sqlite_store.hpp"
#include "redis/client.hpp"
#include "redis/detail/reply.hpp"

namespace invsync {
namespace {

namespace http = boost::beast::http;

// Raw request bytes → the server's parser settings → the handlers' request (as the fuzzer does).
api::Request ParseHttp(std::string_view raw) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(api::kHeaderLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  return api::RequestFromMessage(parser.release());
}

// Handlers whose Redis and database are never reached: the requests below are answered before.
struct OfflineHandlers {
  redis::Pool pool{redis::Endpoint::Parse("redis://127.0.0.1:1"), 1, std::chrono::seconds(1)};
  db::SqliteStore store{"/nonexistent/invsync-test.db", 1};
  core::StockService stock{pool, store, core::Keys("inventory:"), core::StockOptions{}};
  api::Handlers handlers{stock, store, pool, api::HandlerOptions{}};
};

// fuzz/corpus/http_request/regression_non_utf8_path: a path with a byte that is not UTF-8 is
// quoted in the 404's message; serialising it threw, so the request was answered 500 "internal".
constexpr std::string_view kNonUtf8Path =
    "POST /v1/\xabrders HTTP/1.1\r\nHost: 1\xc9\xc8.0.0.1\r\nAuthorization: Bearer idmin\r\n"
    "Content-Type: application/json\r\nContent-Length: 91\r\n\r\n"
    R"({"order_id":"order-17","lines":[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}]})";

TEST(FuzzRegression, NonUtf8PathIsAnswered404WithValidJson) {
  const api::Request request = ParseHttp(kNonUtf8Path);
  auto read = api::ReadCall(request, api::HandlerOptions{});
  ASSERT_TRUE(std::holds_alternative<api::Response>(read));
  const auto& response = std::get<api::Response>(read);
  EXPECT_EQ(response.status, 404);
  const auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["code"], "not_found");
  EXPECT_EQ(body["error"]["message"], "no route for /v1/\xef\xbf\xbdrders");  // U+FFFD
}

TEST(FuzzRegression, HandlersAnswerNonUtf8Path404NotInternalError) {
  OfflineHandlers offline;
  const api::Response response = offline.handlers.Handle(ParseHttp(kNonUtf8Path));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "not_found");
}

TEST(FuzzRegression, NonUtf8QueryParameterNameIsAnswered400) {
  OfflineHandlers offline;
  const api::Response response =
      offline.handlers.Handle(ParseHttp("GET /v1/inventory?%FF=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "bad_query");
}

TEST(FuzzRegression, CliJsonErrorQuotingNonUtf8ArgumentIsValidJson) {
  std::ostringstream out;
  std::ostringstream err;
  cli::Parts parts;
  const cli::Output output{.json = true, .out = out, .err = err};
  EXPECT_EQ(cli::Deduct(parts, "order-1", {"SKU-\xff"}, output), cli::kExitUsage);
  const auto document = nlohmann::json::parse(out.str());
  EXPECT_EQ(document["error"]["code"], "invalid_argument");
}

// fuzz/corpus/cli/regression_non_utf8_flag_value: a setting flag whose value is not UTF-8 (here
// "reis://127.0.0.1\xe31"). Quoting it in the error message with fmt's "{:?}" hit an assertion in
// libfmt, which ended the process instead of exiting 2 with the setting named.
constexpr std::string_view kNonUtf8FlagArguments{
    "--redis-url\0reis://127.0.0.1\xe3"
    "1\0get\0is://1;\0\0\0\0\0\0\0.1:1\0geA\0B",
    59};

std::vector<std::string> SplitAtNul(std::string_view text) {
  std::vector<std::string> args{"invsync"};
  std::size_t start = 0;
  for (std::size_t nul = text.find('\0'); nul != std::string_view::npos;
       start = nul + 1, nul = text.find('\0', start)) {
    args.emplace_back(text.substr(start, nul - start));
  }
  args.emplace_back(text.substr(start));
  return args;
}

TEST(FuzzRegression, NonUtf8FlagValueIsAConfigErrorNamingTheSetting) {
  const auto args = SplitAtNul(kNonUtf8FlagArguments);
  std::vector<const char*> argv;
  for (const auto& arg : args) {
    argv.push_back(arg.c_str());
  }
  std::ostringstream out;
  std::ostringstream err;
  auto parsed = cli::ParseArguments(static_cast<int>(argv.size()), argv.data(), out, err);
  ASSERT_TRUE(std::holds_alternative<cli::Arguments>(parsed)) << err.str();
  const auto& overrides = std::get<cli::Arguments>(parsed).overrides;
  try {
    std::ignore = config::Load(std::nullopt, {}, overrides);
    FAIL() << "a non-UTF-8 Redis URL was accepted";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("redis.url (from --redis-url)"), std::string::npos) << message;
    EXPECT_NE(message.find(R"(got "reis://127.0.0.1\xe31")"), std::string::npos) << message;
  }
}

TEST(FuzzRegression, DisagreeingNonUtf8VariablesAreAConfigError) {
  const config::Environment env{{"INVSYNC_LISTEN", "127.0.0.1:\xff"},
                                {"INVSYNC_SERVER_LISTEN", "127.0.0.1:80"}};
  EXPECT_THROW(std::ignore = config::Load(std::nullopt, env, {}), ConfigError);
}

struct ReaderDeleter {
  void operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }
};
using ReaderPtr = std::unique_ptr<redisReader, ReaderDeleter>;

// A reader as every connection's is set up.
ReaderPtr BoundedReader() {
  ReaderPtr reader(redisReaderCreate());
  redis::detail::BoundReplyArrays(*reader);
  return reader;
}

// fuzz/corpus/redis_reply/regression_huge_array_header: an XREADGROUP-shaped reply whose inner
// array announces 2,000,000,000 elements; hiredis allocated 16 GB for it on reading the header.
TEST(FuzzRegression, HugeArrayHeaderIsRefusedBeforeItsElementsArrive) {
  constexpr std::string_view kReply =
      "*1\r\n*2000000000\r\n$14\r\ninvsync:events\r\n*0\r\n*2\r\n$15\r\n1700000000000-0\r\n";
  auto reader = BoundedReader();
  ASSERT_EQ(redisReaderFeed(reader.get(), kReply.data(), kReply.size()), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &reply), REDIS_ERR);
  EXPECT_EQ(reply, nullptr);
  EXPECT_EQ(reader->err, REDIS_ERR_OOM);
}

TEST(FuzzRegression, ArrayHeaderJustOverTheBoundIsRefused) {
  const std::string reply_text = fmt::format("*{}\r\n", redis::detail::kMaxReplyElements + 1);
  auto reader = BoundedReader();
  ASSERT_EQ(redisReaderFeed(reader.get(), reply_text.data(), reply_text.size()), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &reply), REDIS_ERR);
}

TEST(FuzzRegression, ArraysWithinTheBoundAreRead) {
  constexpr std::string_view kReply = "*3\r\n:1\r\n$2\r\nok\r\n*-1\r\n";
  auto reader = BoundedReader();
  ASSERT_EQ(redisReaderFeed(reader.get(), kReply.data(), kReply.size()), REDIS_OK);
  void* raw = nullptr;
  ASSERT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_OK);
  ASSERT_NE(raw, nullptr);
  const redis::detail::ReplyPtr reply(static_cast<redisReply*>(raw));
  const redis::Value value = redis::detail::ToValue(*reply);
  ASSERT_EQ(value.AsArray().size(), 3U);
  EXPECT_EQ(value.At(0).AsInteger(), 1);
  EXPECT_EQ(value.At(1).AsString(), "ok");
  EXPECT_TRUE(value.At(2).IsNil());
}

}  // namespace
}  // namespace invsync
