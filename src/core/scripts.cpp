#include "core/scripts.hpp"

#include "invsync_lua.hpp"

namespace invsync::core {

Scripts::Scripts()
    : deduct_source_(std::string(lua::kInflight) + std::string(lua::kOrderRecord) +
                     std::string(lua::kDeduct)),
      cancel_source_(std::string(lua::kInflight) + std::string(lua::kOrderRecord) +
                     std::string(lua::kCancel)),
      adjust_source_(std::string(lua::kInflight) + std::string(lua::kAdjust)),
      audit_state_source_(std::string(lua::kStoredQuantity) + std::string(lua::kAuditState)),
      repair_source_(std::string(lua::kStoredQuantity) + std::string(lua::kRepair)),
      deduct("deduct", deduct_source_),
      cancel("cancel", cancel_source_),
      adjust("adjust", adjust_source_),
      fill("fill", lua::kFill),
      ack("ack", lua::kAck),
      stream_state("stream_state", lua::kStreamState),
      unlock("unlock", lua::kUnlock),
      forget_consumers("forget_consumers", lua::kForgetConsumers),
      apply_changes("apply_changes", lua::kApplyChanges),
      audit_state("audit_state", audit_state_source_),
      repair("repair", repair_source_) {}

}  // namespace invsync::core
