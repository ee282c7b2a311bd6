#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <system_error>
#include <thread>

#include "servers.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, not in a header

namespace invsync::testing {

namespace {

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& text : strings) {
    pointers.push_back(text.data());
  }
  pointers.push_back(nullptr);
  return pointers;
}

// This process's environment with the server variables as `servers` wants them.
std::vector<std::string> Environment(Servers servers) {
  std::vector<std::string> env;
  for (char** var = environ; *var != nullptr; ++var) {
    std::string_view entry(*var);
    if (!entry.starts_with("INVSYNC_REDIS_URL=") && !entry.starts_with("INVSYNC_DATABASE_URL=")) {
      env.emplace_back(entry);
    }
  }
  if (servers == Servers::kTest) {
    env.push_back("INVSYNC_REDIS_URL=" + TestRedisUrl());
    env.push_back("INVSYNC_DATABASE_URL=" + TestDatabaseUrl());
  }
  return env;
}

std::string ReadAll(int fd) {
  std::string text;
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while ((n = read(fd, buffer.data(), buffer.size())) > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return text;
}

}  // namespace

Outcome RunInvsync(const std::string& binary, const std::vector<std::string>& args,
                   Servers servers) {
  // Output goes to unlinked temporary files: no pipe to drain while waiting.
  FILE* out = std::tmpfile();
  FILE* err = std::tmpfile();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fileno(out), 1);
  posix_spawn_file_actions_adddup2(&actions, fileno(err), 2);
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  auto env = Environment(servers);
  auto argv = Pointers(argv_strings);
  auto envp = Pointers(env);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Outcome outcome;
  if (rc == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    lseek(fileno(out), 0, SEEK_SET);
    lseek(fileno(err), 0, SEEK_SET);
    outcome.out = ReadAll(fileno(out));
    outcome.err = ReadAll(fileno(err));
  }
  std::fclose(out);
  std::fclose(err);
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + binary);
  }
  return outcome;
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

std::chrono::steady_clock::duration Scaled(std::chrono::steady_clock::duration limit) {
  static const double factor = [] {
    const char* text = std::getenv("INVSYNC_TEST_TIME_SCALE");
    const double value = text == nullptr ? 1.0 : std::strtod(text, nullptr);
    return value > 1.0 ? value : 1.0;
  }();
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit * factor);
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + Scaled(limit);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

InvsyncProcess::InvsyncProcess(const std::string& binary, const std::vector<std::string>& args,
                               Servers servers) {
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  auto env = Environment(servers);
  auto argv = Pointers(argv_strings);
  auto envp = Pointers(env);
  int rc = posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), envp.data());
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + binary);
  }
}

InvsyncProcess::~InvsyncProcess() {
  if (!status_) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void InvsyncProcess::Signal(int signal) const {
  ASSERT_EQ(kill(pid_, signal), 0) << std::system_category().message(errno);
}

std::optional<int> InvsyncProcess::Wait(std::chrono::steady_clock::duration limit) {
  WaitFor(
      [&] {
        int status = 0;
        pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_) {
          status_ = status;
        }
        return status_.has_value() || done < 0;
      },
      limit);
  return status_;
}

std::uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace invsync::testing
