// redis::AsyncClient against an in-process fake server speaking RESP on a loopback port, on the
// test's own io_context: ordering, pipelining, large reply backlogs, handshake, NOSCRIPT,
// timeouts, lost and refused connections, and shutdown with commands pending.
#include "redis/async_client.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace invsync::redis {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

using Command = std::vector<std::string>;

std::string Bulk(std::string_view text) {
  return "$" + std::to_string(text.size()) + "\r\n" + std::string(text) + "\r\n";
}

// One complete command (an array of bulk strings) from the front of `buffer`, removed from it.
std::optional<Command> TakeCommand(std::string& buffer) {
  std::size_t pos = 0;
  auto line = [&]() -> std::optional<std::string> {
    auto end = buffer.find("\r\n", pos);
    if (end == std::string::npos) {
      return std::nullopt;
    }
    std::string text = buffer.substr(pos, end - pos);
    pos = end + 2;
    return text;
  };
  auto count = line();
  if (!count || count->empty() || count->front() != '*') {
    return std::nullopt;
  }
  Command command;
  for (int i = std::stoi(count->substr(1)); i > 0; --i) {
    auto length = line();
    if (!length) {
      return std::nullopt;
    }
    const auto size = static_cast<std::size_t>(std::stoul(length->substr(1)));
    if (buffer.size() < pos + size + 2) {
      return std::nullopt;
    }
    command.push_back(buffer.substr(pos, size));
    pos += size + 2;
  }
  buffer.erase(0, pos);
  return command;
}

/// A server that answers each command with what `answer` returns (raw RESP; nullopt: never, and
/// then nothing more on that connection).
class FakeRedis {
 public:
  using Answer = std::function<std::optional<std::string>(const Command&)>;

  FakeRedis(net::io_context& io, Answer answer)
      : acceptor_(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        answer_(std::move(answer)) {
    Accept();
  }

  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port()); }

  /// Drops every connection, as a server that crashed.
  void CloseAll() {
    for (auto& connection : connections_) {
      boost::system::error_code ignored;
      connection->socket.close(ignored);
    }
  }

  std::vector<Command> commands;  ///< every command received, in order
  int connections = 0;            ///< accepted so far
  int reads = 0;                  ///< reads that brought data

 private:
  struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::array<char, 4096> chunk{};
    std::string in;
    std::string out;
    bool hung = false;
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        return;
      }
      ++connections;
      auto connection = std::make_shared<Connection>(std::move(socket));
      connections_.push_back(connection);
      Read(connection);
      Accept();
    });
  }

  void Read(const std::shared_ptr<Connection>& connection) {
    connection->socket.async_read_some(
        net::buffer(connection->chunk),
        [this, connection](boost::system::error_code ec, std::size_t bytes) {
          if (ec) {
            return;
          }
          ++reads;
          connection->in.append(connection->chunk.data(), bytes);
          while (auto command = TakeCommand(connection->in)) {
            commands.push_back(*command);
            auto reply = answer_(*command);
            // Replies go in command order: after one that never comes, none does (a hung server).
            connection->hung = connection->hung || !reply;
            if (!connection->hung) {
              connection->out += *reply;
            }
          }
          if (!connection->out.empty()) {
            auto out = std::make_shared<std::string>(std::move(connection->out));
            connection->out.clear();
            net::async_write(connection->socket, net::buffer(*out),
                             [out](boost::system::error_code, std::size_t) {});
          }
          Read(connection);
        });
  }

  tcp::acceptor acceptor_;
  Answer answer_;
  std::vector<std::shared_ptr<Connection>> connections_;
};

// Echoes ECHO's argument, answers PING, AUTH and SELECT; nothing for BLACKHOLE.
std::optional<std::string> Ordinary(const Command& command) {
  if (command[0] == "PING") {
    return "+PONG\r\n";
  }
  if (command[0] == "AUTH" || command[0] == "SELECT") {
    return "+OK\r\n";
  }
  if (command[0] == "ECHO") {
    return Bulk(command[1]);
  }
  if (command[0] == "BLACKHOLE") {
    return std::nullopt;
  }
  return "-ERR unknown command\r\n";
}

class AsyncClientTest : public ::testing::Test {
 protected:
  /// Runs the io_context until `done` holds or `limit` passes; returns whether it holds.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_.run_for(2ms);
    }
    return done();
  }

  std::unique_ptr<AsyncClient> Client(const std::string& url, AsyncOptions options = {}) {
    auto client = std::make_unique<AsyncClient>(io_, Endpoint::Parse(url), options);
    client->Start();
    return client;
  }

  /// Sends ECHO text; the reply (or the failure) lands in `out`.
  static void Echo(AsyncClient& client, const std::string& text, std::optional<AsyncReply>& out) {
    client.Command({"ECHO", text}, [&out](AsyncReply&& reply) { out = std::move(reply); });
  }

  net::io_context io_{1};
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
};

TEST_F(AsyncClientTest, RepliesReachTheirCommandsInOrder) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url());
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  constexpr int kCommands = 1000;
  std::vector<std::string> got;
  for (int i = 0; i < kCommands; ++i) {
    client->Command({"ECHO", std::to_string(i)},
                    [&got](AsyncReply&& reply) { got.push_back(reply.value.AsString()); });
  }
  ASSERT_TRUE(RunUntil([&] { return got.size() == kCommands; }));
  for (int i = 0; i < kCommands; ++i) {
    EXPECT_EQ(got[i], std::to_string(i));
  }
  EXPECT_EQ(server.connections, 1);
}

TEST_F(AsyncClientTest, CommandsIssuedTogetherShareOneWrite) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url());
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  const int reads_before = server.reads;
  int answered = 0;
  for (int i = 0; i < 100; ++i) {
    client->Command({"ECHO", "x"}, [&answered](AsyncReply&& reply) { answered += reply.ok(); });
  }
  ASSERT_TRUE(RunUntil([&] { return answered == 100; }));
  // One write for all; loopback may still split it, but never into a read per command.
  EXPECT_LE(server.reads - reads_before, 5);
}

// Readiness is reported as edges and hiredis reads 16 KiB per call: replies that all arrived
// before the client looked must still be read to the end, with no further data to signal them.
TEST_F(AsyncClientTest, RepliesThatArrivedTogetherAreAllReadWithoutFurtherData) {
  constexpr std::size_t kCommands = 300;
  const std::string payload(200, 'p');  // about 62 KB of replies in all
  std::promise<void> released;
  std::promise<void> finished;
  std::atomic<std::size_t> received{0};
  net::io_context server_io;
  tcp::acceptor acceptor(server_io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  std::thread server([&] {
    // Answers the handshake's PING, then holds the replies to everything else until released.
    tcp::socket socket = acceptor.accept();
    std::string in;
    std::array<char, 4096> chunk{};
    std::string replies;
    while (received < kCommands) {
      in.append(chunk.data(), socket.read_some(net::buffer(chunk)));
      while (auto command = TakeCommand(in)) {
        if ((*command)[0] == "PING") {
          net::write(socket, net::buffer(std::string("+PONG\r\n")));
        } else {
          replies += Bulk((*command)[1]);
          ++received;
        }
      }
    }
    released.get_future().wait();
    net::write(socket, net::buffer(replies));
    finished.get_future().wait_for(5s);  // the connection stays open while the client reads
  });
  auto client = Client("redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  std::size_t answered = 0;
  for (std::size_t i = 0; i < kCommands; ++i) {
    client->Command({"ECHO", payload}, [&](AsyncReply&& reply) {
      answered += reply.ok() && reply.value.AsString() == payload ? 1 : 0;
    });
  }
  ASSERT_TRUE(RunUntil([&] { return received == kCommands; }));
  released.set_value();
  std::this_thread::sleep_for(50ms);  // every reply is in the client's socket buffer now
  EXPECT_TRUE(RunUntil([&] { return answered == kCommands; }, 1s))
      << answered << " of " << kCommands << " replies read";
  finished.set_value();
  server.join();
}

TEST_F(AsyncClientTest, AuthAndSelectPrecedeTheFirstCommand) {
  FakeRedis server(io_, Ordinary);
  auto client = Client("redis://:s%40cret@127.0.0.1:" + std::to_string(server.port()) + "/3");
  std::optional<AsyncReply> reply;
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  Echo(*client, "hello", reply);
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  EXPECT_EQ(reply->value.AsString(), "hello");
  ASSERT_EQ(server.commands.size(), 3U);
  EXPECT_EQ(server.commands[0], (Command{"AUTH", "s@cret"}));
  EXPECT_EQ(server.commands[1], (Command{"SELECT", "3"}));
  EXPECT_EQ(server.commands[2], (Command{"ECHO", "hello"}));
}

TEST_F(AsyncClientTest, RefusedAuthLeavesNoConnectionReady) {
  FakeRedis server(io_, [](const Command& command) -> std::optional<std::string> {
    if (command[0] == "AUTH") {
      return "-WRONGPASS invalid username-password pair\r\n";
    }
    return Ordinary(command);
  });
  auto client = Client("redis://:wrong@127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(RunUntil([&] { return server.connections >= 2; }))
      << "the client should try again after a backoff";
  EXPECT_EQ(client->ready_connections(), 0U);
  std::optional<AsyncReply> reply;
  Echo(*client, "x", reply);
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  EXPECT_EQ(reply->failure, AsyncFailure::kNotConnected);
}

TEST_F(AsyncClientTest, NoScriptIsAnsweredByRunningTheScriptWithEval) {
  const Script script("probe", "return 42");
  FakeRedis server(io_, [](const Command& command) -> std::optional<std::string> {
    if (command[0] == "EVALSHA") {
      return "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    }
    if (command[0] == "EVAL") {
      return ":42\r\n";
    }
    return Ordinary(command);
  });
  auto client = Client(server.url());
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  const ScriptCall call{{"key"}, {"arg"}};
  std::optional<AsyncReply> reply;
  client->RunScript(script, call, [&reply](AsyncReply&& r) { reply = std::move(r); });
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  EXPECT_EQ(reply->value.AsInteger(), 42);
  ASSERT_GE(server.commands.size(), 2U);
  const Command& evalsha = server.commands[server.commands.size() - 2];
  const Command& eval = server.commands.back();
  EXPECT_EQ(evalsha, (Command{"EVALSHA", script.sha(), "1", "key", "arg"}));
  EXPECT_EQ(eval, (Command{"EVAL", "return 42", "1", "key", "arg"}));
}

TEST_F(AsyncClientTest, ScriptShaIsTheOneRedisComputes) {
  // SCRIPT LOAD "return 1" answers this on every Redis version.
  EXPECT_EQ(Script("one", "return 1").sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST_F(AsyncClientTest, ACommandWithoutReplyTimesOutAndTheClientConnectsAgain) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url(), {.command_timeout = 100ms, .min_backoff = 10ms});
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  std::optional<AsyncReply> lost;
  std::optional<AsyncReply> behind;
  const auto start = std::chrono::steady_clock::now();
  client->Command({"BLACKHOLE"}, [&lost](AsyncReply&& reply) { lost = std::move(reply); });
  Echo(*client, "behind", behind);
  ASSERT_TRUE(RunUntil([&] { return lost.has_value() && behind.has_value(); }));
  EXPECT_EQ(lost->failure, AsyncFailure::kTimedOut);
  EXPECT_EQ(behind->failure, AsyncFailure::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  EXPECT_EQ(server.connections, 2);
  std::optional<AsyncReply> after;
  Echo(*client, "after", after);
  ASSERT_TRUE(RunUntil([&] { return after.has_value(); }));
  EXPECT_EQ(after->value.AsString(), "after");
}

TEST_F(AsyncClientTest, ALostConnectionFailsItsCommandsAndIsMadeAgain) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url(), {.min_backoff = 10ms});
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  std::optional<AsyncReply> pending;
  client->Command({"BLACKHOLE"}, [&pending](AsyncReply&& reply) { pending = std::move(reply); });
  ASSERT_TRUE(RunUntil([&] { return server.commands.back()[0] == "BLACKHOLE"; }));
  server.CloseAll();
  ASSERT_TRUE(RunUntil([&] { return pending.has_value(); }));
  EXPECT_EQ(pending->failure, AsyncFailure::kConnectionLost);
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  std::optional<AsyncReply> after;
  Echo(*client, "again", after);
  ASSERT_TRUE(RunUntil([&] { return after.has_value(); }));
  EXPECT_EQ(after->value.AsString(), "again");
}

TEST_F(AsyncClientTest, WithNoServerCommandsFailAtOnceAsNotConnected) {
  std::uint16_t port = 0;
  {
    tcp::acceptor probe(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  auto client = Client("redis://127.0.0.1:" + std::to_string(port), {.min_backoff = 10ms});
  RunUntil([] { return false; }, 50ms);
  std::optional<AsyncReply> reply;
  const auto start = std::chrono::steady_clock::now();
  Echo(*client, "x", reply);
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  EXPECT_EQ(reply->failure, AsyncFailure::kNotConnected);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 50ms);
}

TEST_F(AsyncClientTest, ErrorRepliesAreValuesNotFailures) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url());
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  std::optional<AsyncReply> reply;
  client->Command({"NOSUCH"}, [&reply](AsyncReply&& r) { reply = std::move(r); });
  ASSERT_TRUE(RunUntil([&] { return reply.has_value(); }));
  EXPECT_TRUE(reply->ok());
  EXPECT_TRUE(reply->value.IsError());
  EXPECT_EQ(client->ready_connections(), 1U);
}

TEST_F(AsyncClientTest, CommandsAreSpreadOverTheConnections) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url(), {.connections = 3});
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 3; }));
  int answered = 0;
  for (int i = 0; i < 30; ++i) {
    client->Command({"ECHO", "x"}, [&answered](AsyncReply&& reply) { answered += reply.ok(); });
  }
  ASSERT_TRUE(RunUntil([&] { return answered == 30; }));
  EXPECT_EQ(server.connections, 3);
}

TEST_F(AsyncClientTest, DestroyingTheClientDropsPendingCallbacks) {
  FakeRedis server(io_, Ordinary);
  auto client = Client(server.url());
  ASSERT_TRUE(RunUntil([&] { return client->ready_connections() == 1; }));
  bool called = false;
  client->Command({"BLACKHOLE"}, [&called](AsyncReply&&) { called = true; });
  client->Command({"ECHO", "x"}, [&called](AsyncReply&&) { called = true; });
  RunUntil([&] { return server.commands.size() >= 3; });
  client.reset();
  RunUntil([] { return false; }, 100ms);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace invsync::redis
