#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace invsync::fault {

/// A TCP proxy on 127.0.0.1 (a free port) in front of one upstream server, placed between the
/// service and Redis or PostgreSQL to inject network faults. Runs its own thread; every method
/// may be called from any thread.
class Proxy {
 public:
  Proxy(std::string upstream_host, std::uint16_t upstream_port);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  /// The port the proxy listens on.
  [[nodiscard]] std::uint16_t port() const;
  /// Holds every chunk this long before forwarding it (both directions); zero: none.
  void SetDelay(std::chrono::milliseconds delay);
  /// While stalled nothing is forwarded: bytes wait, connections stay open.
  void SetStalled(bool stalled);
  /// While refusing, new connections are closed at once.
  void SetRefusing(bool refusing);
  /// Resets every open connection (both sides see a reset).
  void CutAll();
  /// Connections accepted so far.
  [[nodiscard]] std::int64_t accepted() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace invsync::fault
