#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace invsync::cli {

/// A `redis-server` of invsync's own, for a run with no Redis configured: a child process on a
/// unix socket in the data directory (no TCP port), AOF on (`appendfsync everysec`). It dies with
/// the service (even on SIGKILL, through the parent-death signal), is restarted when it dies on
/// its own, and is stopped by Stop() or the destructor. The process that runs it holds a lock
/// file in the directory; another `invsync serve` on the same directory uses the Redis already
/// answering there and, when the one that runs it ends, takes the lock and starts its own on the
/// same data (its AOF), once the Redis that one ran has exited (its pid is kept in the lock file:
/// two Redis servers on one directory would share the AOF, and the one going would remove the
/// other's socket).
class ManagedRedis {
 public:
  /// `start_limit`: how long Start waits for a first answer of any kind.
  explicit ManagedRedis(std::filesystem::path dir, std::string binary = "redis-server",
                        std::chrono::milliseconds start_limit = std::chrono::seconds(10));
  ~ManagedRedis();
  ManagedRedis(const ManagedRedis&) = delete;
  ManagedRedis& operator=(const ManagedRedis&) = delete;

  /// Starts it (or finds it running) and waits until it answers; throws `TransientError` if it
  /// gives no answer at all within 10 s (the message points at its log). A Redis still loading
  /// its AOF is waited for as long as it takes.
  void Start();
  /// Stops the child (SIGTERM, then SIGKILL after 10 s) and the watchdog.
  void Stop();

  [[nodiscard]] std::string Url() const { return "unix://" + socket_.string(); }
  [[nodiscard]] int restarts() const { return restarts_.load(); }

 private:
  [[nodiscard]] bool TakeLock() const;
  void ReleaseLock();
  void Spawn();
  void WaitUntilAnswering();
  [[nodiscard]] bool PreviousRedisRuns() const;
  void RecordPid(pid_t pid) const;
  void Watch(const std::stop_token& stop);
  void RestartSilentChild();
  void StopChild();

  std::filesystem::path dir_;
  std::filesystem::path socket_;
  std::string binary_;
  std::chrono::milliseconds start_limit_;
  std::mutex mutex_;
  pid_t pid_ = -1;  ///< -1: none of ours
  int lock_fd_ = -1;
  bool owner_ = false;  ///< holds the lock: runs the Redis (touched by Start, then the watchdog)
  std::atomic<int> restarts_{0};
  /// Since when the child, alive, has not answered (the epoch: it answered last time looked).
  std::chrono::steady_clock::time_point silent_since_{};
  std::jthread watchdog_;
};

}  // namespace invsync::cli
