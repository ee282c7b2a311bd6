#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/client.hpp"
#include "redis/script.hpp"
#include "redis/value.hpp"

namespace invsync::redis {

namespace detail {
class AsyncLink;
}

/// Why an asynchronous command has no reply.
enum class AsyncFailure {
  kNone,            ///< there is a reply (possibly an error reply)
  kNotConnected,    ///< no connection was ready; the command was not sent
  kConnectionLost,  ///< the connection failed with the command in flight; it may have run
  kTimedOut,        ///< no reply within the command timeout; it may have run
};

/// What the callback of an asynchronous command receives.
struct AsyncReply {
  AsyncFailure failure = AsyncFailure::kNone;
  Value value;  ///< the reply when `ok()`; Redis error replies are values of type kError

  [[nodiscard]] bool ok() const { return failure == AsyncFailure::kNone; }
};

/// Called once per command, on the io_context's thread, never from within the call that issued
/// the command.
using AsyncCallback = std::function<void(AsyncReply&&)>;

struct AsyncOptions {
  std::size_t connections = 1;  ///< commands are spread over these, each pipelining its share
  /// A command without a reply after this fails with kTimedOut and its connection is dropped
  /// (with every other command on it) and made anew: a server that stopped answering.
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds min_backoff{50};  ///< first wait before connecting again
  std::chrono::milliseconds max_backoff{2000};
};

/// Redis commands issued without blocking, for code running on one io_context thread (the HTTP
/// server's I/O threads). Commands from many callers share the client's connections: each one
/// writes whatever accumulated since its last write in one go and reads replies as they come,
/// so concurrent requests share round trips. Connections are made at `Start`, authenticated and
/// switched to the endpoint's database; one that fails or is lost fails its pending commands
/// (kConnectionLost) and is made again after a backoff, during which commands fail at once with
/// kNotConnected. Not thread-safe: every call and every callback is on the io_context's thread,
/// which must run only that one thread.
class AsyncClient {
 public:
  AsyncClient(boost::asio::io_context& io, Endpoint endpoint, AsyncOptions options);
  /// Closes the connections; callbacks of commands still pending are dropped, never called.
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  /// Starts connecting (call on the io_context's thread, or before it runs).
  void Start();
  /// Sends one command; the views in `args` are copied before this returns.
  void Command(const Args& args, AsyncCallback done);
  /// Runs a script with EVALSHA; on NOSCRIPT (script cache flushed, server restarted) runs it
  /// with EVAL, which loads it again, so the callback never sees that error. `call` must stay
  /// valid until `done` is called.
  void RunScript(const Script& script, const ScriptCall& call, AsyncCallback done);

  /// Connections ready for commands right now.
  [[nodiscard]] std::size_t ready_connections() const;

 private:
  struct Slot;
  void Connect(Slot& slot);
  void OnClosed(Slot& slot, bool was_ready);
  void FailSoon(AsyncCallback done, AsyncFailure failure);

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  AsyncOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::size_t next_ = 0;
  /// Handlers posted or waiting on timers hold a weak reference: after destruction they do nothing.
  std::shared_ptr<AsyncClient*> alive_;
};

}  // namespace invsync::redis
