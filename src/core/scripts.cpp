#include "core/scripts.hpp"

#include "invsync_lua.hpp"

namespace invsync::core {

Scripts::Scripts()
    : deduct_source_(std::string(lua::kOrderRecord) + std::string(lua::kDeduct)),
      cancel_source_(std::string(lua::kOrderRecord) + std::string(lua::kCancel)),
      deduct("deduct", deduct_source_),
      cancel("cancel", cancel_source_),
      adjust("adjust", lua::kAdjust),
      fill("fill", lua::kFill),
      ack("ack", lua::kAck),
      stream_state("stream_state", lua::kStreamState),
      unlock("unlock", lua::kUnlock),
      forget_consumers("forget_consumers", lua::kForgetConsumers),
      apply_changes("apply_changes", lua::kApplyChanges),
      audit_state("audit_state", lua::kAuditState),
      repair("repair", lua::kRepair) {}

}  // namespace invsync::core
