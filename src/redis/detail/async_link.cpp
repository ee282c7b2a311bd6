#include "redis/detail/async_link.hpp"

#include <fmt/format.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "redis/detail/argv.hpp"
#include "redis/detail/reply.hpp"

namespace invsync::redis::detail {

namespace net = boost::asio;

namespace {

AsyncLink* LinkOf(const redisAsyncContext* context) {
  return static_cast<AsyncLink*>(context->ev.data);
}

}  // namespace

AsyncLink::AsyncLink(net::io_context& io, std::chrono::milliseconds timeout,
                     ClosedHandler on_closed)
    : io_(io), timeout_(timeout), on_closed_(std::move(on_closed)), socket_(io), ticker_(io) {}

AsyncLink::~AsyncLink() {
  Close();
  if (socket_.is_open()) {
    socket_.release();  // never close: the socket belonged to hiredis
  }
}

bool AsyncLink::Open(const Endpoint& endpoint, std::string& error) {
  description_ = endpoint.Describe();
  redisAsyncContext* context = endpoint.unix_path.empty()
                                   ? redisAsyncConnect(endpoint.host.c_str(), endpoint.port)
                                   : redisAsyncConnectUnix(endpoint.unix_path.c_str());
  if (context == nullptr) {
    error = "cannot allocate a Redis connection";
    return false;
  }
  if (context->err != 0) {
    error = context->errstr;
    redisAsyncFree(context);
    return false;
  }
  boost::system::error_code ec;
  socket_.assign(context->c.fd, ec);
  if (ec) {
    error = ec.message();
    redisAsyncFree(context);
    return false;
  }
  BoundReplyArrays(*context->c.reader);
  context->ev.data = this;
  context->ev.addRead = HookAddRead;
  context->ev.delRead = HookDelRead;
  context->ev.addWrite = HookAddWrite;
  context->ev.delWrite = HookDelWrite;
  context->ev.cleanup = HookCleanup;
  redisAsyncSetConnectCallback(context, OnConnect);
  redisAsyncSetDisconnectCallback(context, OnDisconnect);
  context_ = context;
  state_ = State::kConnecting;
  Handshake(endpoint);
  Tick();
  return context_ != nullptr;
}

void AsyncLink::Handshake(const Endpoint& endpoint) {
  std::vector<std::vector<std::string>> commands;
  if (!endpoint.password.empty()) {
    commands.push_back({"AUTH", endpoint.password});
  }
  if (endpoint.db != 0) {
    commands.push_back({"SELECT", std::to_string(endpoint.db)});
  }
  if (commands.empty()) {
    commands.push_back({"PING"});
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const bool last = i + 1 == commands.size();
    const std::string what = commands[i].front();
    Args args(commands[i].begin(), commands[i].end());
    AsyncCallback done = [weak = weak_from_this(), what, last](AsyncReply&& reply) {
      auto self = weak.lock();
      if (!self || self->state_ != State::kConnecting || !reply.ok()) {
        return;
      }
      if (reply.value.IsError()) {
        return self->Fail(AsyncFailure::kConnectionLost,
                          fmt::format("{} refused: {}", what, reply.value.str));
      }
      if (last) {
        self->state_ = State::kReady;
        self->was_ready_ = true;
      }
    };
    Queue(args, done);
  }
}

bool AsyncLink::Send(const Args& args, AsyncCallback& done) {
  return state_ == State::kReady && Queue(args, done);
}

bool AsyncLink::Queue(const Args& args, AsyncCallback& done) {
  Argv argv(args);
  // Queued before the call: hiredis may ask for a write from inside it.
  pending_.push_back({std::move(done), std::chrono::steady_clock::now()});
  if (redisAsyncCommandArgv(context_, OnReply, this, argv.count(), argv.pointers(),
                            argv.lengths()) != REDIS_OK) {
    done = std::move(pending_.back().done);
    pending_.pop_back();
    return false;
  }
  return true;
}

void AsyncLink::Close() {
  dropping_ = true;
  ticker_.cancel();
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    MarkClosed();
    redisAsyncFree(context);  // runs the pending callbacks with no reply: dropped
  }
  pending_.clear();
  failed_.clear();
}

void AsyncLink::Fail(AsyncFailure failure, const std::string& why) {
  if (context_ == nullptr) {
    return;
  }
  spdlog::warn("Redis connection to {} dropped ({} commands pending): {}", description_,
               pending_.size(), why);
  failure_ = failure;
  redisAsyncContext* context = context_;
  MarkClosed();
  redisAsyncFree(context);  // runs the pending callbacks with no reply: collected in failed_
}

void AsyncLink::MarkClosed() {
  context_ = nullptr;
  state_ = State::kClosed;
  if (!dropping_ && !closed_notified_) {
    closed_notified_ = true;
    net::post(io_, [handler = on_closed_, was_ready = was_ready_] { handler(was_ready); });
  }
}

void AsyncLink::DeliverFailures() {
  if (failed_.empty()) {
    return;
  }
  net::post(io_, [self = shared_from_this(), failed = std::move(failed_), failure = failure_] {
    if (self->dropping_) {
      return;  // closed by its owner meanwhile: no more callbacks
    }
    for (const auto& done : failed) {
      done(AsyncReply{.failure = failure});
    }
  });
  failed_.clear();
}

void AsyncLink::TakeReply(const redisReply* reply) {
  if (pending_.empty()) {
    return;  // hiredis and this queue register every command together; cannot happen
  }
  Pending entry = std::move(pending_.front());
  pending_.pop_front();
  if (reply == nullptr) {  // the context is being freed
    if (!dropping_) {
      failed_.push_back(std::move(entry.done));
    }
    return;
  }
  entry.done(AsyncReply{.value = ToValue(*reply)});
}

void AsyncLink::WantRead() {
  want_read_ = true;
  Await(net::posix::stream_descriptor::wait_read, &AsyncLink::read_waiting_, &AsyncLink::want_read_,
        &AsyncLink::ReadReady);
}

void AsyncLink::Await(net::posix::stream_descriptor::wait_type type, bool AsyncLink::*waiting,
                      bool AsyncLink::*wanted, void (AsyncLink::*ready)()) {
  if (this->*waiting) {
    return;
  }
  this->*waiting = true;
  socket_.async_wait(type, [self = shared_from_this(), waiting, wanted,
                            ready](const boost::system::error_code& ec) {
    AsyncLink& link = *self;
    link.*waiting = false;
    if (!ec && link.context_ != nullptr && link.*wanted) {
      (link.*ready)();
    }
  });
}

void AsyncLink::ReadReady() {
  // hiredis reads one 16 KiB chunk per call and asks for the next read wait; starting that wait
  // re-arms the (edge-triggered) epoll registration, so replies left unread are reported again.
  redisAsyncHandleRead(context_);
  DeliverFailures();
}

void AsyncLink::WantWrite() {
  want_write_ = true;
  if (context_ == nullptr) {
    return;
  }
  if ((context_->c.flags & REDIS_CONNECTED) == 0 || in_write_) {
    // Connecting (writable = connected), or the last write filled the socket buffer.
    return WaitWritable();
  }
  if (!flush_posted_) {
    // Everything queued until the posted flush runs goes out in one write.
    flush_posted_ = true;
    net::post(io_, [self = shared_from_this()] {
      self->flush_posted_ = false;
      if (self->context_ != nullptr && self->want_write_) {
        self->WriteReady();
      }
    });
  }
}

void AsyncLink::WaitWritable() {
  Await(net::posix::stream_descriptor::wait_write, &AsyncLink::write_waiting_,
        &AsyncLink::want_write_, &AsyncLink::WriteReady);
}

void AsyncLink::WriteReady() {
  in_write_ = true;
  redisAsyncHandleWrite(context_);
  in_write_ = false;
  DeliverFailures();
}

void AsyncLink::Tick() {
  if (context_ == nullptr) {
    return;
  }
  if (!pending_.empty() && std::chrono::steady_clock::now() - pending_.front().queued > timeout_) {
    Fail(AsyncFailure::kTimedOut, fmt::format("no reply within {} ms", timeout_.count()));
    DeliverFailures();
    return;
  }
  const auto tick =
      std::clamp(timeout_ / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(500));
  ticker_.expires_after(tick);
  ticker_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (auto self = weak.lock(); self && !ec) {
      self->Tick();
    }
  });
}

void AsyncLink::HookAddRead(void* data) noexcept {
  try {
    static_cast<AsyncLink*>(data)->WantRead();
  } catch (const std::exception& error) {
    spdlog::error("Redis connection: cannot wait for replies: {}", error.what());
  }
}

void AsyncLink::HookDelRead(void* data) noexcept {
  static_cast<AsyncLink*>(data)->want_read_ = false;
}

void AsyncLink::HookAddWrite(void* data) noexcept {
  try {
    static_cast<AsyncLink*>(data)->WantWrite();
  } catch (const std::exception& error) {
    spdlog::error("Redis connection: cannot schedule a write: {}", error.what());
  }
}

void AsyncLink::HookDelWrite(void* data) noexcept {
  static_cast<AsyncLink*>(data)->want_write_ = false;
}

void AsyncLink::HookCleanup(void* data) noexcept {
  auto* link = static_cast<AsyncLink*>(data);
  link->want_read_ = false;
  link->want_write_ = false;
  if (link->socket_.is_open()) {
    // hiredis closes the socket; the descriptor only lets go of it (pending waits are aborted).
    link->socket_.release();
  }
}

void AsyncLink::OnConnect(const redisAsyncContext* context, int status) noexcept {
  if (status == REDIS_OK) {
    return;
  }
  // hiredis frees the context right after this; its pending commands fail.
  AsyncLink* link = LinkOf(context);
  spdlog::warn("cannot connect to Redis at {}: {}", link->description_,
               context->errstr != nullptr ? context->errstr : "unknown error");
  link->failure_ = AsyncFailure::kConnectionLost;
  link->MarkClosed();
}

void AsyncLink::OnDisconnect(const redisAsyncContext* context, int status) noexcept {
  AsyncLink* link = LinkOf(context);
  if (status != REDIS_OK && link->context_ != nullptr) {
    spdlog::warn("Redis connection to {} lost ({} commands pending): {}", link->description_,
                 link->pending_.size(),
                 context->errstr != nullptr ? context->errstr : "unknown error");
  }
  link->MarkClosed();
}

void AsyncLink::OnReply(redisAsyncContext* /*context*/, void* reply, void* privdata) noexcept {
  try {
    static_cast<AsyncLink*>(privdata)->TakeReply(static_cast<const redisReply*>(reply));
  } catch (const std::exception& error) {
    spdlog::error("Redis reply callback failed: {}", error.what());
  }
}

}  // namespace invsync::redis::detail
