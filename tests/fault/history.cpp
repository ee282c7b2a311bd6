#include "history.hpp"

namespace invsync::fault {

std::string Op::EventKind() const {
  switch (kind) {
    case OpKind::kOrder:
      return "deduct";
    case OpKind::kCancel:
      return "cancel";
    case OpKind::kRestock:
      return "restock";
  }
  return "?";
}

bool Op::Acknowledged() const { return first.Success() || (retry && retry->Success()); }

void History::Add(Op op) {
  std::lock_guard lock(mutex_);
  ops_.push_back(std::move(op));
}

std::vector<Op> History::Ops() const {
  std::lock_guard lock(mutex_);
  return ops_;
}

void History::Replace(std::vector<Op> ops) {
  std::lock_guard lock(mutex_);
  ops_ = std::move(ops);
}

}  // namespace invsync::fault
