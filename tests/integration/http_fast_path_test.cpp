// Cached reads and orders answered on the I/O threads with the asynchronous Redis client (the
// fast path), against real Redis and PostgreSQL: what it answers itself, what it hands to the
// worker path (cache misses), pipelined orders from many connections, NOSCRIPT after SCRIPT
// FLUSH, a Redis restart under load, a stalled Redis, and shutdown with a call in flight.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/handlers.hpp"
#include "api/server.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "servers.hpp"

namespace invsync::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string OrderBody(const std::string& order_id, const json& lines) {
  return json{{"order_id", order_id}, {"lines", lines}}.dump();
}

class HttpFastPathTest : public ServersTest {
 protected:
  static api::ServerOptions Options() {
    return {.listen = "127.0.0.1:0", .io_threads = 2, .shutdown_grace = 3s};
  }

  void Start(api::ServerOptions options = Options()) {
    handlers_ = std::make_unique<api::Handlers>(stock(), store(), pool(), api::HandlerOptions{});
    server_ = std::make_unique<api::Server>(options, *handlers_);
    port_ = server_->Start();
    client_ = std::make_unique<HttpClient>(port_);
    // Until its connections are made, an I/O thread hands everything to the workers.
    ASSERT_TRUE(WaitFor([&] { return server_->ReadyRedisConnections() == 2; }, 5s));
  }

  void TearDown() override {
    client_.reset();
    if (server_) {
      server_->Stop();
    }
  }

  void Seed(const std::string& sku, std::int64_t quantity) {
    ASSERT_EQ(stock().Set(sku, quantity, "seed-" + sku).status, core::StockStatus::kOk);
  }

  Reply Get(const std::string& sku) { return client_->Send("GET", "/v1/inventory/" + sku); }
  Reply Order(const std::string& order_id, const json& lines) {
    return client_->Send("POST", "/v1/orders", OrderBody(order_id, lines));
  }

  /// invsync_http_fast_path_total{outcome="..."} as /metrics shows it now.
  std::int64_t FastPath(const std::string& outcome) {
    const std::string body = client_->Send("GET", "/metrics").body;
    const std::string prefix = "invsync_http_fast_path_total{outcome=\"" + outcome + "\"} ";
    const auto at = body.find(prefix);
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + prefix.size()));
  }

  std::uint16_t port_ = 0;
  std::unique_ptr<HttpClient> client_;
  std::unique_ptr<api::Handlers> handlers_;
  std::unique_ptr<api::Server> server_;
};

TEST_F(HttpFastPathTest, CachedReadIsAnsweredWithoutAWorker) {
  Seed("A", 5);
  Start();
  auto reply = Get("A");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), (json{{"sku", "A"}, {"product_id", "A"}, {"quantity", 5}}));
  EXPECT_EQ(FastPath("answered"), 1);
  EXPECT_EQ(FastPath("handed_to_worker"), 0);
}

TEST_F(HttpFastPathTest, ReadOfAnUncachedSkuIsFilledByTheWorkerPathThenServedFast) {
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('COLD', 9)");
  Start();
  auto first = Get("COLD");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["quantity"], 9);
  EXPECT_EQ(FastPath("handed_to_worker"), 1);
  EXPECT_EQ(RedisQuantity("COLD"), 9);
  EXPECT_EQ(Get("COLD").json()["quantity"], 9);
  EXPECT_EQ(FastPath("answered"), 1);
  EXPECT_TRUE(IsError(Get("GHOST"), 404, "unknown_sku"));
  EXPECT_EQ(FastPath("handed_to_worker"), 2);
}

TEST_F(HttpFastPathTest, OrderOfAnUncachedSkuIsLoadedByTheWorkerPathAndPlaced) {
  Sql("INSERT INTO inventory (sku, quantity) VALUES ('COLD', 9)");
  Start();
  auto reply = Order("o1", {{{"sku", "COLD"}, {"quantity", 4}}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.json()["lines"][0]["remaining"], 5);
  EXPECT_EQ(FastPath("handed_to_worker"), 1);
  EXPECT_EQ(Order("o2", {{{"sku", "COLD"}, {"quantity", 1}}}).status, 201);
  EXPECT_EQ(FastPath("answered"), 1);
  EXPECT_EQ(RedisQuantity("COLD"), 4);
}

TEST_F(HttpFastPathTest, EveryOrderOutcomeOfACachedSkuIsAnsweredWithoutAWorker) {
  Seed("A", 3);
  Seed("B", 1);
  Start();
  const json lines = {{{"sku", "B"}, {"quantity", 1}}, {{"sku", "A"}, {"quantity", 2}}};
  auto placed = Order("o1", lines);
  ASSERT_EQ(placed.status, 201) << placed.body;
  EXPECT_EQ(placed.json(), (json{{"order_id", "o1"},
                                 {"status", "deducted"},
                                 {"lines",
                                  {{{"sku", "A"}, {"quantity", 2}, {"remaining", 1}},
                                   {{"sku", "B"}, {"quantity", 1}, {"remaining", 0}}}}}));
  auto replay = Order("o1", lines);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.json(), placed.json());
  EXPECT_TRUE(IsError(Order("o1", {{{"sku", "A"}, {"quantity", 1}}}), 409, "order_conflict"));
  auto short_reply = Order("o2", {{{"sku", "A"}, {"quantity", 2}}});
  ASSERT_TRUE(IsError(short_reply, 409, "insufficient_stock"));
  EXPECT_EQ(short_reply.json()["error"]["sku"], "A");
  EXPECT_EQ(short_reply.json()["error"]["requested"], 2);
  EXPECT_EQ(short_reply.json()["error"]["available"], 1);
  EXPECT_EQ(FastPath("answered"), 4);
  EXPECT_EQ(FastPath("handed_to_worker"), 0);
  EXPECT_EQ(RedisQuantity("A"), 1);
  EXPECT_EQ(RedisQuantity("B"), 0);
}

TEST_F(HttpFastPathTest, InvalidOrdersAreAnsweredByTheWorkerPathAsBefore) {
  Seed("A", 3);
  Start();
  EXPECT_TRUE(IsInvalid(Order("o1", json::array()), "no_lines", "lines"));
  EXPECT_TRUE(IsError(client_->Send("POST", "/v1/orders", "{"), 400, "malformed_json"));
  EXPECT_EQ(FastPath("answered"), 0);
  EXPECT_EQ(RedisQuantity("A"), 3);
}

TEST_F(HttpFastPathTest, OrdersAfterScriptFlushLoadTheScriptAgain) {
  Seed("A", 10);
  Start();
  ASSERT_EQ(Order("o1", {{{"sku", "A"}, {"quantity", 1}}}).status, 201);
  Redis({"SCRIPT", "FLUSH"});
  auto reply = Order("o2", {{{"sku", "A"}, {"quantity", 2}}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.json()["lines"][0]["remaining"], 7);
  EXPECT_EQ(Order("o3", {{{"sku", "A"}, {"quantity", 3}}}).status, 201);
  EXPECT_EQ(FastPath("answered"), 3);
  EXPECT_EQ(RedisQuantity("A"), 4);
  EXPECT_EQ(Redis({"XLEN", "invsync:events"}).AsInteger(), 4);  // the seed and three orders
}

// 48 connections each send orders eight at a time, pipelined, of one or two lines over two
// SKUs, until the stock runs out: every unit answered as sold left Redis and reached the
// database, and no stock went below zero.
TEST_F(HttpFastPathTest, PipelinedOrdersFromManyConnectionsSellNoMoreThanTheStock) {
  const std::map<std::string, std::int64_t> initial = {{"A", 2000}, {"B", 1500}};
  for (const auto& [sku, quantity] : initial) {
    Seed(sku, quantity);
  }
  Start();
  constexpr int kConnections = 48;
  constexpr int kBatch = 8;
  std::mutex mutex;
  std::map<std::string, std::int64_t> sold;
  std::atomic<int> unexpected{0};
  std::vector<std::jthread> buyers;
  for (int c = 0; c < kConnections; ++c) {
    buyers.emplace_back([&, c] {
      RawConnection raw(port_);
      std::mt19937 random(static_cast<unsigned>(c));
      for (int round = 0, refused = 0; refused < kBatch && round < 200; ++round) {
        std::string batch;
        std::vector<json> orders;
        for (int i = 0; i < kBatch; ++i) {
          json lines = json::array();
          if (random() % 3 != 0) {
            lines.push_back({{"sku", "A"}, {"quantity", 1 + random() % 3}});
          }
          if (lines.empty() || random() % 2 == 0) {
            lines.push_back({{"sku", "B"}, {"quantity", 1 + random() % 3}});
          }
          const std::string id = fmt::format("c{}-{}-{}", c, round, i);
          batch += RawRequest("POST", "/v1/orders", OrderBody(id, lines));
          orders.push_back(lines);
        }
        if (!raw.Write(batch)) {
          ++unexpected;
          return;
        }
        refused = 0;
        for (int i = 0; i < kBatch; ++i) {
          auto reply = raw.ReadReply();
          if (!reply) {
            ++unexpected;
            return;
          }
          if (reply->status == 201) {
            const json body = reply->json();
            std::lock_guard lock(mutex);
            for (const auto& line : body["lines"]) {
              sold[line["sku"]] += line["quantity"].get<std::int64_t>();
              unexpected += line["remaining"].get<std::int64_t>() < 0 ? 1 : 0;
            }
          } else if (IsError(*reply, 409, "insufficient_stock")) {
            ++refused;
          } else {
            ADD_FAILURE() << reply->status << " " << reply->body;
            ++unexpected;
          }
        }
      }
    });
  }
  buyers.clear();
  EXPECT_EQ(unexpected.load(), 0);
  for (const auto& [sku, quantity] : initial) {
    SCOPED_TRACE(sku);
    const auto left = RedisQuantity(sku);
    ASSERT_TRUE(left.has_value());
    EXPECT_GE(*left, 0);
    EXPECT_LT(*left, quantity / 10);  // demand exceeded the stock
    EXPECT_EQ(sold[sku], quantity - *left);
  }
  EXPECT_EQ(FastPath("handed_to_worker"), 0);
  Drain();
  for (const auto& [sku, quantity] : initial) {
    EXPECT_EQ(DatabaseQuantity(sku), RedisQuantity(sku)) << sku;
  }
}

// Orders keep coming while Redis stops and starts again. Each is answered 201 (sold), 409
// (sold out) or 503/504 (outcome unknown); once Redis is back the unknown ones are sent again
// with their order ids, and then every unit that left stock belongs to exactly one answered
// order.
TEST_F(HttpFastPathTest, RedisRestartUnderLoadGives503sThenRecoversWithNothingLost) {
  constexpr std::int64_t kStock = 1'000'000;
  Seed("HOT", kStock);
  Start();
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::int64_t sold = 0;
  std::vector<std::string> unknown;
  std::atomic<int> unavailable{0};
  std::vector<std::jthread> buyers;
  for (int t = 0; t < 8; ++t) {
    buyers.emplace_back([&, t] {
      HttpClient client(port_, 10s);
      for (int n = 0; !stop; ++n) {
        const std::string id = fmt::format("r{}-{}", t, n);
        Reply reply;
        try {
          reply =
              client.Send("POST", "/v1/orders", OrderBody(id, {{{"sku", "HOT"}, {"quantity", 1}}}));
        } catch (const std::exception& error) {
          ADD_FAILURE() << "no answer: " << error.what();
          return;
        }
        std::lock_guard lock(mutex);
        if (reply.status == 201) {
          ++sold;
        } else if (reply.status == 503 || reply.status == 504) {
          ++unavailable;
          unknown.push_back(id);
          std::this_thread::sleep_for(20ms);
        } else {
          ADD_FAILURE() << reply.status << " " << reply.body;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  RedisOutage outage;
  outage.Begin();
  EXPECT_TRUE(WaitFor([&] { return unavailable.load() > 10; }, 10s));
  outage.End();
  const std::int64_t answered_before = FastPath("answered");
  EXPECT_TRUE(WaitFor([&] { return FastPath("answered") > answered_before + 100; }, 15s))
      << "orders should be answered on the I/O threads again";
  stop = true;
  buyers.clear();
  for (const auto& id : unknown) {
    auto reply = Order(id, {{{"sku", "HOT"}, {"quantity", 1}}});
    ASSERT_TRUE(reply.status == 200 || reply.status == 201) << reply.status << " " << reply.body;
    sold += 1;  // placed before the outage hid its answer (200), or now (201)
  }
  EXPECT_EQ(RedisQuantity("HOT"), kStock - sold);
  Drain();
  EXPECT_EQ(DatabaseQuantity("HOT"), kStock - sold);
}

TEST_F(HttpFastPathTest, AStalledRedisIs504AndTheConnectionRecovers) {
  Seed("A", 5);
  auto options = Options();
  options.request_deadline = 300ms;
  Start(options);
  ASSERT_EQ(Get("A").status, 200);
  Redis({"CLIENT", "PAUSE", "1500", "ALL"});
  const auto start = std::chrono::steady_clock::now();
  auto stalled = Get("A");
  EXPECT_TRUE(IsError(stalled, 504, "deadline_exceeded"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1200ms);
  std::this_thread::sleep_until(start + 1600ms);  // the pause is over
  const std::int64_t answered_before = FastPath("answered");
  ASSERT_GE(answered_before, 1);
  EXPECT_TRUE(WaitFor(
      [&] { return Get("A").status == 200 && FastPath("answered") > answered_before; }, 10s));
}

TEST_F(HttpFastPathTest, StopWaitsForACallInFlightAndAnswersIt) {
  Seed("A", 5);
  Start();
  Redis({"CLIENT", "PAUSE", "400", "ALL"});
  std::optional<Reply> reply;
  std::jthread caller([&] { reply = HttpClient(port_).Send("GET", "/v1/inventory/A"); });
  std::this_thread::sleep_for(100ms);
  server_->Stop();
  caller.join();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200) << reply->body;
}

}  // namespace
}  // namespace invsync::testing
