#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace invsync::cli {

/// The text of a progress line: label, bar, done/total, percentage, rate and time left, e.g.
/// "warm [#########-----------] 412,000/1,000,000  41%  205,113/s  ETA 3s". A total of 0 or less
/// (unknown) shows no bar, percentage or ETA; `done` beyond `total` counts as `total`.
[[nodiscard]] std::string FormatProgress(std::string_view label, std::int64_t done,
                                         std::int64_t total, std::chrono::duration<double> elapsed);

/// A one-line progress bar for long commands, redrawn in place (carriage return) at most every
/// `kRedrawEvery`. Draws nothing unless enabled (callers enable it when the stream is a terminal,
/// so logs and pipes stay clean).
class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kRedrawEvery{100};

  ProgressBar(std::ostream& out, std::string label, bool enabled,
              std::function<Clock::time_point()> now = Clock::now);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Records progress; redraws if the last redraw is old enough.
  void Update(std::int64_t done, std::int64_t total);
  /// Draws the final state and ends the line (once; the destructor calls it too).
  void Finish();

 private:
  void Draw();

  std::ostream& out_;
  std::string label_;
  bool enabled_;
  std::function<Clock::time_point()> now_;
  Clock::time_point started_;
  Clock::time_point drawn_at_{};
  bool drawn_ = false;
  bool finished_ = false;
  std::int64_t done_ = 0;
  std::int64_t total_ = 0;
  std::size_t width_ = 0;  ///< length of the last line drawn, to blank leftovers
};

/// True if `fd` is a terminal.
[[nodiscard]] bool IsTerminal(int fd);

}  // namespace invsync::cli
