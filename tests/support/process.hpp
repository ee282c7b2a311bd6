#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace invsync::testing {

/// `limit` times INVSYNC_TEST_TIME_SCALE (a factor of at least 1, default 1). The sanitizer
/// builds run several times slower, so what a test waits for may take that much longer there.
std::chrono::steady_clock::duration Scaled(std::chrono::steady_clock::duration limit);

/// Polls `condition` every 10 ms until it holds (true) or `Scaled(limit)` passes (false).
bool WaitFor(const std::function<bool()>& condition, std::chrono::steady_clock::duration limit);

/// Which servers a child `invsync` uses.
enum class Servers {
  kTest,  ///< the test servers: INVSYNC_REDIS_URL and INVSYNC_DATABASE_URL point at them
  kOwn,   ///< none given: its own managed Redis and embedded database (both variables removed)
};

/// The `invsync` binary run as a child process; killed and reaped if the test leaves it running.
class InvsyncProcess {
 public:
  InvsyncProcess(const std::string& binary, const std::vector<std::string>& args,
                 Servers servers = Servers::kTest);
  InvsyncProcess(const InvsyncProcess&) = delete;
  InvsyncProcess& operator=(const InvsyncProcess&) = delete;
  ~InvsyncProcess();

  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Sends a signal; fails the test if the process is gone.
  void Signal(int signal) const;
  /// Waits up to `Scaled(limit)` for the process to end; its wait status, or nullopt if it runs on.
  std::optional<int> Wait(std::chrono::steady_clock::duration limit);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// What a finished command printed and returned.
struct Outcome {
  int code = -1;  ///< exit code, -1 if it did not exit normally
  std::string out;
  std::string err;
};

/// Runs `invsync ARGS...` to completion with standard input from /dev/null.
Outcome RunInvsync(const std::string& binary, const std::vector<std::string>& args,
                   Servers servers = Servers::kTest);

/// Number of lines (newline characters) in `text`.
int CountLines(const std::string& text);

/// A port nothing listens on right now on 127.0.0.1 (the kernel's pick for port 0, released at
/// once).
std::uint16_t FreePort();

}  // namespace invsync::testing
