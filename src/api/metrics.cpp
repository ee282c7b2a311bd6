#include "api/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <tuple>

namespace invsync::api {

namespace {

std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
    }
    out += c == '\n' ? 'n' : c;
  }
  return out;
}

// A client chooses the method: any other token than the standard ones is one label, "other",
// so that requests cannot add series (and memory) without end.
std::string_view MethodLabel(std::string_view method) {
  static constexpr std::array<std::string_view, 9> kStandard = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  return std::find(kStandard.begin(), kStandard.end(), method) != kStandard.end() ? method
                                                                                  : "other";
}

}  // namespace

void AppendSample(std::string& out, std::string_view name, std::string_view labels, double value) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, value);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
}

void AppendFamily(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void AppendMetric(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, double value) {
  AppendFamily(out, name, type, help);
  AppendSample(out, name, "", value);
}

void Metrics::RecordRequest(std::string_view method, std::string_view route, int status,
                            std::chrono::nanoseconds latency) {
  const double seconds = std::chrono::duration<double>(latency).count();
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(MethodLabel(method)), std::string(route), status}];
  auto& histogram = latency_[std::string(route)];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++histogram.buckets[i];
    }
  }
  ++histogram.count;
  histogram.sum += seconds;
}

void Metrics::RecordDeduction(std::string_view outcome) {
  std::lock_guard lock(mutex_);
  ++deductions_[std::string(outcome)];
}

void Metrics::RecordError(std::string_view kind) {
  std::lock_guard lock(mutex_);
  ++errors_[std::string(kind)];
}

void Metrics::AddSource(std::function<void(std::string&)> source) {
  std::lock_guard lock(mutex_);
  sources_.push_back(std::move(source));
}

std::string Metrics::Render() const {
  std::unique_lock lock(mutex_);
  auto requests = requests_;
  auto latency = latency_;
  auto deductions = deductions_;
  auto errors = errors_;
  auto sources = sources_;
  lock.unlock();

  std::string out;
  AppendFamily(out, "invsync_http_requests_total", "counter",
               "HTTP requests answered, by route and status.");
  for (const auto& [key, count] : requests) {
    const auto& [method, route, status] = key;
    AppendSample(out, "invsync_http_requests_total",
                 fmt::format("method=\"{}\",route=\"{}\",status=\"{}\"", Escape(method),
                             Escape(route), status),
                 static_cast<double>(count));
  }
  AppendFamily(out, "invsync_http_request_duration_seconds", "histogram",
               "Time from a complete request to its answer.");
  for (const auto& [route, histogram] : latency) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      AppendSample(out, "invsync_http_request_duration_seconds_bucket",
                   fmt::format("route=\"{}\",le=\"{}\"", Escape(route), kBuckets[i]),
                   static_cast<double>(histogram.buckets[i]));
    }
    AppendSample(out, "invsync_http_request_duration_seconds_bucket",
                 fmt::format("route=\"{}\",le=\"+Inf\"", Escape(route)),
                 static_cast<double>(histogram.count));
    AppendSample(out, "invsync_http_request_duration_seconds_sum",
                 fmt::format("route=\"{}\"", Escape(route)), histogram.sum);
    AppendSample(out, "invsync_http_request_duration_seconds_count",
                 fmt::format("route=\"{}\"", Escape(route)), static_cast<double>(histogram.count));
  }
  AppendFamily(out, "invsync_deductions_total", "counter", "Orders by outcome.");
  for (const auto& [outcome, count] : deductions) {
    AppendSample(out, "invsync_deductions_total", fmt::format("outcome=\"{}\"", outcome),
                 static_cast<double>(count));
  }
  AppendFamily(out, "invsync_errors_total", "counter", "Failures answered 5xx, by kind.");
  for (const auto& [kind, count] : errors) {
    AppendSample(out, "invsync_errors_total", fmt::format("kind=\"{}\"", kind),
                 static_cast<double>(count));
  }
  AppendFamily(out, "invsync_http_fast_path_total", "counter",
               "Cached reads and orders the I/O threads tried to answer with one Redis command, "
               "by where they were answered.");
  AppendSample(out, "invsync_http_fast_path_total", "outcome=\"answered\"",
               static_cast<double>(fast_answered_.load()));
  AppendSample(out, "invsync_http_fast_path_total", "outcome=\"handed_to_worker\"",
               static_cast<double>(fast_handed_over_.load()));
  for (const auto& source : sources) {
    source(out);
  }
  return out;
}

}  // namespace invsync::api
