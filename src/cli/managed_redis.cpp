#include "cli/managed_redis.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/process.hpp"
#include "redis/client.hpp"

namespace invsync::cli {

namespace {

using Clock = std::chrono::steady_clock;

// A child of ours that runs but whose socket file has been gone this long (removed by hand) is
// restarted, on the same AOF.
constexpr auto kSilentLimit = std::chrono::seconds(15);

enum class Probe {
  kReady,   // answers PING
  kBusy,    // answers, with an error: LOADING its data, BUSY with a script
  kSilent,  // no answer: not running, not listening yet, or hanging
};

Probe ProbeRedis(const std::filesystem::path& socket) {
  try {
    redis::Endpoint endpoint;
    endpoint.unix_path = socket.string();
    redis::Connection connection(endpoint, std::chrono::milliseconds(500));
    return connection.Pipeline({{"PING"}}).at(0).IsError() ? Probe::kBusy : Probe::kReady;
  } catch (const Error&) {
    return Probe::kSilent;
  }
}

// Run in the child between fork and exec, so only system calls: the service's descriptors (its
// HTTP listener and connections, its database files) must not live on in Redis, or a connection
// the service closes stays open for its client.
void CloseInheritedDescriptors(int limit) {
  if (close_range(3, ~0U, 0) == 0) {
    return;
  }
  for (int fd = 3; fd < limit; ++fd) {
    close(fd);
  }
}

}  // namespace

ManagedRedis::ManagedRedis(std::filesystem::path dir, std::string binary,
                           std::chrono::milliseconds start_limit)
    : dir_(std::filesystem::absolute(dir)),
      socket_(dir_ / "redis.sock"),
      binary_(std::move(binary)),
      start_limit_(start_limit) {}

ManagedRedis::~ManagedRedis() { Stop(); }

void ManagedRedis::Start() {
  std::filesystem::create_directories(dir_);
  const auto lock_path = dir_ / "redis.lock";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    throw TransientError(
        fmt::format("cannot open {}: {}", lock_path.string(), std::strerror(errno)));
  }
  owner_ = TakeLock();
  if (owner_ && !PreviousRedisRuns() && ProbeRedis(socket_) == Probe::kSilent) {
    {
      std::lock_guard lock(mutex_);
      Spawn();
    }
    WaitUntilAnswering();
    spdlog::info("started Redis (pid {}) on {}, data in {}", pid_, socket_.string(), dir_.string());
  } else {
    // Another `invsync serve` on this directory runs it (or is starting it), or the one the
    // previous owner of the lock ran has yet to exit: then this one starts its own after.
    WaitUntilAnswering();
    if (pid_ > 0) {
      spdlog::info("started Redis (pid {}) on {}, data in {}", pid_, socket_.string(),
                   dir_.string());
    } else {
      spdlog::info("using the Redis already answering on {}{}", socket_.string(),
                   owner_ ? ""
                          : " (another invsync serve on this data.dir runs it; this one takes "
                            "over if that one stops)");
    }
  }
  watchdog_ = std::jthread([this](const std::stop_token& stop) { Watch(stop); });
}

bool ManagedRedis::TakeLock() const { return flock(lock_fd_, LOCK_EX | LOCK_NB) == 0; }

void ManagedRedis::Spawn() {
  std::vector<std::string> args = {binary_,
                                   "--port",
                                   "0",
                                   "--unixsocket",
                                   socket_.string(),
                                   "--unixsocketperm",
                                   "700",
                                   "--dir",
                                   dir_.string(),
                                   "--appendonly",
                                   "yes",
                                   "--appendfsync",
                                   "everysec",
                                   "--save",
                                   "",
                                   "--maxmemory-policy",
                                   "noeviction",
                                   "--logfile",
                                   (dir_ / "redis.log").string(),
                                   "--daemonize",
                                   "no"};
  std::vector<char*> argv;
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  rlimit files{};
  const int limit = getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < 65536
                        ? static_cast<int>(files.rlim_cur)
                        : 65536;
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    throw TransientError("cannot start redis-server: fork failed");
  }
  if (child == 0) {
    // Dies with the service, whatever kills the service.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // Out of the service's process group: Ctrl-C in a terminal signals the whole group, and Redis
    // must outlive the service's drain (the service stops it last).
    setpgid(0, 0);
    if (getppid() != parent) {
      _exit(1);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the service may block signals it waits for
    CloseInheritedDescriptors(limit);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  pid_ = child;
  silent_since_ = {};
  RecordPid(child);
}

// The lock file holds the pid of the last Redis an owner of the lock started: the next owner
// starts its own only once that one has exited. A Redis on its way out (its service was killed;
// it is writing its AOF) would otherwise remove the new one's socket as it goes.
void ManagedRedis::RecordPid(pid_t pid) const {
  const auto text = fmt::format("{}\n", pid);
  if (ftruncate(lock_fd_, 0) != 0 ||
      pwrite(lock_fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    spdlog::warn("cannot record the managed Redis's pid in {}: {}", (dir_ / "redis.lock").string(),
                 std::strerror(errno));
  }
}

// Whether the Redis whose pid the lock file holds still runs: a process (not a zombie) named
// redis-server whose working directory is this one (Redis works in its `--dir`), so a pid since
// reused by another process does not count.
bool ManagedRedis::PreviousRedisRuns() const {
  std::array<char, 32> text{};
  const auto size = pread(lock_fd_, text.data(), text.size() - 1, 0);
  if (size <= 0) {
    return false;
  }
  auto digits = std::string_view(text.data(), static_cast<std::size_t>(size));
  digits = digits.substr(0, digits.find('\n'));
  const auto pid = ParseInt64(digits);
  if (!pid || *pid <= 0) {
    return false;
  }
  const auto proc = std::filesystem::path("/proc") / std::to_string(*pid);
  std::error_code error;
  const auto cwd = std::filesystem::read_symlink(proc / "cwd", error);  // none for a zombie
  if (error || cwd != std::filesystem::weakly_canonical(dir_, error) || error) {
    return false;
  }
  std::ifstream comm(proc / "comm");
  std::string name;
  std::getline(comm, name);
  return name.starts_with("redis");
}

// Until it answers PING. No answer at all for `start_limit_` is an error; a Redis that answers
// LOADING (a large AOF) or BUSY, or the previous owner's Redis still exiting, is waited for as long
// as it takes, with a note in the log every 10 s.
void ManagedRedis::WaitUntilAnswering() {
  auto deadline = Clock::now() + start_limit_;
  auto next_note = Clock::now() + std::chrono::seconds(10);
  for (auto probe = ProbeRedis(socket_); probe != Probe::kReady; probe = ProbeRedis(socket_)) {
    std::unique_lock lock(mutex_);
    if (!owner_ && probe == Probe::kSilent) {
      owner_ = TakeLock();  // the service that runs it has ended meanwhile
    }
    const bool previous = owner_ && pid_ <= 0 && PreviousRedisRuns();
    if (owner_ && pid_ <= 0 && !previous && probe == Probe::kSilent) {
      Spawn();
      deadline = Clock::now() + start_limit_;
    }
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw TransientError(fmt::format(
          "redis-server exited at start (status {}); see {}{}", status,
          (dir_ / "redis.log").string(),
          WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is redis-server installed?)" : ""));
    }
    lock.unlock();
    if (probe == Probe::kBusy || previous) {
      deadline = Clock::now() + start_limit_;
      if (Clock::now() > next_note) {
        if (previous) {
          spdlog::info("waiting for the Redis the previous invsync serve on {} ran to exit",
                       socket_.string());
        } else {
          spdlog::info("waiting for the Redis on {} to load its data", socket_.string());
        }
        next_note = Clock::now() + std::chrono::seconds(10);
      }
    }
    if (Clock::now() > deadline) {
      throw TransientError(fmt::format("redis-server did not answer on {} within {} ms; see {}",
                                       socket_.string(), start_limit_.count(),
                                       (dir_ / "redis.log").string()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ManagedRedis::Watch(const std::stop_token& stop) {
  // SIGINT and SIGTERM are for the service's own handling (it waits for them in one thread);
  // this thread, started before that is set up, must not take them with their default action.
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stops, nullptr);
  while (!stop.stop_requested()) {
    PauseUnlessStopped(std::chrono::milliseconds(200), stop);
    if (stop.stop_requested()) {
      break;
    }
    // The Redis of another `invsync serve` on this directory: the lock comes free when that one
    // ends (however it ends), and its Redis goes with it.
    if (!owner_) {
      if (!TakeLock()) {
        continue;
      }
      owner_ = true;
      spdlog::info(
          "the invsync serve that ran the managed Redis on {} is gone; this one runs it now",
          socket_.string());
    }
    std::unique_lock lock(mutex_);
    int status = 0;
    if (pid_ <= 0) {
      if (PreviousRedisRuns() || ProbeRedis(socket_) != Probe::kSilent) {
        continue;  // not ours, still there (its service is going, or it was left running)
      }
      spdlog::warn("the managed Redis on {} does not answer and is not this process's; starting it",
                   socket_.string());
    } else if (waitpid(pid_, &status, WNOHANG) == pid_) {
      spdlog::error("the managed Redis (pid {}) exited (status {}); restarting it", pid_, status);
      pid_ = -1;
    } else if (std::filesystem::is_socket(socket_) || ProbeRedis(socket_) != Probe::kSilent) {
      // Its socket is there: a Redis that does not answer is busy (a long command, a slow disk),
      // and stopping it could cost the last second of its AOF.
      silent_since_ = {};
      continue;
    } else if (silent_since_ == Clock::time_point{}) {
      silent_since_ = Clock::now();
      continue;
    } else if (Clock::now() - silent_since_ < kSilentLimit) {
      continue;
    } else {
      spdlog::error(
          "the managed Redis (pid {}) runs but has not answered on {} for {} s; "
          "restarting it",
          pid_, socket_.string(), kSilentLimit.count());
      lock.unlock();
      StopChild();
      lock.lock();
    }
    try {
      Spawn();
      lock.unlock();
      WaitUntilAnswering();
      restarts_.fetch_add(1);
      spdlog::warn("restarted the managed Redis (pid {}); its data came back from its AOF", pid_);
    } catch (const Error& error) {
      spdlog::error("cannot restart the managed Redis: {}", error.what());
      PauseUnlessStopped(std::chrono::seconds(1), stop);
    }
  }
}

void ManagedRedis::Stop() {
  if (watchdog_.joinable()) {
    watchdog_.request_stop();
    watchdog_.join();
  }
  StopChild();
  ReleaseLock();
}

void ManagedRedis::StopChild() {
  std::lock_guard lock(mutex_);
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  spdlog::info("stopped the managed Redis (pid {})", pid_);
  pid_ = -1;
}

void ManagedRedis::ReleaseLock() {
  if (lock_fd_ >= 0) {
    close(lock_fd_);  // after the child is gone: whoever takes the lock next starts its own
    lock_fd_ = -1;
  }
}

}  // namespace invsync::cli
