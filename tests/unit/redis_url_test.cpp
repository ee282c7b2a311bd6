// Redis URL parsing: what is accepted, and that every mistake is a ConfigError.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "redis/client.hpp"

namespace invsync::redis {
namespace {

TEST(RedisUrl, ParsesHostPortDbAndPassword) {
  auto endpoint = Endpoint::Parse("redis://:s%40cret@cache.local:6380/2");
  EXPECT_EQ(endpoint.host, "cache.local");
  EXPECT_EQ(endpoint.port, 6380);
  EXPECT_EQ(endpoint.db, 2);
  EXPECT_EQ(endpoint.password, "s@cret");
  EXPECT_EQ(endpoint.Describe().find("cret"), std::string::npos);
}

TEST(RedisUrl, DefaultsPortAndDb) {
  auto endpoint = Endpoint::Parse("redis://127.0.0.1");
  EXPECT_EQ(endpoint.port, 6379);
  EXPECT_EQ(endpoint.db, 0);
}

TEST(RedisUrl, ParsesIpv6AndUnixSockets) {
  EXPECT_EQ(Endpoint::Parse("redis://[::1]:7000").host, "::1");
  auto unix_endpoint = Endpoint::Parse("unix:///run/redis.sock?db=3");
  EXPECT_EQ(unix_endpoint.unix_path, "/run/redis.sock");
  EXPECT_EQ(unix_endpoint.db, 3);
}

TEST(RedisUrl, RejectsMalformedUrls) {
  for (const char* bad :
       {"", "http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h:port",
        "redis://h/x", "redis://[::1", "unix://relative", "unix:///s?foo=1", "redis://:%zz@h"}) {
    EXPECT_THROW((void)Endpoint::Parse(bad), ConfigError) << bad;
  }
}

// The messages end up in logs and terminals: they quote the URL without its password.
TEST(RedisUrl, MistakesAreReportedWithoutThePassword) {
  for (const char* bad : {"redis://:s3cr3tpw@127.0.0.1:99999/0", "redis://user:s3cr3tpw@h/x",
                          "redis://s3cr3tpw@h:port", "redis://:s3cr3tpw%zz@h"}) {
    try {
      static_cast<void>(Endpoint::Parse(bad));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.find("s3cr3tpw"), std::string::npos) << message;
      EXPECT_NE(message.find("***@"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace invsync::redis
