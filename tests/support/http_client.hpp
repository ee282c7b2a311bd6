#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace invsync::testing {

/// Orders header names without regard to case (HTTP field names are case-insensitive).
struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

/// One HTTP response as a test sees it.
struct Reply {
  int status = 0;
  std::map<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;

  /// The header's value, or "" if absent (lookup ignores case).
  [[nodiscard]] std::string Header(std::string_view name) const;
  [[nodiscard]] bool HasHeader(std::string_view name) const;
  /// The body parsed as JSON; a body that is not JSON fails the test and yields `null`.
  [[nodiscard]] nlohmann::json json() const;
};

/// Extra request headers, in the order they are sent.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// A synchronous HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port. Opens the
/// connection on first use and again whenever the server closed it. Not thread-safe: one per
/// thread.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends one request and reads its response. A non-empty body gets
  /// `Content-Type: application/json` unless `headers` name a Content-Type. Throws
  /// `std::runtime_error` on a transport failure or timeout.
  Reply Send(std::string_view method, std::string_view target, std::string_view body = "",
             const HeaderList& headers = {});

  /// TCP connections opened so far (1 after any number of requests on one kept-alive connection).
  [[nodiscard]] int connections_opened() const { return connections_opened_; }
  /// True while the client holds an open connection (the last response did not close it).
  [[nodiscard]] bool connected() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  int connections_opened_ = 0;
};

/// What came back on a raw connection: the bytes, and whether the server closed it (EOF or
/// reset) before the time ran out.
struct RawRead {
  std::string data;
  bool closed = false;
};

/// A bare TCP connection for hostile tests: sends arbitrary bytes, reads whatever comes back with
/// a time limit, parses responses and notices when the server hangs up.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// Writes all bytes; false if the write failed (the server closed or reset the connection) or
  /// did not finish within `limit`.
  bool Write(std::string_view bytes, std::chrono::milliseconds limit = std::chrono::seconds(10));
  /// Reads one HTTP response (several calls read pipelined responses in order); nullopt if the
  /// connection closed or the time ran out first, or the bytes are not an HTTP response.
  std::optional<Reply> ReadReply(std::chrono::milliseconds limit = std::chrono::seconds(10));
  /// Writes `bytes` while reading the response at the same time, so an early answer (413, 431)
  /// is read even though the server stops reading and resets the connection; the write is
  /// abandoned once the response is in.
  std::optional<Reply> WriteAndReadReply(
      std::string_view bytes, std::chrono::milliseconds limit = std::chrono::seconds(10));
  /// Reads until the server closes the connection or `limit` passes; includes bytes left over
  /// from earlier reads.
  RawRead ReadUntilClosed(std::chrono::milliseconds limit);
  /// True if the server has closed the connection: waits up to `limit` for EOF or a reset,
  /// discarding any bytes that arrive meanwhile.
  bool WaitClosed(std::chrono::milliseconds limit);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// The request line and headers of a minimal HTTP/1.1 request, ready for a raw connection.
[[nodiscard]] std::string RawRequest(std::string_view method, std::string_view target,
                                     std::string_view body = "", const HeaderList& headers = {});

/// Whether `reply` is the contract's error: `status` with
/// `{"error":{"code":code,"message":"<non-empty>",...}}`. Use as EXPECT_TRUE(IsError(...)).
[[nodiscard]] ::testing::AssertionResult IsError(const Reply& reply, int status,
                                                 std::string_view code);
/// Whether `reply` is a 422 with `code` whose "field" is `field`.
[[nodiscard]] ::testing::AssertionResult IsInvalid(const Reply& reply, std::string_view code,
                                                   std::string_view field);

}  // namespace invsync::testing
