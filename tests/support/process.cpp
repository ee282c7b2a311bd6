#include "process.hpp"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <csignal>
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

}  // namespace

bool WaitFor(const std::function<bool()>& condition, std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

InvsyncProcess::InvsyncProcess(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env;
  for (char** var = environ; *var != nullptr; ++var) {
    std::string_view entry(*var);
    if (!entry.starts_with("INVSYNC_REDIS_URL=") && !entry.starts_with("INVSYNC_DATABASE_URL=")) {
      env.emplace_back(entry);
    }
  }
  env.push_back("INVSYNC_REDIS_URL=" + TestRedisUrl());
  env.push_back("INVSYNC_DATABASE_URL=" + TestDatabaseUrl());
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

}  // namespace invsync::testing
