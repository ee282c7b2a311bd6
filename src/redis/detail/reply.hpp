#pragma once

#include <hiredis/hiredis.h>

#include <memory>

#include "redis/value.hpp"

namespace invsync::redis::detail {

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept {
    if (reply != nullptr) {
      freeReplyObject(reply);
    }
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

/// Copies a hiredis reply tree into an owned value.
Value ToValue(const redisReply& reply);

}  // namespace invsync::redis::detail
