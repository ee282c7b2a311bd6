// The managed Redis's start, against a stand-in for redis-server on its socket (a real one that
// loads a large AOF for longer than the start limit would make the test slow).
#include "cli/managed_redis.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "common/error.hpp"

namespace invsync::cli {
namespace {

using namespace std::chrono_literals;

/// Listens on `socket` and answers every request with `-LOADING ...` until `loading` has passed,
/// then with `+PONG`, as a Redis loading its append-only file does.
class LoadingRedis {
 public:
  LoadingRedis(const std::filesystem::path& socket, std::chrono::milliseconds loading)
      : ready_at_(std::chrono::steady_clock::now() + loading) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket.c_str(), sizeof(address.sun_path) - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on " + socket.string());
    }
    thread_ = std::jthread([this](const std::stop_token& stop) { Serve(stop); });
  }
  ~LoadingRedis() {
    thread_.request_stop();
    thread_.join();
    close(fd_);
  }
  LoadingRedis(const LoadingRedis&) = delete;
  LoadingRedis& operator=(const LoadingRedis&) = delete;

  [[nodiscard]] int loading_answers() const { return loading_answers_.load(); }

 private:
  void Serve(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      pollfd waiting{.fd = fd_, .events = POLLIN, .revents = 0};
      if (poll(&waiting, 1, 20) <= 0) {
        continue;
      }
      const int client = accept(fd_, nullptr, nullptr);
      if (client < 0) {
        continue;
      }
      std::array<char, 256> request{};
      if (read(client, request.data(), request.size()) > 0) {
        const bool loading = std::chrono::steady_clock::now() < ready_at_;
        const std::string answer =
            loading ? "-LOADING Redis is loading the dataset in memory\r\n" : "+PONG\r\n";
        loading_answers_ += loading ? 1 : 0;
        (void)write(client, answer.data(), answer.size());
      }
      close(client);
    }
  }

  std::chrono::steady_clock::time_point ready_at_;
  int fd_ = -1;
  std::atomic<int> loading_answers_{0};
  std::jthread thread_;
};

class ManagedRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("invsync-managed-redis-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

// A Redis that answers LOADING for longer than the start limit is waited for, not taken for
// dead: before, every start of a service whose AOF took more than 10 s to load failed, and its
// Redis was killed with it.
TEST_F(ManagedRedisTest, StartWaitsForARedisLoadingItsDataBeyondTheStartLimit) {
  LoadingRedis loading(dir_ / "redis.sock", 1500ms);
  // A binary that cannot start: this must use the Redis on the socket, not start another.
  ManagedRedis redis(dir_, "/nonexistent/redis-server", 300ms);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_NO_THROW(redis.Start());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1400ms);
  EXPECT_GT(loading.loading_answers(), 3);
  redis.Stop();
}

// No answer of any kind within the start limit is still an error.
TEST_F(ManagedRedisTest, StartFailsWhenNothingAnswersWithinTheLimit) {
  const auto silent = dir_ / "silent-redis";  // runs, never listens
  std::FILE* script = std::fopen(silent.c_str(), "w");
  ASSERT_NE(script, nullptr);
  std::fputs("#!/bin/sh\nexec sleep 30\n", script);
  std::fclose(script);
  std::filesystem::permissions(silent, std::filesystem::perms::owner_all);
  ManagedRedis redis(dir_, silent.string(), 300ms);
  try {
    redis.Start();
    ADD_FAILURE() << "Start returned";
  } catch (const TransientError& error) {
    EXPECT_NE(std::string(error.what()).find("did not answer"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace invsync::cli
