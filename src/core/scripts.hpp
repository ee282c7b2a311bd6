#pragma once

#include <string>

#include "redis/script.hpp"

namespace invsync::core {

/// The Lua scripts (from lua/, embedded at build time) that make each change atomic.
struct Scripts {
  Scripts();
  // The scripts view these sources: no copies.
  Scripts(const Scripts&) = delete;
  Scripts& operator=(const Scripts&) = delete;

 private:
  // deduct.lua and cancel.lua, each with lua/inflight.lua and lua/order_record.lua in front,
  // adjust.lua with lua/inflight.lua in front, and audit_state.lua and repair.lua, each with
  // lua/stored_quantity.lua in front (Redis scripts cannot share code otherwise). First: the
  // scripts below are built from them.
  std::string deduct_source_;
  std::string cancel_source_;
  std::string adjust_source_;
  std::string audit_state_source_;
  std::string repair_source_;

 public:
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
