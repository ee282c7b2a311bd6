#pragma once

#include <boost/container/small_vector.hpp>
#include <cstddef>

#include "redis/client.hpp"

namespace invsync::redis::detail {

/// The argument arrays hiredis takes for one command (`argv`, `argvlen`), viewing `args`.
class Argv {
 public:
  explicit Argv(const Args& args) {
    pointers_.reserve(args.size());
    lengths_.reserve(args.size());
    for (std::string_view arg : args) {
      pointers_.push_back(arg.data());
      lengths_.push_back(arg.size());
    }
  }

  [[nodiscard]] int count() const { return static_cast<int>(pointers_.size()); }
  [[nodiscard]] const char** pointers() { return pointers_.data(); }
  [[nodiscard]] const std::size_t* lengths() const { return lengths_.data(); }

 private:
  // Most commands have a handful of arguments; an order's script call about a dozen.
  boost::container::small_vector<const char*, 16> pointers_;
  boost::container::small_vector<std::size_t, 16> lengths_;
};

}  // namespace invsync::redis::detail
