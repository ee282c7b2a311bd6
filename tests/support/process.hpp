#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace invsync::testing {

/// Polls `condition` every 10 ms until it holds (true) or `limit` passes (false).
bool WaitFor(const std::function<bool()>& condition, std::chrono::steady_clock::duration limit);

/// Files a child's standard output and error go to (its standard input is then /dev/null).
struct Capture {
  std::string out_path;
  std::string err_path;
};

/// The `invsync` binary run as a child process against the test servers (INVSYNC_REDIS_URL and
/// INVSYNC_DATABASE_URL point at them); killed and reaped if the test leaves it running.
class InvsyncProcess {
 public:
  InvsyncProcess(const std::string& binary, const std::vector<std::string>& args,
                 const std::optional<Capture>& capture = std::nullopt);
  InvsyncProcess(const InvsyncProcess&) = delete;
  InvsyncProcess& operator=(const InvsyncProcess&) = delete;
  ~InvsyncProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Sends a signal; fails the test if the process is gone.
  void Signal(int signal) const;
  /// Waits up to `limit` for the process to end; its wait status, or nullopt if it runs on.
  std::optional<int> Wait(std::chrono::steady_clock::duration limit);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// A finished `invsync` command: exit code (-1 if it did not exit normally) and what it printed.
struct CliOutcome {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `invsync` with `args` against the test servers until it exits (killed after `limit`),
/// standard input empty, standard output and error captured.
CliOutcome RunInvsync(const std::string& binary, const std::vector<std::string>& args,
                      std::chrono::steady_clock::duration limit = std::chrono::minutes(2));

/// Number of lines (newline characters) in `text`.
int CountLines(const std::string& text);

}  // namespace invsync::testing
