#include "redis/client.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <csignal>
#include <utility>

#include "common/error.hpp"
#include "common/numbers.hpp"
#include "common/text.hpp"
#include "redis/detail/argv.hpp"
#include "redis/detail/reply.hpp"

namespace invsync::redis {

namespace {

timeval ToTimeval(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  return tv;
}

std::string DecodePassword(std::string_view text, std::string_view url) {
  auto decoded = PercentDecode(text);
  if (!decoded) {
    throw ConfigError(fmt::format("redis.url: bad percent-escape in \"{}\"", url));
  }
  return *decoded;
}

int ParseNumber(std::string_view text, int low, int high, std::string_view what,
                std::string_view url) {
  auto value = ParseInt64(text);
  if (!value || *value < low || *value > high) {
    throw ConfigError(fmt::format("redis.url: {} must be {}..{} in \"{}\"", what, low, high, url));
  }
  return static_cast<int>(*value);
}

// The URL as error messages show it: "redis://user:secret@host" as "redis://user:***@host" (and
// "redis://secret@host", where the whole user part is the password, as "redis://***@host").
std::string WithoutPassword(std::string_view url) {
  const auto scheme = url.find("://");
  const auto at = url.rfind('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme) {
    return std::string(url);
  }
  const std::size_t userinfo = scheme + 3;
  const auto colon = url.substr(userinfo, at - userinfo).find(':');
  const std::size_t secret = colon == std::string_view::npos ? userinfo : userinfo + colon + 1;
  return fmt::format("{}***{}", url.substr(0, secret), url.substr(at));
}

}  // namespace

Endpoint Endpoint::Parse(std::string_view url) {
  const std::string shown = WithoutPassword(url);  // for messages: they end up in logs
  Endpoint endpoint;
  constexpr std::string_view kTcp = "redis://";
  constexpr std::string_view kUnix = "unix://";
  if (url.starts_with(kUnix)) {
    std::string_view rest = url.substr(kUnix.size());
    auto query = rest.find('?');
    endpoint.unix_path = std::string(rest.substr(0, query));
    if (query != std::string_view::npos) {
      std::string_view params = rest.substr(query + 1);
      if (!params.starts_with("db=")) {
        throw ConfigError(fmt::format("redis.url: only ?db=N is understood in \"{}\"", shown));
      }
      endpoint.db = ParseNumber(params.substr(3), 0, 1 << 20, "db", shown);
    }
    if (endpoint.unix_path.empty() || endpoint.unix_path.front() != '/') {
      throw ConfigError(
          fmt::format("redis.url: unix socket path must be absolute in \"{}\"", shown));
    }
    return endpoint;
  }
  if (!url.starts_with(kTcp)) {
    throw ConfigError(
        fmt::format("redis.url: must start with redis:// or unix:// (got \"{}\")", shown));
  }
  std::string_view rest = url.substr(kTcp.size());
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    auto colon = userinfo.find(':');
    endpoint.password = DecodePassword(
        colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1), shown);
    rest = rest.substr(at + 1);
  }
  auto slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < rest.size()) {
    endpoint.db = ParseNumber(rest.substr(slash + 1), 0, 1 << 20, "db", shown);
  }
  std::string_view host = hostport;
  if (hostport.starts_with('[')) {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      throw ConfigError(fmt::format("redis.url: unclosed '[' in \"{}\"", shown));
    }
    host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') {
        throw ConfigError(fmt::format("redis.url: expected ':' after ']' in \"{}\"", shown));
      }
      endpoint.port = ParseNumber(hostport.substr(close + 2), 1, 65535, "port", shown);
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    endpoint.port = ParseNumber(hostport.substr(colon + 1), 1, 65535, "port", shown);
  }
  if (host.empty()) {
    throw ConfigError(fmt::format("redis.url: missing host in \"{}\"", shown));
  }
  endpoint.host = std::string(host);
  return endpoint;
}

std::string Endpoint::Describe() const {
  if (!unix_path.empty()) {
    return fmt::format("unix://{}?db={}", unix_path, db);
  }
  return fmt::format("redis://{}:{}/{}", host, port, db);
}

Connection::Connection(const Endpoint& endpoint, std::chrono::milliseconds timeout) {
  // hiredis writes with write(2): a server that went away would raise SIGPIPE, whose default
  // action ends the process. Ignored once, process-wide: the write then fails with EPIPE and
  // the connection reports itself broken.
  static const bool kSigpipeIgnored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)kSigpipeIgnored;
  timeval tv = ToTimeval(timeout);
  context_ = endpoint.unix_path.empty()
                 ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                 : redisConnectUnixWithTimeout(endpoint.unix_path.c_str(), tv);
  if (context_ == nullptr) {
    throw TransientError("cannot allocate a Redis connection");
  }
  if (context_->err != 0) {
    std::string message =
        fmt::format("cannot connect to Redis at {}: {}", endpoint.Describe(), context_->errstr);
    redisFree(context_);
    context_ = nullptr;
    throw TransientError(message);
  }
  detail::BoundReplyArrays(*context_->reader);
  try {
    SetTimeout(timeout);
    if (endpoint.unix_path.empty()) {
      redisEnableKeepAlive(context_);
    }
    if (!endpoint.password.empty()) {
      ThrowIfError(Command({"AUTH", endpoint.password}), "AUTH");
    }
    if (endpoint.db != 0) {
      std::string db = std::to_string(endpoint.db);
      ThrowIfError(Command({"SELECT", db}), "SELECT");
    }
  } catch (...) {
    redisFree(context_);
    context_ = nullptr;
    throw;
  }
}

Connection::~Connection() {
  if (context_ != nullptr) {
    redisFree(context_);
  }
}

Connection::Connection(Connection&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)), broken_(other.broken_) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr) {
      redisFree(context_);
    }
    context_ = std::exchange(other.context_, nullptr);
    broken_ = other.broken_;
  }
  return *this;
}

void Connection::SetTimeout(std::chrono::milliseconds timeout) {
  if (redisSetTimeout(context_, ToTimeval(timeout)) != REDIS_OK) {
    broken_ = true;
    throw TransientError("cannot set the Redis socket timeout");
  }
}

void Connection::Append(const Args& args) {
  if (broken_) {
    throw TransientError("Redis connection is broken");
  }
  detail::Argv argv(args);
  if (redisAppendCommandArgv(context_, argv.count(), argv.pointers(), argv.lengths()) != REDIS_OK) {
    broken_ = true;
    throw TransientError(fmt::format("Redis write failed: {}", context_->errstr));
  }
}

Value Connection::Read() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    broken_ = true;
    // The command was handed to the socket: Redis may have run it before the connection broke.
    throw OutcomeUnknownError(
        fmt::format("Redis connection lost before the reply (the call may have taken effect): {}",
                    context_->err != 0 ? context_->errstr : "no reply"));
  }
  detail::ReplyPtr reply(static_cast<redisReply*>(raw));
  return detail::ToValue(*reply);
}

Value Connection::Command(const Args& args) {
  Append(args);
  Value value = Read();
  ThrowIfError(value, args.empty() ? std::string_view("command") : args.front());
  return value;
}

std::vector<Value> Connection::Pipeline(const std::vector<Args>& commands) {
  for (const auto& args : commands) {
    Append(args);
  }
  std::vector<Value> values;
  values.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    values.push_back(Read());
  }
  return values;
}

Pool::Pool(Endpoint endpoint, std::size_t size, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      connections_([this] { return std::make_unique<Connection>(endpoint_, timeout_); }, size,
                   timeout, "Redis") {}

}  // namespace invsync::redis
