#include "cli/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ostream>

namespace invsync::cli {

namespace {

constexpr int kBarWidth = 24;

// 1234567 → "1,234,567".
std::string Grouped(std::int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

// 75 → "1m15s", 3725 → "1h02m", 9 → "9s".
std::string Duration(double seconds) {
  const auto whole = static_cast<std::int64_t>(std::ceil(std::max(0.0, seconds)));
  if (whole >= 3600) {
    return fmt::format("{}h{:02}m", whole / 3600, whole % 3600 / 60);
  }
  if (whole >= 60) {
    return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  }
  return fmt::format("{}s", whole);
}

}  // namespace

std::string FormatProgress(std::string_view label, std::int64_t done, std::int64_t total,
                           std::chrono::duration<double> elapsed) {
  const double seconds = elapsed.count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::string rate_text = seconds > 0 ? Grouped(std::llround(rate)) + "/s" : "-/s";
  if (total <= 0) {
    return fmt::format("{} {}  {}", label, Grouped(done), rate_text);
  }
  const std::int64_t shown = std::clamp<std::int64_t>(done, 0, total);
  const double fraction = static_cast<double>(shown) / static_cast<double>(total);
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string eta = rate > 0 ? Duration(static_cast<double>(total - shown) / rate) : "-";
  return fmt::format("{} [{}{}] {}/{} {:3}%  {}  ETA {}", label, std::string(filled, '#'),
                     std::string(kBarWidth - filled, '-'), Grouped(shown), Grouped(total),
                     static_cast<int>(fraction * 100), rate_text, eta);
}

ProgressBar::ProgressBar(std::ostream& out, std::string label, bool enabled,
                         std::function<Clock::time_point()> now)
    : out_(out),
      label_(std::move(label)),
      enabled_(enabled),
      now_(std::move(now)),
      started_(now_()) {}

ProgressBar::~ProgressBar() {
  try {
    Finish();
  } catch (...) {
    // A failed write to the terminal must not escape a destructor.
  }
}

void ProgressBar::Update(std::int64_t done, std::int64_t total) {
  done_ = done;
  total_ = total;
  if (enabled_ && !finished_ && (!drawn_ || now_() - drawn_at_ >= kRedrawEvery)) {
    Draw();
  }
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) {
    return;
  }
  finished_ = true;
  Draw();
  out_ << '\n' << std::flush;
}

void ProgressBar::Draw() {
  drawn_at_ = now_();
  drawn_ = true;
  std::string line = FormatProgress(label_, done_, total_, drawn_at_ - started_);
  const std::size_t width = line.size();
  if (width < width_) {
    line.append(width_ - width, ' ');
  }
  width_ = width;
  out_ << '\r' << line << std::flush;
}

bool IsTerminal(int fd) { return isatty(fd) == 1; }

}  // namespace invsync::cli
