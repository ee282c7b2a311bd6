#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace invsync::cli {

/// A `redis-server` of invsync's own, for a run with no Redis configured: a child process on a
/// unix socket in the data directory (no TCP port), AOF on (`appendfsync everysec`). It dies with
/// the service (even on SIGKILL, through the parent-death signal), is restarted when it dies on
/// its own, and is stopped by Stop() or the destructor. A Redis already answering on the socket
/// (another `invsync serve` on the same directory) is used as it is.
class ManagedRedis {
 public:
  explicit ManagedRedis(std::filesystem::path dir, std::string binary = "redis-server");
  ~ManagedRedis();
  ManagedRedis(const ManagedRedis&) = delete;
  ManagedRedis& operator=(const ManagedRedis&) = delete;

  /// Starts it (or finds it running) and waits until it answers; throws `TransientError` if it
  /// does not within 10 s (the message points at its log).
  void Start();
  /// Stops the child (SIGTERM, then SIGKILL after 10 s) and the watchdog.
  void Stop();

  [[nodiscard]] std::string Url() const { return "unix://" + socket_.string(); }
  [[nodiscard]] int restarts() const { return restarts_.load(); }

 private:
  void Spawn();
  void WaitUntilAnswering();
  void Watch(const std::stop_token& stop);

  std::filesystem::path dir_;
  std::filesystem::path socket_;
  std::string binary_;
  std::mutex mutex_;
  pid_t pid_ = -1;  ///< -1: none of ours
  std::atomic<int> restarts_{0};
  std::jthread watchdog_;
};

}  // namespace invsync::cli
