#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <stop_token>
#include <string>
#include <thread>

namespace invsync {

/// "<host>-<pid>": names this process among several (consumer names, the syncer leader).
inline std::string HostAndPid() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    host = {'h', 'o', 's', 't'};
  }
  return fmt::format("{}-{}", host.data(), getpid());
}

/// Sleeps up to `pause`, waking early when a stop is requested.
inline void PauseUnlessStopped(std::chrono::milliseconds pause, const std::stop_token& stop) {
  const auto until = std::chrono::steady_clock::now() + pause;
  while (!stop.stop_requested() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
  }
}

}  // namespace invsync
