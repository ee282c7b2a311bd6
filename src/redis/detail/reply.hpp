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

/// Most elements an array reply may announce. hiredis allocates an array's element table when it
/// reads the header, before any element arrives, so unbounded a peer's 13 bytes
/// ("*2000000000\r\n") cost 16 GB. invsync's largest replies (a persister batch, at most 100,000
/// stream entries) stay far below.
inline constexpr int kMaxReplyElements = 1 << 20;

/// Makes `reader` refuse an array header over kMaxReplyElements: the reply fails as a protocol
/// error ("Out of memory"), and the connection with it, instead of the allocation being tried.
void BoundReplyArrays(redisReader& reader);

}  // namespace invsync::redis::detail
