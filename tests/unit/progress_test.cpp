// The progress bar of long CLI commands: its text, and that it redraws at most every 100 ms and
// only when enabled.
#include "cli/progress.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace invsync::cli {
namespace {

using namespace std::chrono_literals;

TEST(FormatProgress, ShowsBarCountsPercentRateAndTimeLeft) {
  EXPECT_EQ(FormatProgress("warm", 250'000, 1'000'000, 2s),
            "warm [######------------------] 250,000/1,000,000  25%  125,000/s  ETA 6s");
  EXPECT_EQ(FormatProgress("warm", 1'000, 1'000, 1s),
            "warm [########################] 1,000/1,000 100%  1,000/s  ETA 0s");
}

TEST(FormatProgress, LongEtasUseMinutesAndHours) {
  EXPECT_NE(FormatProgress("x", 1, 100, 1s).find("ETA 1m39s"), std::string::npos);
  EXPECT_NE(FormatProgress("x", 1, 10'000, 1s).find("ETA 2h46m"), std::string::npos);
}

TEST(FormatProgress, NothingDoneYetHasNoRateOrEta) {
  EXPECT_EQ(FormatProgress("warm", 0, 10, 0s),
            "warm [------------------------] 0/10   0%  -/s  ETA -");
}

TEST(FormatProgress, UnknownTotalShowsCountAndRateOnly) {
  EXPECT_EQ(FormatProgress("warm", 1'234, 0, 2s), "warm 1,234  617/s");
}

TEST(FormatProgress, MoreThanTheTotalCountsAsTheTotal) {
  EXPECT_EQ(FormatProgress("warm", 12, 10, 1s),
            "warm [########################] 10/10 100%  12/s  ETA 0s");
}

class FakeClock {
 public:
  ProgressBar::Clock::time_point now = ProgressBar::Clock::time_point(1h);
  auto Function() {
    return [this] { return now; };
  }
};

TEST(ProgressBar, RedrawsAtMostEveryHundredMilliseconds) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar(out, "warm", true, clock.Function());
  bar.Update(1, 10);  // first update draws
  clock.now += 50ms;
  bar.Update(2, 10);  // too soon
  clock.now += 50ms;
  bar.Update(3, 10);  // 100 ms after the first draw
  bar.Finish();
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3);  // two updates and the final one
  EXPECT_NE(text.find(" 1/10 "), std::string::npos);
  EXPECT_EQ(text.find(" 2/10 "), std::string::npos);
  EXPECT_NE(text.find(" 3/10 "), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressBar, DisabledDrawsNothing) {
  std::ostringstream out;
  {
    ProgressBar bar(out, "warm", false);
    bar.Update(5, 10);
    bar.Finish();
  }
  EXPECT_EQ(out.str(), "");
}

TEST(ProgressBar, ShorterLinesBlankWhatTheLongerOneLeft) {
  FakeClock clock;
  std::ostringstream out;
  ProgressBar bar(out, "warm", true, clock.Function());
  bar.Update(123'456, 0);
  clock.now += 1s;
  bar.Update(1, 0);
  const std::string text = out.str();
  const auto second = text.rfind('\r');
  EXPECT_EQ(text.size() - second - 1, text.find('\r', 1) - 1);  // as long as the first line
}

}  // namespace
}  // namespace invsync::cli
