#include "cli/managed_redis.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "redis/client.hpp"

namespace invsync::cli {

namespace {

bool Answers(const std::filesystem::path& socket) {
  try {
    redis::Endpoint endpoint;
    endpoint.unix_path = socket.string();
    redis::Connection connection(endpoint, std::chrono::milliseconds(200));
    return connection.Command({"PING"}).AsString() == "PONG";
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

ManagedRedis::ManagedRedis(std::filesystem::path dir, std::string binary)
    : dir_(std::filesystem::absolute(dir)),
      socket_(dir_ / "redis.sock"),
      binary_(std::move(binary)) {}

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
  if (owner_ && !Answers(socket_)) {
    {
      std::lock_guard lock(mutex_);
      Spawn();
    }
    WaitUntilAnswering();
    spdlog::info("started Redis (pid {}) on {}, data in {}", pid_, socket_.string(), dir_.string());
  } else {
    WaitUntilAnswering();  // another `invsync serve` on this directory may be starting it
    spdlog::info("using the Redis already answering on {}{}", socket_.string(),
                 owner_ ? ""
                        : " (another invsync serve on this data.dir runs it; this one takes "
                          "over if that one stops)");
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
    execvp(argv[0], argv.data());
    _exit(127);
  }
  pid_ = child;
}

void ManagedRedis::WaitUntilAnswering() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!Answers(socket_)) {
    int status = 0;
    pid_t pid = 0;
    {
      std::lock_guard lock(mutex_);
      pid = pid_;
    }
    if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
      std::lock_guard lock(mutex_);
      pid_ = -1;
      throw TransientError(fmt::format(
          "redis-server exited at start (status {}); see {}{}", status,
          (dir_ / "redis.log").string(),
          WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is redis-server installed?)" : ""));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw TransientError(fmt::format("redis-server did not answer on {} within 10 s; see {}",
                                       socket_.string(), (dir_ / "redis.log").string()));
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
      if (Answers(socket_)) {
        continue;  // not ours, still there (its service is going, or it was left running)
      }
      spdlog::warn("the managed Redis on {} does not answer and is not this process's; starting it",
                   socket_.string());
    } else if (waitpid(pid_, &status, WNOHANG) == pid_) {
      spdlog::error("the managed Redis (pid {}) exited (status {}); restarting it", pid_, status);
      pid_ = -1;
    } else {
      continue;
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
