#include "process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
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

InvsyncProcess::InvsyncProcess(const std::string& binary, const std::vector<std::string>& args,
                               const std::optional<Capture>& capture) {
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
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, capture->out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, capture->err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
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

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

CliOutcome RunInvsync(const std::string& binary, const std::vector<std::string>& args,
                      std::chrono::steady_clock::duration limit) {
  const auto dir = std::filesystem::temp_directory_path();
  static std::atomic<int> runs{0};
  const std::string stem =
      "invsync-cli-" + std::to_string(getpid()) + "-" + std::to_string(runs.fetch_add(1));
  const Capture capture{(dir / (stem + ".out")).string(), (dir / (stem + ".err")).string()};
  CliOutcome outcome;
  {
    InvsyncProcess process(binary, args, capture);
    auto status = process.Wait(limit);
    EXPECT_TRUE(status.has_value()) << binary << " ran longer than the limit; killed";
    if (status && WIFEXITED(*status)) {
      outcome.code = WEXITSTATUS(*status);
    }
  }
  outcome.out = ReadFile(capture.out_path);
  outcome.err = ReadFile(capture.err_path);
  std::filesystem::remove(capture.out_path);
  std::filesystem::remove(capture.err_path);
  return outcome;
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace invsync::testing
