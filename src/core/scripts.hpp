#pragma once

#include "redis/script.hpp"

namespace invsync::core {

/// The Lua scripts (from lua/, embedded at build time) that make each change atomic.
struct Scripts {
  Scripts();
  redis::Script deduct;
  redis::Script cancel;
  redis::Script adjust;
  redis::Script fill;
  redis::Script ack;
  redis::Script stream_state;
  redis::Script unlock;
  redis::Script forget_consumers;
  redis::Script apply_changes;
  redis::Script audit_state;
  redis::Script repair;
};

}  // namespace invsync::core
