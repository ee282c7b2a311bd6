// Decoding of stream entries: what the scripts write is read back; anything else is refused with
// a reason instead of crashing the persister.
#include "persister/event_codec.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/validation.hpp"

namespace invsync::persister {
namespace {

redis::Value Str(std::string text) {
  return {.type = redis::Value::Type::kString, .str = std::move(text)};
}

redis::Value Fields(std::vector<std::string> texts) {
  redis::Value value{.type = redis::Value::Type::kArray};
  for (auto& text : texts) {
    value.elements.push_back(Str(std::move(text)));
  }
  return value;
}

TEST(EventCodec, DecodesAMultiLineDeduction) {
  std::string problem;
  auto event = DecodeEvent("1-0", Fields({"kind", "deduct", "ref", "o1", "deltas", "A -2\nB:x -1"}),
                           problem);
  ASSERT_TRUE(event) << problem;
  EXPECT_EQ(event->EventId(), "deduct:o1");
  ASSERT_EQ(event->deltas.size(), 2U);
  EXPECT_EQ(event->deltas[1].sku, "B:x");
  EXPECT_EQ(event->deltas[1].delta, -1);
}

TEST(EventCodec, RefusesMalformedEntriesWithAReason) {
  const std::vector<redis::Value> bad = {
      redis::Value{},                                             // deleted entry (nil)
      Fields({"kind", "deduct", "ref"}),                          // odd field count
      Fields({"kind", "bogus", "ref", "o1", "deltas", "A 1"}),    // unknown kind
      Fields({"kind", "deduct", "ref", "", "deltas", "A 1"}),     // empty ref
      Fields({"kind", "deduct", "ref", "o 1", "deltas", "A 1"}),  // ref with a space
      Fields({"kind", "deduct", "ref", "o1"}),                    // no deltas
      Fields({"kind", "deduct", "ref", "o1", "deltas", ""}),      // empty deltas
      Fields({"kind", "deduct", "ref", "o1", "deltas", "A"}),     // no delta
      Fields({"kind", "deduct", "ref", "o1", "deltas", "A x"}),   // non-integer
      Fields({"kind", "deduct", "ref", "o1", "deltas", "A 99999999999999999999"}),  // overflow
      Fields({"kind", "deduct", "ref", "o1", "deltas", " 1"}),                      // empty SKU
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    std::string problem;
    EXPECT_FALSE(DecodeEvent("1-0", bad[i], problem)) << "case " << i;
    EXPECT_FALSE(problem.empty()) << "case " << i;
  }
}

// The largest delta any script writes is accepted; past it, an entry is foreign or corrupt, and
// its delta must not reach a batch's per-SKU sum, where it could overflow 64 bits.
TEST(EventCodec, RefusesADeltaPastTheLargestAnyScriptWrites) {
  const std::string largest = std::to_string(core::kMaxEventDelta);
  for (const std::string& delta : {largest, "-" + largest}) {
    std::string problem;
    auto event =
        DecodeEvent("1-0", Fields({"kind", "set", "ref", "r1", "deltas", "A " + delta}), problem);
    ASSERT_TRUE(event) << delta << ": " << problem;
    EXPECT_EQ(std::to_string(event->deltas[0].delta), delta);
  }
  const std::string past = std::to_string(core::kMaxEventDelta + 1);
  for (const std::string& delta : {past, "-" + past, std::string("9223372036854775000")}) {
    std::string problem;
    EXPECT_FALSE(DecodeEvent(
        "1-0", Fields({"kind", "restock", "ref", "r1", "deltas", "A 1\nB " + delta}), problem))
        << delta;
    EXPECT_NE(problem.find("delta out of range"), std::string::npos) << problem;
    EXPECT_NE(problem.find(delta), std::string::npos) << problem;
  }
}

TEST(EventCodec, RefusesNonStringFields) {
  redis::Value fields = Fields({"kind", "deduct", "ref", "o1", "deltas"});
  fields.elements.push_back({.type = redis::Value::Type::kInteger, .integer = 5});
  std::string problem;
  EXPECT_FALSE(DecodeEvent("1-0", fields, problem));
}

}  // namespace
}  // namespace invsync::persister
