#include "redis/async_client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

#include "redis/detail/async_link.hpp"

namespace invsync::redis {

namespace net = boost::asio;

struct AsyncClient::Slot {
  explicit Slot(net::io_context& io) : retry(io) {}
  std::shared_ptr<detail::AsyncLink> link;
  net::steady_timer retry;
  std::chrono::milliseconds backoff{0};
};

AsyncClient::AsyncClient(net::io_context& io, Endpoint endpoint, AsyncOptions options)
    : io_(io),
      endpoint_(std::move(endpoint)),
      options_(options),
      alive_(std::make_shared<AsyncClient*>(this)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.connections); ++i) {
    slots_.push_back(std::make_unique<Slot>(io_));
  }
}

AsyncClient::~AsyncClient() {
  alive_.reset();
  for (auto& slot : slots_) {
    slot->retry.cancel();
    if (slot->link) {
      slot->link->Close();
    }
  }
}

void AsyncClient::Start() {
  for (auto& slot : slots_) {
    if (!slot->link) {
      Connect(*slot);
    }
  }
}

void AsyncClient::Connect(Slot& slot) {
  std::weak_ptr<AsyncClient*> weak = alive_;
  Slot* target = &slot;
  slot.link = std::make_shared<detail::AsyncLink>(io_, options_.command_timeout,
                                                  [weak, target](bool was_ready) {
                                                    if (auto alive = weak.lock()) {
                                                      (*alive)->OnClosed(*target, was_ready);
                                                    }
                                                  });
  std::string error;
  if (!slot.link->Open(endpoint_, error)) {
    spdlog::warn("cannot connect to Redis at {}: {}", endpoint_.Describe(), error);
    slot.link->Close();
    OnClosed(slot, false);
  }
}

void AsyncClient::OnClosed(Slot& slot, bool was_ready) {
  slot.link.reset();
  slot.backoff = was_ready ? options_.min_backoff
                           : std::clamp(slot.backoff * 2, options_.min_backoff,
                                        std::max(options_.min_backoff, options_.max_backoff));
  std::weak_ptr<AsyncClient*> weak = alive_;
  Slot* target = &slot;
  slot.retry.expires_after(slot.backoff);
  slot.retry.async_wait([weak, target](const boost::system::error_code& ec) {
    auto alive = weak.lock();
    if (alive && !ec) {
      (*alive)->Connect(*target);
    }
  });
}

void AsyncClient::Command(const Args& args, AsyncCallback done) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = *slots_[next_];
    next_ = (next_ + 1) % slots_.size();
    if (slot.link && slot.link->Send(args, done)) {
      return;
    }
  }
  FailSoon(std::move(done), AsyncFailure::kNotConnected);
}

void AsyncClient::RunScript(const Script& script, const ScriptCall& call, AsyncCallback done) {
  const std::string key_count = std::to_string(call.keys.size());
  std::weak_ptr<AsyncClient*> weak = alive_;
  Command(ScriptArgs("EVALSHA", script.sha(), call, key_count),
          [weak, &script, &call, done = std::move(done)](AsyncReply&& reply) mutable {
            if (reply.ok() && IsNoScript(reply.value)) {
              // The call did not run. EVAL runs it and puts the script back in the cache.
              if (auto alive = weak.lock()) {
                const std::string key_count = std::to_string(call.keys.size());
                (*alive)->Command(ScriptArgs("EVAL", script.source(), call, key_count),
                                  std::move(done));
              }
              return;
            }
            done(std::move(reply));
          });
}

std::size_t AsyncClient::ready_connections() const {
  return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](const auto& slot) {
    return slot->link && slot->link->state() == detail::AsyncLink::State::kReady;
  }));
}

void AsyncClient::FailSoon(AsyncCallback done, AsyncFailure failure) {
  std::weak_ptr<AsyncClient*> weak = alive_;
  net::post(io_, [weak, done = std::move(done), failure] {
    if (weak.lock()) {
      done(AsyncReply{.failure = failure});
    }
  });
}

}  // namespace invsync::redis
