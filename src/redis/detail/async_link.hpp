#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/async_client.hpp"

struct redisAsyncContext;
struct redisReply;

namespace invsync::redis::detail {

/// One hiredis asynchronous connection driven by Boost.Asio: hiredis's event hooks (addRead,
/// delRead, addWrite, delWrite, cleanup) are served by waits on a stream_descriptor that views
/// the connection's socket (hiredis owns and closes it). Commands queued while a handler runs are
/// written together by one posted flush; a write that fills the socket buffer waits for
/// writability. Single-threaded, like `AsyncClient`.
class AsyncLink : public std::enable_shared_from_this<AsyncLink> {
 public:
  enum class State { kConnecting, kReady, kClosed };
  /// Posted once when the link closes on its own (connection failed or lost, timeout, refused
  /// handshake); not after `Close`. The argument says whether the handshake had completed.
  using ClosedHandler = std::function<void(bool was_ready)>;

  AsyncLink(boost::asio::io_context& io, std::chrono::milliseconds timeout,
            ClosedHandler on_closed);
  ~AsyncLink();
  AsyncLink(const AsyncLink&) = delete;
  AsyncLink& operator=(const AsyncLink&) = delete;

  /// Starts connecting and queues the handshake (AUTH, SELECT; PING when neither applies).
  /// Returns false, with the reason in `error`, if the connection cannot even start.
  bool Open(const Endpoint& endpoint, std::string& error);
  /// Queues a command; false (and `done` left as it was) if the link cannot take commands.
  bool Send(const Args& args, AsyncCallback& done);
  /// Closes now; pending callbacks are dropped and the closed handler is not called.
  void Close();

  [[nodiscard]] State state() const { return state_; }

 private:
  struct Pending {
    AsyncCallback done;
    std::chrono::steady_clock::time_point queued;
  };

  // hiredis hooks and callbacks (C linkage expectations: they never throw).
  static void HookAddRead(void* data) noexcept;
  static void HookDelRead(void* data) noexcept;
  static void HookAddWrite(void* data) noexcept;
  static void HookDelWrite(void* data) noexcept;
  static void HookCleanup(void* data) noexcept;
  static void OnConnect(const redisAsyncContext* context, int status) noexcept;
  static void OnDisconnect(const redisAsyncContext* context, int status) noexcept;
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata) noexcept;

  bool Queue(const Args& args, AsyncCallback& done);
  void Handshake(const Endpoint& endpoint);
  void TakeReply(const redisReply* reply);
  void WantRead();
  void WantWrite();
  void WaitWritable();
  /// Waits (once at a time) for the socket to be ready; then calls `ready` if still `wanted`.
  void Await(boost::asio::posix::stream_descriptor::wait_type type, bool AsyncLink::*waiting,
             bool AsyncLink::*wanted, void (AsyncLink::*ready)());
  void ReadReady();
  void WriteReady();
  void Tick();
  /// Drops the connection: pending commands fail with `failure`.
  void Fail(AsyncFailure failure, const std::string& why);
  void MarkClosed();
  /// Posts the callbacks of commands that failed while hiredis ran.
  void DeliverFailures();

  boost::asio::io_context& io_;
  std::chrono::milliseconds timeout_;
  ClosedHandler on_closed_;
  std::string description_;
  redisAsyncContext* context_ = nullptr;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer ticker_;
  std::deque<Pending> pending_;
  std::vector<AsyncCallback> failed_;
  AsyncFailure failure_ = AsyncFailure::kConnectionLost;
  State state_ = State::kClosed;
  bool was_ready_ = false;
  bool closed_notified_ = false;
  bool dropping_ = false;
  bool want_read_ = false;
  bool read_waiting_ = false;
  bool want_write_ = false;
  bool write_waiting_ = false;
  bool flush_posted_ = false;
  bool in_write_ = false;
};

}  // namespace invsync::redis::detail
