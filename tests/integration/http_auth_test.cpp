// Access control of the HTTP API: bearer tokens kept as hashes, roles read < order < admin,
// health routes always open, /metrics open unless protected, and no token ever in the logs.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

#include "api/auth.hpp"
#include "api/handlers.hpp"
#include "api/server.hpp"
#include "http_client.hpp"
#include "servers.hpp"

namespace invsync::testing {
namespace {

constexpr const char* kReader = "reader-token-0123456789";
constexpr const char* kOrderer = "order-token-0123456789";
constexpr const char* kAdmin = "admin-token-0123456789";

class HttpAuthTest : public ServersTest {
 protected:
  void Start(bool protect_metrics = false) {
    api::HandlerOptions options;
    options.auth = api::Authenticator({{"storefront", api::Sha256Hex(kReader), api::Role::kRead},
                                       {"orders", api::Sha256Hex(kOrderer), api::Role::kOrder},
                                       {"ops", api::Sha256Hex(kAdmin), api::Role::kAdmin}});
    options.protect_metrics = protect_metrics;
    handlers_ = std::make_unique<api::Handlers>(stock(), store(), pool(), options);
    server_ = std::make_unique<api::Server>(
        api::ServerOptions{
            .listen = "127.0.0.1:0", .io_threads = 1, .workers = 4, .access_log = true},
        *handlers_);
    client_ = std::make_unique<HttpClient>(server_->Start());
  }
  void TearDown() override {
    client_.reset();
    if (server_) {
      server_->Stop();
    }
  }
  Reply Call(std::string_view method, std::string_view target, const char* token,
             std::string_view body = "") {
    HeaderList headers;
    if (token != nullptr) {
      headers.emplace_back("Authorization", std::string("Bearer ") + token);
    }
    return client_->Send(method, target, body, headers);
  }
  static std::string Order(const std::string& id) {
    return R"({"order_id":")" + id + R"(","lines":[{"sku":"A","quantity":1}]})";
  }

  std::unique_ptr<api::Handlers> handlers_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpAuthTest, MissingOrUnknownTokenIs401WithAChallenge) {
  Start();
  auto missing = Call("GET", "/v1/inventory/A", nullptr);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"]["code"], "unauthorized");
  EXPECT_EQ(missing.Header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Call("GET", "/v1/inventory/A", "not-a-token").status, 401);
  auto wrong_scheme = client_->Send("GET", "/v1/inventory/A", "",
                                    {{"Authorization", std::string("Basic ") + kAdmin}});
  EXPECT_EQ(wrong_scheme.status, 401);
}

TEST_F(HttpAuthTest, ReadTokenReadsButCannotOrderOrChangeStock) {
  Start();
  ASSERT_EQ(stock().Set("A", 10, "seed").status, core::StockStatus::kOk);
  EXPECT_EQ(Call("GET", "/v1/inventory/A", kReader).status, 200);
  EXPECT_EQ(Call("GET", "/v1/inventory?sku=A", kReader).status, 200);
  auto order = Call("POST", "/v1/orders", kReader, Order("o1"));
  EXPECT_EQ(order.status, 403);
  EXPECT_EQ(order.json()["error"]["code"], "forbidden");
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", kReader, R"({"quantity":1})").status, 403);
  EXPECT_EQ(Call("GET", "/v1/status", kReader).status, 403);
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpAuthTest, OrderTokenOrdersAndCancelsButCannotSetOrRestock) {
  Start();
  ASSERT_EQ(stock().Set("A", 10, "seed").status, core::StockStatus::kOk);
  EXPECT_EQ(Call("POST", "/v1/orders", kOrderer, Order("o1")).status, 201);
  EXPECT_EQ(Call("GET", "/v1/orders/o1", kOrderer).status, 200);
  EXPECT_EQ(Call("POST", "/v1/orders/o1/cancel", kOrderer).status, 200);
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", kOrderer, R"({"quantity":1})").status, 403);
  EXPECT_EQ(Call("POST", "/v1/inventory/A/restock", kOrderer, R"({"quantity":1,"request_id":"r1"})")
                .status,
            403);
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpAuthTest, AdminTokenMayDoEverything) {
  Start();
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", kAdmin, R"({"quantity":5})").status, 200);
  EXPECT_EQ(
      Call("POST", "/v1/inventory/A/restock", kAdmin, R"({"quantity":2,"request_id":"r"})").status,
      200);
  EXPECT_EQ(Call("POST", "/v1/orders", kAdmin, Order("o1")).status, 201);
  EXPECT_EQ(Call("GET", "/v1/status", kAdmin).status, 200);
  EXPECT_EQ(RedisQuantity("A"), 6);
}

TEST_F(HttpAuthTest, HealthRoutesAndMetricsStayOpenByDefault) {
  Start();
  EXPECT_EQ(Call("GET", "/healthz", nullptr).status, 200);
  EXPECT_EQ(Call("GET", "/readyz", nullptr).status, 200);
  EXPECT_EQ(Call("GET", "/metrics", nullptr).status, 200);
}

TEST_F(HttpAuthTest, MetricsNeedAReadTokenWhenProtected) {
  Start(/*protect_metrics=*/true);
  EXPECT_EQ(Call("GET", "/metrics", nullptr).status, 401);
  EXPECT_EQ(Call("GET", "/metrics", kReader).status, 200);
  EXPECT_EQ(Call("GET", "/healthz", nullptr).status, 200);
}

TEST_F(HttpAuthTest, AccessLogHasOneLinePerRequestAndNeverTheToken) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  Start();
  ASSERT_EQ(Call("PUT", "/v1/inventory/A", kAdmin, R"({"quantity":5})").status, 200);
  ASSERT_EQ(Call("GET", "/v1/inventory/A", kReader).status, 200);
  ASSERT_EQ(Call("GET", "/v1/inventory/A", "wrong-token-secret").status, 401);
  server_->Stop();
  spdlog::set_default_logger(previous);
  const std::string log = captured.str();
  std::size_t lines = 0;
  for (std::size_t at = log.find("access {"); at != std::string::npos;
       at = log.find("access {", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 3U) << log;
  EXPECT_NE(log.find("\"status\":401"), std::string::npos) << log;
  for (const char* secret : {kAdmin, kReader, "wrong-token-secret"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "token in the log: " << log;
  }
}

TEST(Sha256Hex, MatchesTheStandardTestVector) {
  EXPECT_EQ(api::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace invsync::testing
