// The HTTP API v1 end to end: a real api::Server on a free port over real Redis and PostgreSQL,
// driven by a plain HTTP client. One test per row of the contract and per failure it documents,
// then the transport rules (keep-alive, pipelining, limits, outages, deadlines) and a flash sale.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/handlers.hpp"
#include "api/server.hpp"
#include "counting_store.hpp"
#include "db/postgres_store.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "servers.hpp"
#include "syncer/syncer.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class HttpTest : public ServersTest {
 protected:
  void SetUp() override {
    ServersTest::SetUp();
    port_ = Serve(stock(), store(), pool());
    client_ = std::make_unique<HttpClient>(port_);
  }

  void TearDown() override {
    client_.reset();
    for (auto it = servers_.rbegin(); it != servers_.rend(); ++it) {
      (*it)->server->Stop();
    }
    servers_.clear();
    kept_.clear();  // after the servers: their handlers use these
  }

  static api::ServerOptions TestServerOptions() {
    api::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.io_threads = 2;
    options.shutdown_grace = 3s;
    return options;
  }

  /// Starts one more server over the given parts; stopped in TearDown. Returns its port.
  std::uint16_t Serve(core::StockService& stock, db::Store& store, redis::Pool& redis,
                      api::ServerOptions options = TestServerOptions(),
                      api::HandlerOptions handler_options = {}) {
    auto running = std::make_unique<Running>();
    running->handlers = std::make_unique<api::Handlers>(stock, store, redis, handler_options);
    running->server = std::make_unique<api::Server>(options, *running->handlers);
    const std::uint16_t port = running->server->Start();
    servers_.push_back(std::move(running));
    return port;
  }

  /// Keeps an object a test's extra server uses alive until that server has stopped.
  template <class T>
  T& Keep(std::unique_ptr<T> object) {
    T& kept = *object;
    kept_.emplace_back(std::move(object));
    return kept;
  }

  /// One request on the fixture's kept-alive connection; checks what every reply carries.
  Reply Call(std::string_view method, std::string_view target, std::string_view body = "",
             const HeaderList& headers = {}) {
    Reply reply = client_->Send(method, target, body, headers);
    EXPECT_FALSE(reply.Header("X-Request-Id").empty()) << method << " " << target;
    if (target != "/metrics") {
      EXPECT_TRUE(reply.Header("Content-Type").starts_with("application/json"))
          << method << " " << target << ": Content-Type " << reply.Header("Content-Type");
    }
    return reply;
  }
  Reply Put(std::string_view target, const json& body) { return Call("PUT", target, body.dump()); }
  Reply Post(std::string_view target, const json& body) {
    return Call("POST", target, body.dump());
  }
  Reply Order(const std::string& order_id, const json& lines) {
    return Post("/v1/orders", {{"order_id", order_id}, {"lines", lines}});
  }

  void Seed(const std::string& sku, std::int64_t quantity) {
    auto request_id = "seed-" + std::to_string(++seeds_);
    ASSERT_EQ(stock().Set(sku, quantity, request_id).status, core::StockStatus::kOk);
  }
  std::int64_t StreamLength() { return Redis({"XLEN", "invsync:events"}).AsInteger(); }

  std::uint16_t port_ = 0;
  std::unique_ptr<HttpClient> client_;
  int seeds_ = 0;

 private:
  struct Running {
    std::unique_ptr<api::Handlers> handlers;
    std::unique_ptr<api::Server> server;
  };
  std::vector<std::unique_ptr<Running>> servers_;
  std::vector<std::shared_ptr<void>> kept_;
};

std::set<std::string> Methods(const std::string& allow) {
  std::set<std::string> methods;
  std::size_t start = 0;
  while (start <= allow.size()) {
    std::size_t end = allow.find(',', start);
    end = end == std::string::npos ? allow.size() : end;
    std::string method = allow.substr(start, end - start);
    method.erase(0, method.find_first_not_of(' '));
    method.erase(method.find_last_not_of(' ') + 1);
    if (!method.empty()) {
      methods.insert(method);
    }
    start = end + 1;
  }
  return methods;
}

// ---- GET /v1/inventory/{sku} -------------------------------------------------------------------

TEST_F(HttpTest, GetSkuAnswersSkuProductIdAndQuantity) {
  Seed("A", 5);
  auto reply = Call("GET", "/v1/inventory/A");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["sku"], "A");
  EXPECT_EQ(body["quantity"], 5);
  EXPECT_EQ(body["product_id"], Redis({"HGET", "inventory:A", "product_id"}).AsString());
}

TEST_F(HttpTest, GetSkuNotInRedisIsLoadedFromTheDatabase) {
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('DB', 42)");
  auto reply = Call("GET", "/v1/inventory/DB");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["quantity"], 42);
  EXPECT_EQ(RedisQuantity("DB"), 42);
}

TEST_F(HttpTest, GetUnknownSkuIs404UnknownSkuNamingIt) {
  auto reply = Call("GET", "/v1/inventory/GHOST");
  EXPECT_TRUE(IsError(reply, 404, "unknown_sku"));
  EXPECT_EQ(reply.json()["error"]["sku"], "GHOST");
}

TEST_F(HttpTest, GetSkuTooLongIs422SkuTooLong) {
  EXPECT_TRUE(
      IsInvalid(Call("GET", "/v1/inventory/" + std::string(129, 'x')), "sku_too_long", "sku"));
  Seed(std::string(128, 'x'), 1);
  EXPECT_EQ(Call("GET", "/v1/inventory/" + std::string(128, 'x')).status, 200);
}

// ---- GET /v1/inventory?sku=... -----------------------------------------------------------------

TEST_F(HttpTest, GetManyAnswersItemsInRequestOrderAndListsUnknownSkus) {
  Seed("A", 1);
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('B', 2)");  // not cached yet
  auto reply = Call("GET", "/v1/inventory?sku=B&sku=NOPE&sku=A");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["items"], json::parse(R"([{"sku":"B","quantity":2},{"sku":"A","quantity":1}])"));
  EXPECT_EQ(body["unknown"], json::array({"NOPE"}));
}

TEST_F(HttpTest, GetManyAnswersDuplicatesOnce) {
  Seed("A", 1);
  Seed("B", 2);
  auto body = Call("GET", "/v1/inventory?sku=A&sku=B&sku=A&sku=X&sku=X").json();
  EXPECT_EQ(body["items"], json::parse(R"([{"sku":"A","quantity":1},{"sku":"B","quantity":2}])"));
  EXPECT_EQ(body["unknown"], json::array({"X"}));
}

TEST_F(HttpTest, GetManyWithoutSkuIs400BadQuery) {
  EXPECT_TRUE(IsError(Call("GET", "/v1/inventory"), 400, "bad_query"));
  EXPECT_TRUE(IsError(Call("GET", "/v1/inventory?"), 400, "bad_query"));
}

TEST_F(HttpTest, GetManyTakesUpToOneHundredSkusAndRefusesMore) {
  std::string query = "/v1/inventory?sku=S0";
  for (int i = 1; i < 100; ++i) {
    query += "&sku=S" + std::to_string(i);
  }
  auto reply = Call("GET", query);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["unknown"].size(), 100U);
  EXPECT_TRUE(IsError(Call("GET", query + "&sku=S100"), 400, "bad_query"));
}

TEST_F(HttpTest, GetManyWithAnUnknownParameterIs400BadQuery) {
  Seed("A", 1);
  EXPECT_TRUE(IsError(Call("GET", "/v1/inventory?sku=A&colour=red"), 400, "bad_query"));
}

TEST_F(HttpTest, GetManyWithAnInvalidSkuIs422NamingItsIndex) {
  EXPECT_TRUE(IsInvalid(Call("GET", "/v1/inventory?sku=A&sku=" + std::string(129, 'x')),
                        "sku_too_long", "sku[1]"));
  EXPECT_TRUE(
      IsInvalid(Call("GET", "/v1/inventory?sku=A&sku=B&sku=a%20b"), "sku_bad_character", "sku[2]"));
}

// ---- PUT /v1/inventory/{sku} -------------------------------------------------------------------

TEST_F(HttpTest, PutCreatesANewSkuAndItIsPersisted) {
  auto reply = Put("/v1/inventory/NEW", {{"quantity", 20}, {"request_id", "s1"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), json::parse(R"({"sku":"NEW","quantity":20,"replayed":false})"));
  EXPECT_EQ(RedisQuantity("NEW"), 20);
  EXPECT_EQ(Call("GET", "/v1/inventory/NEW").json()["quantity"], 20);
  Drain();
  EXPECT_EQ(DatabaseQuantity("NEW"), 20);
}

TEST_F(HttpTest, PutWithoutRequestIdSetsTheQuantityEveryTime) {
  for (int quantity : {5, 7, 5}) {
    auto reply = Put("/v1/inventory/A", {{"quantity", quantity}});
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.json()["quantity"], quantity);
    EXPECT_EQ(RedisQuantity("A"), quantity);
  }
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 5);
}

TEST_F(HttpTest, PutRepeatedWithItsRequestIdIsReplayedAndChangesNothing) {
  ASSERT_EQ(Put("/v1/inventory/A", {{"quantity", 9}, {"request_id", "s1"}}).status, 200);
  auto replay = Put("/v1/inventory/A", {{"quantity", 9}, {"request_id", "s1"}});
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.json(), json::parse(R"({"sku":"A","quantity":9,"replayed":true})"));
  EXPECT_EQ(StreamLength(), 1);
}

TEST_F(HttpTest, PutReusingARequestIdForAnotherQuantityIs409RequestConflict) {
  ASSERT_EQ(Put("/v1/inventory/A", {{"quantity", 9}, {"request_id", "s1"}}).status, 200);
  EXPECT_TRUE(IsError(Put("/v1/inventory/A", {{"quantity", 10}, {"request_id", "s1"}}), 409,
                      "request_conflict"));
  EXPECT_EQ(RedisQuantity("A"), 9);
}

TEST_F(HttpTest, PutOfZeroIsAllowed) {
  Seed("A", 4);
  auto reply = Put("/v1/inventory/A", {{"quantity", 0}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(RedisQuantity("A"), 0);
}

TEST_F(HttpTest, PutWithAnInvalidQuantityIs422NamingQuantity) {
  EXPECT_TRUE(
      IsInvalid(Put("/v1/inventory/A", {{"quantity", -1}}), "quantity_negative", "quantity"));
  EXPECT_TRUE(IsInvalid(Put("/v1/inventory/A", {{"quantity", core::kMaxStock + 1}}),
                        "quantity_too_large", "quantity"));
  EXPECT_TRUE(IsInvalid(Put("/v1/inventory/A", json::object()), "missing_field", "quantity"));
  EXPECT_TRUE(
      IsInvalid(Put("/v1/inventory/A", {{"request_id", "s1"}}), "missing_field", "quantity"));
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(HttpTest, PutWithAnInvalidRequestIdIs422NamingRequestId) {
  EXPECT_TRUE(IsInvalid(Put("/v1/inventory/A", {{"quantity", 1}, {"request_id", ""}}),
                        "request_id_empty", "request_id"));
  EXPECT_TRUE(
      IsInvalid(Put("/v1/inventory/A", {{"quantity", 1}, {"request_id", std::string(129, 'r')}}),
                "request_id_too_long", "request_id"));
  EXPECT_TRUE(IsInvalid(Put("/v1/inventory/A", {{"quantity", 1}, {"request_id", "r 1"}}),
                        "request_id_bad_character", "request_id"));
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(HttpTest, PutWithAnInvalidSkuIs422NamingSku) {
  EXPECT_TRUE(IsInvalid(Put("/v1/inventory/" + std::string(129, 'x'), {{"quantity", 1}}),
                        "sku_too_long", "sku"));
  EXPECT_EQ(StreamLength(), 0);
}

// ---- POST /v1/inventory/{sku}/restock ----------------------------------------------------------

TEST_F(HttpTest, RestockAddsToAKnownSku) {
  Seed("A", 10);
  auto reply = Post("/v1/inventory/A/restock", {{"quantity", 5}, {"request_id", "r1"}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), json::parse(R"({"sku":"A","quantity":15,"replayed":false})"));
  EXPECT_EQ(RedisQuantity("A"), 15);
}

TEST_F(HttpTest, RestockRepeatedWithItsRequestIdIsReplayedAndAddsOnce) {
  Seed("A", 10);
  ASSERT_EQ(Post("/v1/inventory/A/restock", {{"quantity", 5}, {"request_id", "r1"}}).status, 200);
  auto replay = Post("/v1/inventory/A/restock", {{"quantity", 5}, {"request_id", "r1"}});
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.json(), json::parse(R"({"sku":"A","quantity":15,"replayed":true})"));
  EXPECT_EQ(RedisQuantity("A"), 15);
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 15);
}

TEST_F(HttpTest, RestockWithoutRequestIdIs422MissingField) {
  Seed("A", 10);
  EXPECT_TRUE(
      IsInvalid(Post("/v1/inventory/A/restock", {{"quantity", 5}}), "missing_field", "request_id"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, RestockOfAnUnknownSkuIs404UnknownSku) {
  auto reply = Post("/v1/inventory/GHOST/restock", {{"quantity", 5}, {"request_id", "r1"}});
  EXPECT_TRUE(IsError(reply, 404, "unknown_sku"));
  EXPECT_EQ(reply.json()["error"]["sku"], "GHOST");
  EXPECT_EQ(RedisQuantity("GHOST"), std::nullopt);
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(HttpTest, RestockReusingARequestIdIs409RequestConflict) {
  Seed("A", 10);
  ASSERT_EQ(Post("/v1/inventory/A/restock", {{"quantity", 5}, {"request_id", "r1"}}).status, 200);
  EXPECT_TRUE(IsError(Post("/v1/inventory/A/restock", {{"quantity", 6}, {"request_id", "r1"}}), 409,
                      "request_conflict"));
  EXPECT_EQ(RedisQuantity("A"), 15);
}

TEST_F(HttpTest, RestockWithAnInvalidQuantityIs422NamingQuantity) {
  Seed("A", 10);
  const std::string target = "/v1/inventory/A/restock";
  EXPECT_TRUE(IsInvalid(Post(target, {{"quantity", 0}, {"request_id", "r1"}}),
                        "quantity_not_positive", "quantity"));
  EXPECT_TRUE(IsInvalid(Post(target, {{"quantity", core::kMaxStock + 1}, {"request_id", "r2"}}),
                        "quantity_too_large", "quantity"));
  EXPECT_TRUE(IsInvalid(Post(target, {{"request_id", "r3"}}), "missing_field", "quantity"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, RestockTakingTheStockPastTheMaximumIs422AndChangesNothing) {
  Seed("A", core::kMaxStock - 5);
  const std::string target = "/v1/inventory/A/restock";
  EXPECT_TRUE(IsInvalid(Post(target, {{"quantity", 10}, {"request_id", "r1"}}), "stock_too_large",
                        "quantity"));
  EXPECT_EQ(RedisQuantity("A"), core::kMaxStock - 5);
  EXPECT_EQ(Post(target, {{"quantity", 5}, {"request_id", "r2"}}).status, 200);
  EXPECT_EQ(RedisQuantity("A"), core::kMaxStock);
}

// ---- POST /v1/orders ---------------------------------------------------------------------------

TEST_F(HttpTest, OrderDeductsAndAnswers201WithLinesInSkuOrder) {
  Seed("A", 10);
  Seed("B", 5);
  auto reply = Order("o1", {{{"sku", "B"}, {"quantity", 2}}, {{"sku", "A"}, {"quantity", 3}}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["order_id"], "o1");
  EXPECT_EQ(body["status"], "deducted");
  EXPECT_EQ(body["lines"], json::parse(R"([{"sku":"A","quantity":3,"remaining":7},
                                           {"sku":"B","quantity":2,"remaining":3}])"));
  EXPECT_EQ(RedisQuantity("A"), 7);
  EXPECT_EQ(RedisQuantity("B"), 3);
}

TEST_F(HttpTest, OrderReplayAnswers200WithTheSameBody) {
  Seed("A", 10);
  const json lines = {{{"sku", "A"}, {"quantity", 3}}};
  auto first = Order("o1", lines);
  ASSERT_EQ(first.status, 201) << first.body;
  ASSERT_EQ(Order("o2", lines).status, 201);  // moves "remaining" on
  auto replay = Order("o1", lines);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.json(), first.json());
  EXPECT_EQ(RedisQuantity("A"), 4);
}

TEST_F(HttpTest, OrderReplayAfterCancelAnswersTheCurrentStatus) {
  Seed("A", 10);
  const json lines = {{{"sku", "A"}, {"quantity", 3}}};
  ASSERT_EQ(Order("o1", lines).status, 201);
  ASSERT_EQ(Call("POST", "/v1/orders/o1/cancel").status, 200);
  auto replay = Order("o1", lines);
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.json()["status"], "cancelled");
  EXPECT_EQ(replay.json()["order_id"], "o1");
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, OrderWithInsufficientStockIs409NamingTheShortLineAndChangesNothing) {
  Seed("A", 10);
  Seed("B", 5);
  auto reply = Order("o1", {{{"sku", "A"}, {"quantity", 2}}, {{"sku", "B"}, {"quantity", 6}}});
  EXPECT_TRUE(IsError(reply, 409, "insufficient_stock"));
  auto error = reply.json()["error"];
  EXPECT_EQ(error["sku"], "B");
  EXPECT_EQ(error["requested"], 6);
  EXPECT_EQ(error["available"], 5);
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(RedisQuantity("B"), 5);
  EXPECT_EQ(StreamLength(), 2);
  EXPECT_TRUE(IsError(Call("GET", "/v1/orders/o1"), 404, "unknown_order"));
}

TEST_F(HttpTest, OrderIdReusedWithOtherLinesIs409OrderConflict) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 1}}}).status, 201);
  auto reply = Order("o1", {{{"sku", "A"}, {"quantity", 2}}});
  EXPECT_TRUE(IsError(reply, 409, "order_conflict"));
  EXPECT_EQ(reply.json()["error"]["order_id"], "o1");
  EXPECT_EQ(RedisQuantity("A"), 9);
}

TEST_F(HttpTest, OrderWithAnUnknownSkuIs404UnknownSkuAndChangesNothing) {
  Seed("A", 10);
  auto reply = Order("o1", {{{"sku", "A"}, {"quantity", 1}}, {{"sku", "GHOST"}, {"quantity", 1}}});
  EXPECT_TRUE(IsError(reply, 404, "unknown_sku"));
  EXPECT_EQ(reply.json()["error"]["sku"], "GHOST");
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 1);
}

TEST_F(HttpTest, OrderWithoutLinesIs422NoLines) {
  EXPECT_TRUE(IsInvalid(Order("o1", json::array()), "no_lines", "lines"));
}

TEST_F(HttpTest, OrderWithTooManyLinesIs422TooManyLines) {
  json lines = json::array();
  for (int i = 0; i < 101; ++i) {
    lines.push_back({{"sku", "L" + std::to_string(i)}, {"quantity", 1}});
  }
  EXPECT_TRUE(IsInvalid(Order("o1", lines), "too_many_lines", "lines"));
}

TEST_F(HttpTest, OrderWithADuplicateSkuIs422NamingTheRepeatedLine) {
  Seed("A", 10);
  Seed("B", 10);
  auto reply = Order("o1", {{{"sku", "A"}, {"quantity", 1}},
                            {{"sku", "B"}, {"quantity", 1}},
                            {{"sku", "A"}, {"quantity", 2}}});
  EXPECT_TRUE(IsInvalid(reply, "duplicate_sku", "lines[2].sku"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, OrderWithAnInvalidSkuIs422NamingTheLine) {
  Seed("A", 10);
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 1}},
                                     {{"sku", "B"}, {"quantity", 1}},
                                     {{"sku", "a b"}, {"quantity", 1}}}),
                        "sku_bad_character", "lines[2].sku"));
  EXPECT_TRUE(
      IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 1}}, {{"sku", ""}, {"quantity", 1}}}),
                "sku_empty", "lines[1].sku"));
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", std::string(129, 's')}, {"quantity", 1}}}),
                        "sku_too_long", "lines[0].sku"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, OrderWithAnInvalidLineQuantityIs422NamingTheLine) {
  Seed("A", 10);
  Seed("B", 10);
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 0}}}), "quantity_not_positive",
                        "lines[0].quantity"));
  EXPECT_TRUE(
      IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 1}}, {{"sku", "B"}, {"quantity", -3}}}),
                "quantity_not_positive", "lines[1].quantity"));
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 1'000'001}}}),
                        "quantity_too_large", "lines[0].quantity"));
  EXPECT_EQ(StreamLength(), 2);
}

TEST_F(HttpTest, OrderWithAnInvalidOrderIdIs422NamingOrderId) {
  Seed("A", 10);
  const json lines = {{{"sku", "A"}, {"quantity", 1}}};
  EXPECT_TRUE(IsInvalid(Order("", lines), "order_id_empty", "order_id"));
  EXPECT_TRUE(IsInvalid(Order(std::string(129, 'o'), lines), "order_id_too_long", "order_id"));
  EXPECT_TRUE(IsInvalid(Order("o 1", lines), "order_id_bad_character", "order_id"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, OrderMissingAFieldIs422MissingFieldNamingIt) {
  Seed("A", 10);
  EXPECT_TRUE(IsInvalid(Post("/v1/orders", {{"lines", {{{"sku", "A"}, {"quantity", 1}}}}}),
                        "missing_field", "order_id"));
  EXPECT_TRUE(IsInvalid(Post("/v1/orders", {{"order_id", "o1"}}), "missing_field", "lines"));
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}}}), "missing_field", "lines[0].quantity"));
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", 1}}, {{"quantity", 1}}}),
                        "missing_field", "lines[1].sku"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, OrderWithAWrongTypeIs422InvalidTypeNamingTheField) {
  Seed("A", 10);
  const json lines = {{{"sku", "A"}, {"quantity", 1}}};
  EXPECT_TRUE(IsInvalid(Post("/v1/orders", {{"order_id", 5}, {"lines", lines}}), "invalid_type",
                        "order_id"));
  EXPECT_TRUE(
      IsInvalid(Post("/v1/orders", {{"order_id", "o1"}, {"lines", "A"}}), "invalid_type", "lines"));
  EXPECT_TRUE(
      IsInvalid(Order("o1", {{{"sku", 7}, {"quantity", 1}}}), "invalid_type", "lines[0].sku"));
  EXPECT_TRUE(IsInvalid(Order("o1", {{{"sku", "A"}, {"quantity", "2"}}}), "invalid_type",
                        "lines[0].quantity"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

// ---- GET /v1/orders/{order_id} -----------------------------------------------------------------

TEST_F(HttpTest, GetOrderAnswersItsLinesAndCurrentStatus) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 3}}}).status, 201);
  auto reply = Call("GET", "/v1/orders/o1");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["order_id"], "o1");
  EXPECT_EQ(body["status"], "deducted");
  ASSERT_EQ(body["lines"].size(), 1U);
  EXPECT_EQ(body["lines"][0]["sku"], "A");
  EXPECT_EQ(body["lines"][0]["quantity"], 3);
  ASSERT_EQ(Call("POST", "/v1/orders/o1/cancel").status, 200);
  EXPECT_EQ(Call("GET", "/v1/orders/o1").json()["status"], "cancelled");
}

TEST_F(HttpTest, GetUnknownOrderIs404UnknownOrder) {
  EXPECT_TRUE(IsError(Call("GET", "/v1/orders/never-placed"), 404, "unknown_order"));
}

TEST_F(HttpTest, GetOrderWithAnInvalidIdIs422) {
  EXPECT_TRUE(IsInvalid(Call("GET", "/v1/orders/" + std::string(129, 'o')), "order_id_too_long",
                        "order_id"));
  EXPECT_TRUE(IsInvalid(Call("GET", "/v1/orders/o%201"), "order_id_bad_character", "order_id"));
}

// ---- POST /v1/orders/{order_id}/cancel ---------------------------------------------------------

TEST_F(HttpTest, CancelReturnsTheStockAndAnswersCancelled) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 4}}}).status, 201);
  auto reply = Call("POST", "/v1/orders/o1/cancel");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), json::parse(R"({"order_id":"o1","status":"cancelled","replayed":false,
                                          "lines":[{"sku":"A","quantity":4,"remaining":10}]})"));
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, CancelRepeatedIsReplayedAndReturnsTheStockOnce) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 4}}}).status, 201);
  ASSERT_EQ(Call("POST", "/v1/orders/o1/cancel").status, 200);
  auto again = Call("POST", "/v1/orders/o1/cancel");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["replayed"], true);
  EXPECT_EQ(again.json()["status"], "cancelled");
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 3);
  Drain();
  EXPECT_EQ(DatabaseQuantity("A"), 10);
}

TEST_F(HttpTest, CancelIgnoresItsBody) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 4}}}).status, 201);
  auto reply = Call("POST", "/v1/orders/o1/cancel", "{not json at all");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(RedisQuantity("A"), 10);
}

TEST_F(HttpTest, CancelOfAnUnknownOrderIs404UnknownOrder) {
  EXPECT_TRUE(IsError(Call("POST", "/v1/orders/never-placed/cancel"), 404, "unknown_order"));
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(HttpTest, CancelAfterTheSkuWasDeletedIs404UnknownSku) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 4}}}).status, 201);
  Drain();
  Sql("DELETE FROM inventory WHERE sku = 'A'");  // the back office removes the product
  Redis({"DEL", "inventory:A"});
  auto reply = Call("POST", "/v1/orders/o1/cancel");
  EXPECT_TRUE(IsError(reply, 404, "unknown_sku"));
  EXPECT_EQ(reply.json()["error"]["sku"], "A");
  EXPECT_EQ(RedisQuantity("A"), std::nullopt);
}

// ---- status, health, metrics -------------------------------------------------------------------

TEST_F(HttpTest, StatusReportsBothSidesAndThePersisterLag) {
  Seed("A", 10);
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 1}}}).status, 201);
  auto reply = Call("GET", "/v1/status");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["redis"], "ok");
  EXPECT_EQ(body["database"], "ok");
  EXPECT_EQ(body["outbox"]["unapplied"], 0) << body;
  EXPECT_TRUE(body["outbox"]["cursor"].is_string()) << body;
  EXPECT_TRUE(body["syncer"].contains("leader")) << body;
  EXPECT_TRUE(body["syncer"]["problem"].is_null()) << body;
  EXPECT_TRUE(body.contains("last_reconcile")) << body;
  auto lag = body["persister"];
  EXPECT_EQ(lag["stream_length"], StreamLength());
  EXPECT_EQ(lag["unpersisted"], 2);
  EXPECT_TRUE(lag["pending"].is_number_integer()) << lag;
  EXPECT_TRUE(lag["undelivered"].is_number_integer()) << lag;
  EXPECT_TRUE(lag["oldest_unpersisted_age_ms"].is_number_integer()) << lag;
  EXPECT_GE(lag["oldest_unpersisted_age_ms"].get<std::int64_t>(), 0);

  Drain();
  lag = Call("GET", "/v1/status").json()["persister"];
  EXPECT_EQ(lag["unpersisted"], 0);
  EXPECT_EQ(lag["pending"], 0);
  EXPECT_EQ(lag["undelivered"], 0);
  EXPECT_EQ(lag["oldest_unpersisted_age_ms"], nullptr);
  EXPECT_EQ(lag["stream_length"], StreamLength());
}

// A cursor written for another database is a syncer problem in the status, and the backlog
// counted from it, which could say 0 while changes wait, is not given.
TEST_F(HttpTest, StatusReportsACursorThatDoesNotBelongToTheDatabase) {
  Seed("A", 10);
  Redis({"SET", "invsync:outbox:cursor", "0:1"});
  Redis({"SET", "invsync:outbox:database", "another-database"});
  auto reply = Call("GET", "/v1/status");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  ASSERT_TRUE(body["syncer"]["problem"].is_string()) << body;
  EXPECT_NE(body["syncer"]["problem"].get<std::string>().find("--reset-cursor"), std::string::npos)
      << body;
  EXPECT_TRUE(body["outbox"]["unapplied"].is_null()) << body;
  EXPECT_EQ(body["outbox"]["cursor_matches_database"], false) << body;
}

TEST_F(HttpTest, HealthzIsOk) {
  auto reply = Call("GET", "/healthz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json(), json::parse(R"({"status":"ok"})"));
}

TEST_F(HttpTest, ReadyzIsReadyWhenBothSidesAnswer) {
  auto reply = Call("GET", "/readyz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json(), json::parse(R"({"status":"ready","redis":"ok","database":"ok"})"));
}

// A syncer whose cursor belongs to another database's history applies no back-office change to
// Redis, but orders are still served correctly: the probes stay 200 and their bodies name the
// problem and the command that fixes it.
void ExpectNamesTheCursorMismatch(json body) {  // a copy: operator[] may add what is missing
  EXPECT_EQ(body["status"], "degraded") << body;
  ASSERT_TRUE(body["syncer"]["problem"].is_string()) << body;
  EXPECT_NE(body["syncer"]["problem"].get<std::string>().find("another-database"),
            std::string::npos)
      << body;
  EXPECT_EQ(body["syncer"]["fix"], "invsync reconcile --repair --reset-cursor") << body;
}

// /readyz checks the cursor against the database itself: every instance says so, whichever one
// runs the active syncer (here none does).
TEST_F(HttpTest, ReadyzStaysReadyButNamesACursorThatDoesNotBelongToTheDatabase) {
  Seed("A", 10);
  Redis({"SET", "invsync:outbox:cursor", "0:1"});
  Redis({"SET", "invsync:outbox:database", "another-database"});
  auto reply = Call("GET", "/readyz");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = reply.json();
  EXPECT_EQ(body["redis"], "ok");
  EXPECT_EQ(body["database"], "ok");
  ExpectNamesTheCursorMismatch(body);
  {
    auto conn = pool().Acquire();
    syncer::ResetCursor(*conn, store());
  }
  reply = Call("GET", "/readyz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.json(), json::parse(R"({"status":"ready","redis":"ok","database":"ok"})"));
}

// /healthz shows what this process's syncer found, from memory (no round trip per probe); once an
// operator has reset the cursor, the syncer resumes and /healthz is plain ok again.
TEST_F(HttpTest, HealthzStaysOkButNamesTheCursorMismatchItsSyncerFound) {
  Seed("A", 10);
  Redis({"SET", "invsync:outbox:cursor", "0:1"});
  Redis({"SET", "invsync:outbox:database", "another-database"});
  auto& syncer = Keep(std::make_unique<syncer::Syncer>(
      pool(), store(), syncer::SyncerOptions{.poll = 100ms, .max_backoff = 200ms}));
  api::HandlerOptions options;
  options.syncer_problem = [&syncer] { return syncer.Problem(); };
  HttpClient client(Serve(stock(), store(), pool(), TestServerOptions(), options));
  std::jthread running([&syncer](const std::stop_token& stop) { syncer.Run(stop); });
  auto healthz = [&] {
    auto reply = client.Send("GET", "/healthz");
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.json();
  };
  json body;
  ASSERT_TRUE(WaitFor([&] { return (body = healthz()).contains("syncer"); }, 30s)) << body;
  ExpectNamesTheCursorMismatch(body);
  {
    auto conn = pool().Acquire();
    syncer::ResetCursor(*conn, store());
  }
  ASSERT_TRUE(WaitFor([&] { return (body = healthz()) == json::parse(R"({"status":"ok"})"); }, 30s))
      << body;
}

// A client chooses the method: unknown ones share one label, so they cannot add series without end.
TEST_F(HttpTest, UnknownMethodsShareOneMetricsLabel) {
  RawConnection raw(port_);
  std::string batch;
  for (int i = 0; i < 50; ++i) {
    batch += RawRequest("M" + std::to_string(100000 + i), "/healthz");
  }
  ASSERT_TRUE(raw.Write(batch));
  for (int i = 0; i < 50; ++i) {
    auto reply = raw.ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 405);
  }
  const auto metrics = Call("GET", "/metrics").body;
  EXPECT_EQ(metrics.find("M100000"), std::string::npos);
  EXPECT_NE(metrics.find("method=\"other\""), std::string::npos) << metrics;
}

TEST_F(HttpTest, MetricsArePrometheusText) {
  ASSERT_EQ(Call("GET", "/healthz").status, 200);
  auto reply = Call("GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(reply.Header("Content-Type").starts_with("text/plain"))
      << reply.Header("Content-Type");
  EXPECT_NE(reply.body.find("# TYPE "), std::string::npos) << reply.body;
}

// ---- X-Request-Id ------------------------------------------------------------------------------

TEST_F(HttpTest, RequestIdIsEchoedOnSuccessAndOnErrors) {
  const std::string longest(128, 'q');
  EXPECT_EQ(Call("GET", "/healthz", "", {{"X-Request-Id", "abc-123"}}).Header("X-Request-Id"),
            "abc-123");
  EXPECT_EQ(Call("GET", "/healthz", "", {{"X-Request-Id", longest}}).Header("X-Request-Id"),
            longest);
  EXPECT_EQ(
      Call("GET", "/v1/inventory/GHOST", "", {{"X-Request-Id", "e-404"}}).Header("X-Request-Id"),
      "e-404");
  EXPECT_EQ(Call("DELETE", "/healthz", "", {{"X-Request-Id", "e-405"}}).Header("X-Request-Id"),
            "e-405");
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", R"({"quantity":-1})", {{"X-Request-Id", "e-422"}})
                .Header("X-Request-Id"),
            "e-422");
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", "{", {{"X-Request-Id", "e-400"}}).Header("X-Request-Id"),
            "e-400");
}

TEST_F(HttpTest, InvalidRequestIdIsReplacedByAGeneratedOne) {
  for (const std::string& sent : {std::string(129, 'q'), std::string("a b"), std::string("")}) {
    SCOPED_TRACE("sent \"" + sent + "\"");
    auto id = Call("GET", "/healthz", "", {{"X-Request-Id", sent}}).Header("X-Request-Id");
    EXPECT_FALSE(id.empty());
    EXPECT_NE(id, sent);
  }
}

TEST_F(HttpTest, MissingRequestIdIsGeneratedAnewForEachRequest) {
  auto first = Call("GET", "/healthz").Header("X-Request-Id");
  auto second = Call("GET", "/healthz").Header("X-Request-Id");
  EXPECT_FALSE(first.empty());
  EXPECT_NE(first, second);
}

// ---- transport errors --------------------------------------------------------------------------

TEST_F(HttpTest, UnknownRouteIs404NotFound) {
  EXPECT_TRUE(IsError(Call("GET", "/v2/inventory/A"), 404, "not_found"));
  EXPECT_TRUE(IsError(Call("GET", "/v1/inventory/a/b"), 404, "not_found"));
  EXPECT_TRUE(IsError(Call("GET", "/"), 404, "not_found"));
  EXPECT_TRUE(IsError(Call("POST", "/v1/orders/o1/refund"), 404, "not_found"));
}

TEST_F(HttpTest, WrongMethodIs405ListingTheAllowedOnes) {
  struct Case {
    const char* method;
    const char* target;
    std::set<std::string> allowed;
  };
  const std::vector<Case> cases = {
      {"DELETE", "/v1/inventory/A", {"GET", "PUT"}},
      {"POST", "/v1/inventory/A", {"GET", "PUT"}},
      {"PUT", "/v1/inventory", {"GET"}},
      {"GET", "/v1/inventory/A/restock", {"POST"}},
      {"GET", "/v1/orders", {"POST"}},
      {"DELETE", "/v1/orders/o1", {"GET"}},
      {"GET", "/v1/orders/o1/cancel", {"POST"}},
      {"POST", "/v1/status", {"GET"}},
      {"POST", "/healthz", {"GET"}},
      {"PUT", "/readyz", {"GET"}},
      {"DELETE", "/metrics", {"GET"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto reply = Call(c.method, c.target);
    EXPECT_TRUE(IsError(reply, 405, "method_not_allowed"));
    EXPECT_EQ(Methods(reply.Header("Allow")), c.allowed) << "Allow: " << reply.Header("Allow");
  }
  EXPECT_EQ(StreamLength(), 0);
}

TEST_F(HttpTest, BodyThatIsNotAJsonObjectIs400MalformedJson) {
  Seed("A", 10);
  for (const char* body : {"{\"quantity\":5", "quantity=5", "{'quantity':5}", "[1]", "5",
                           "\"text\"", "null", "{\"quantity\":5}{}", "{\"quantity\":5,}"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(IsError(Call("PUT", "/v1/inventory/A", body), 400, "malformed_json"));
  }
  EXPECT_TRUE(IsError(Call("PUT", "/v1/inventory/A", "", {{"Content-Type", "application/json"}}),
                      400, "malformed_json"));
  EXPECT_EQ(RedisQuantity("A"), 10);
  EXPECT_EQ(StreamLength(), 1);
}

// Depth counts the top-level object as level 1.
TEST_F(HttpTest, NestingDeeperThan32LevelsIs400MalformedJson) {
  auto nested = [](int levels) {  // {"quantity":1,"x":[[...]]} with `levels` levels in all
    return R"({"quantity":1,"request_id":"d)" + std::to_string(levels) + R"(","x":)" +
           std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", nested(32)).status, 200);
  EXPECT_TRUE(IsError(Call("PUT", "/v1/inventory/A", nested(33)), 400, "malformed_json"));
  EXPECT_TRUE(IsError(Call("PUT", "/v1/inventory/A", nested(1000)), 400, "malformed_json"));
  EXPECT_EQ(StreamLength(), 1);
}

TEST_F(HttpTest, BodyOverTheLimitIs413AndTheConnectionIsClosed) {
  Seed("A", 10);
  auto padded = [](std::size_t size) {  // a valid body of exactly `size` bytes
    std::string head = R"({"quantity":3,"pad":")";
    return head + std::string(size - head.size() - 2, 'p') + "\"}";
  };
  const std::size_t limit = 64 * 1024;
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", padded(limit)).status, 200);
  EXPECT_EQ(RedisQuantity("A"), 3);

  RawConnection raw(port_);
  auto reply = raw.WriteAndReadReply(
      RawRequest("PUT", "/v1/inventory/A", padded(limit + 1), {{"X-Request-Id", "too-big-1"}}));
  ASSERT_TRUE(reply.has_value()) << "no response to an oversized body";
  EXPECT_TRUE(IsError(*reply, 413, "body_too_large"));
  EXPECT_EQ(reply->Header("X-Request-Id"), "too-big-1");  // the header section was read whole
  EXPECT_TRUE(raw.WaitClosed(2s)) << "connection left open after 413";
  EXPECT_EQ(RedisQuantity("A"), 3);
  EXPECT_EQ(Call("GET", "/v1/inventory/A").status, 200);
}

TEST_F(HttpTest, BodyWithAnotherContentTypeIs415) {
  Seed("A", 10);
  const std::string body = R"({"quantity":3})";
  EXPECT_TRUE(IsError(Call("PUT", "/v1/inventory/A", body, {{"Content-Type", "text/plain"}}), 415,
                      "unsupported_media_type"));
  EXPECT_TRUE(IsError(
      Call("PUT", "/v1/inventory/A", body, {{"Content-Type", "application/x-www-form-urlencoded"}}),
      415, "unsupported_media_type"));
  RawConnection raw(port_);  // no Content-Type at all
  ASSERT_TRUE(raw.Write("PUT /v1/inventory/A HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
  auto reply = raw.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(IsError(*reply, 415, "unsupported_media_type"));
  EXPECT_EQ(RedisQuantity("A"), 10);

  auto charset =
      Call("PUT", "/v1/inventory/A", body, {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(charset.status, 200) << charset.body;
  EXPECT_EQ(RedisQuantity("A"), 3);
}

// ---- connections -------------------------------------------------------------------------------

TEST_F(HttpTest, KeepAliveServesManyRequestsOnOneConnection) {
  EXPECT_EQ(Put("/v1/inventory/A", {{"quantity", 10}}).status, 200);
  EXPECT_EQ(Call("GET", "/v1/inventory/A").status, 200);
  EXPECT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 1}}}).status, 201);
  EXPECT_EQ(Call("GET", "/v1/orders/o1").status, 200);
  EXPECT_EQ(Call("GET", "/v1/inventory/GHOST").status, 404);
  EXPECT_EQ(Put("/v1/inventory/A", {{"quantity", -1}}).status, 422);
  EXPECT_EQ(Call("PUT", "/v1/inventory/A", "{").status, 400);
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(client_->connections_opened(), 1);
  EXPECT_TRUE(client_->connected());
}

TEST_F(HttpTest, ConnectionCloseIsHonoured) {
  RawConnection raw(port_);
  ASSERT_TRUE(raw.Write(RawRequest("GET", "/healthz", "", {{"Connection", "close"}})));
  auto reply = raw.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(raw.WaitClosed(2s));
}

TEST_F(HttpTest, PipelinedRequestsAreAnsweredInOrder) {
  Seed("A", 1);
  Seed("B", 2);
  RawConnection raw(port_);
  std::string batch;
  const std::vector<std::string> targets = {"/v1/inventory/A", "/v1/inventory/B", "/healthz",
                                            "/v1/inventory/GHOST", "/v1/inventory/A"};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    batch += RawRequest("GET", targets[i], "", {{"X-Request-Id", "p" + std::to_string(i)}});
  }
  ASSERT_TRUE(raw.Write(batch));  // one write: the requests arrive back to back
  const std::vector<int> statuses = {200, 200, 200, 404, 200};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    SCOPED_TRACE(targets[i]);
    auto reply = raw.ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->Header("X-Request-Id"), "p" + std::to_string(i));
    EXPECT_EQ(reply->status, statuses[i]);
  }
}

// HEAD is GET without the body: the same status and headers (Content-Length included), and the
// next answer on the connection comes right after them. A body after the HEAD's headers would be
// read by the client as the start of the next answer.
TEST_F(HttpTest, HeadIsAnsweredLikeGetWithoutTheBody) {
  Seed("A", 5);
  RawConnection raw(port_);
  ASSERT_TRUE(raw.Write(RawRequest("HEAD", "/v1/inventory/A") +
                        RawRequest("GET", "/v1/inventory/A", "", {{"Connection", "close"}})));
  auto answer = raw.ReadUntilClosed(3s);
  ASSERT_TRUE(answer.closed) << answer.data;
  const auto head_end = answer.data.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << answer.data;
  const std::string head = answer.data.substr(0, head_end + 4);
  const std::string rest = answer.data.substr(head_end + 4);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 ")) << head;
  ASSERT_TRUE(rest.starts_with("HTTP/1.1 200 ")) << "after the HEAD's headers: " << rest;
  const auto get_body = rest.substr(rest.find("\r\n\r\n") + 4);
  EXPECT_EQ(json::parse(get_body)["quantity"], 5);
  EXPECT_NE(head.find("Content-Length: " + std::to_string(get_body.size()) + "\r\n"),
            std::string::npos)
      << head;
}

// A client that sends `Expect: 100-continue` waits for "100 Continue" before it sends the body;
// one that sends the body at once gets no interim answer.
TEST_F(HttpTest, AClientWaitingForContinueGetsItAndThenItsAnswer) {
  Seed("A", 5);
  const std::string body = R"({"order_id":"o-continue","lines":[{"sku":"A","quantity":1}]})";
  const HeaderList headers = {{"Content-Type", "application/json"},
                              {"Content-Length", std::to_string(body.size())},
                              {"Expect", "100-continue"}};
  RawConnection raw(port_);
  ASSERT_TRUE(raw.Write(RawRequest("POST", "/v1/orders", "", headers)));
  auto interim = raw.ReadReply(2s);
  ASSERT_TRUE(interim.has_value()) << "no 100 Continue";
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(raw.Write(body));
  auto reply = raw.ReadReply(5s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 201) << reply->body;
  EXPECT_EQ(RedisQuantity("A"), 4);

  const std::string again = R"({"order_id":"o-at-once","lines":[{"sku":"A","quantity":1}]})";
  RawConnection at_once(port_);
  ASSERT_TRUE(at_once.Write(
      RawRequest("POST", "/v1/orders", again,
                 {{"Content-Type", "application/json"}, {"Expect", "100-continue"}})));
  auto direct = at_once.ReadReply(5s);
  ASSERT_TRUE(direct.has_value());
  EXPECT_EQ(direct->status, 201) << direct->body;
  EXPECT_EQ(RedisQuantity("A"), 3);
}

// With Nagle's algorithm on the server's socket, the second answer of a pipelined batch waits for
// the client to acknowledge the first, and a delayed ACK holds that for ~40 ms: every batch but
// the first (a new connection acknowledges at once for a while) stalled. The fastest of several
// batches after the first tells a stall (always there) from a busy machine.
TEST_F(HttpTest, PipelinedAnswersAreNotHeldBackByNagle) {
  Seed("A", 1);
  RawConnection raw(port_);
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    batch += RawRequest("GET", "/v1/inventory/A");
  }
  auto fastest = std::chrono::steady_clock::duration::max();
  for (int round = 0; round < 7; ++round) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(raw.Write(batch));
    for (int i = 0; i < 20; ++i) {
      auto reply = raw.ReadReply();
      ASSERT_TRUE(reply.has_value());
      ASSERT_EQ(reply->status, 200);
    }
    if (round > 0) {
      fastest = std::min(fastest, std::chrono::steady_clock::now() - start);
    }
  }
  EXPECT_LT(fastest, 30ms) << "fastest of 6 batches of 20 pipelined reads (after a first) took "
                           << std::chrono::duration<double, std::milli>(fastest).count() << " ms";
}

TEST_F(HttpTest, PipelinedAnswersKeepTheirOrderWhenTheFirstIsSlow) {
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('SLOW', 1)");
  Seed("FAST", 2);
  auto& counting = Keep(std::make_unique<CountingStore>(store()));
  counting.read_delay = 300ms;
  auto& service = Keep(NewService(counting));
  const std::uint16_t port = Serve(service, counting, pool());
  RawConnection raw(port);
  ASSERT_TRUE(
      raw.Write(RawRequest("GET", "/v1/inventory/SLOW") + RawRequest("GET", "/v1/inventory/FAST")));
  auto first = raw.ReadReply();
  auto second = raw.ReadReply();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->json()["sku"], "SLOW");
  EXPECT_EQ(second->json()["sku"], "FAST");
}

// ---- outages and deadlines ---------------------------------------------------------------------

TEST_F(HttpTest, RedisUnreachableIs503WithRetryAfter) {
  auto& dead_redis =
      Keep(std::make_unique<redis::Pool>(redis::Endpoint::Parse("redis://127.0.0.1:1"), 4, 200ms));
  auto& service =
      Keep(std::make_unique<core::StockService>(dead_redis, store(), core::Keys(), stock_options));
  HttpClient client(Serve(service, store(), dead_redis));
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"GET", "/v1/inventory/A"},       {"GET", "/v1/inventory?sku=A&sku=B"},
      {"PUT", "/v1/inventory/A"},       {"POST", "/v1/inventory/A/restock"},
      {"POST", "/v1/orders"},           {"GET", "/v1/orders/o1"},
      {"POST", "/v1/orders/o1/cancel"},
  };
  const std::map<std::string, std::string> bodies = {
      {"/v1/inventory/A", R"({"quantity":1})"},
      {"/v1/inventory/A/restock", R"({"quantity":1,"request_id":"r1"})"},
      {"/v1/orders", R"({"order_id":"o1","lines":[{"sku":"A","quantity":1}]})"},
  };
  for (const auto& [method, target] : calls) {
    SCOPED_TRACE(method + " " + target);
    std::string body = method == "GET" || !bodies.contains(target) ? "" : bodies.at(target);
    auto reply = client.Send(method, target, body);
    EXPECT_TRUE(IsError(reply, 503, "unavailable"));
    EXPECT_EQ(reply.Header("Retry-After"), "1");
  }
}

TEST_F(HttpTest, ReadinessAndStatusReportAnUnreachableRedis) {
  auto& dead_redis =
      Keep(std::make_unique<redis::Pool>(redis::Endpoint::Parse("redis://127.0.0.1:1"), 4, 200ms));
  auto& service =
      Keep(std::make_unique<core::StockService>(dead_redis, store(), core::Keys(), stock_options));
  HttpClient client(Serve(service, store(), dead_redis));
  auto ready = client.Send("GET", "/readyz");
  EXPECT_TRUE(IsError(ready, 503, "not_ready"));
  EXPECT_EQ(ready.json()["error"]["redis"], "unreachable");
  EXPECT_EQ(ready.json()["error"]["database"], "ok");
  auto status = client.Send("GET", "/v1/status");
  EXPECT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(status.json()["redis"], "unreachable");
  EXPECT_EQ(status.json()["database"], "ok");
  EXPECT_EQ(client.Send("GET", "/healthz").status, 200);
}

TEST_F(HttpTest, DatabaseUnreachableIs503ForUncachedReadsOnly) {
  Seed("CACHED", 7);
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('UNCACHED', 3)");
  auto& dead_db =
      Keep(std::make_unique<db::PostgresStore>("postgresql://invsync@127.0.0.1:1/invsync", 2));
  auto& service = Keep(NewService(dead_db));
  HttpClient client(Serve(service, dead_db, pool()));
  auto uncached = client.Send("GET", "/v1/inventory/UNCACHED");
  EXPECT_TRUE(IsError(uncached, 503, "unavailable"));
  EXPECT_EQ(uncached.Header("Retry-After"), "1");
  auto cached = client.Send("GET", "/v1/inventory/CACHED");
  EXPECT_EQ(cached.status, 200) << cached.body;
  EXPECT_EQ(client
                .Send("POST", "/v1/orders",
                      R"({"order_id":"o1","lines":[{"sku":"CACHED","quantity":1}]})")
                .status,
            201);
  auto ready = client.Send("GET", "/readyz");
  EXPECT_TRUE(IsError(ready, 503, "not_ready"));
  EXPECT_EQ(ready.json()["error"]["redis"], "ok");
  EXPECT_EQ(ready.json()["error"]["database"], "unreachable");
  EXPECT_EQ(client.Send("GET", "/v1/status").json()["database"], "unreachable");
}

TEST_F(HttpTest, CallSlowerThanTheDeadlineIs504DeadlineExceeded) {
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('SLOW', 5)");
  auto& counting = Keep(std::make_unique<CountingStore>(store()));
  counting.read_delay = 1500ms;
  auto read_done = std::make_shared<std::atomic<bool>>(false);
  counting.after_read = [read_done] { *read_done = true; };
  auto& service = Keep(NewService(counting));
  auto options = TestServerOptions();
  options.request_deadline = 200ms;
  HttpClient client(Serve(service, counting, pool(), options));
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.Send("GET", "/v1/inventory/SLOW");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(IsError(reply, 504, "deadline_exceeded"));
  EXPECT_LT(elapsed, 1000ms) << "the 504 should come at the deadline, not when the call ends";
  EXPECT_EQ(client.Send("GET", "/healthz").status, 200);
  // Let the abandoned call end before the server stops (Stop would wait for it).
  EXPECT_TRUE(WaitFor([&] { return read_done->load(); }, 5s));
}

TEST_F(HttpTest, UnexpectedFailureIs500Internal) {
  // A quantity no script can compute with: the service refuses it as corrupt data.
  Redis({"HSET", "inventory:BROKEN", "product_id", "BROKEN", "quantity", "twelve"});
  auto reply = Order("o1", {{{"sku", "BROKEN"}, {"quantity", 1}}});
  EXPECT_TRUE(IsError(reply, 500, "internal"));
  EXPECT_EQ(StreamLength(), 0);
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

// ---- the flash sale ----------------------------------------------------------------------------

TEST_F(HttpTest, FlashSaleThroughHttpSellsExactlyTheStock) {
  constexpr int kStock = 10'000;
  constexpr int kBuyers = 64;
  ASSERT_EQ(Put("/v1/inventory/HOT", {{"quantity", kStock}, {"request_id", "seed"}}).status, 200);
  std::atomic<int> sold{0};
  std::atomic<int> sold_out{0};
  std::atomic<int> unexpected{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < kBuyers; ++t) {
    buyers.emplace_back([&, t] {
      HttpClient client(port_, 30s);
      for (int n = 0;; ++n) {
        const std::string body = R"({"order_id":"b)" + std::to_string(t) + "-" + std::to_string(n) +
                                 R"(","lines":[{"sku":"HOT","quantity":1}]})";
        auto reply = client.Send("POST", "/v1/orders", body);
        if (reply.status == 201) {
          ++sold;
          unexpected += reply.json()["lines"][0]["remaining"].get<std::int64_t>() < 0 ? 1 : 0;
          continue;
        }
        if (IsError(reply, 409, "insufficient_stock") && reply.json()["error"]["available"] == 0) {
          ++sold_out;
        } else {
          ADD_FAILURE() << "unexpected answer " << reply.status << " " << reply.body;
          ++unexpected;
        }
        return;
      }
    });
  }
  buyers.clear();
  EXPECT_EQ(sold.load(), kStock);
  EXPECT_EQ(sold_out.load(), kBuyers);
  EXPECT_EQ(unexpected.load(), 0);
  Drain();
  EXPECT_EQ(RedisQuantity("HOT"), 0);
  EXPECT_EQ(DatabaseQuantity("HOT"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM invsync_ledger WHERE kind = 'deduct'"), sold.load());
}

}  // namespace
}  // namespace invsync::testing
