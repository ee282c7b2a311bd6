#pragma once

#include <stdexcept>
#include <string>

namespace invsync {

/// Root of the infrastructure failures (Redis, database, configuration). Business outcomes such as
/// insufficient stock are values, never exceptions.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A failure that may pass if retried: lost connection, timeout, server restarting, deadlock.
class TransientError : public Error {
 public:
  using Error::Error;
};

/// A call that reached the server but whose answer was lost (the connection broke or timed out
/// after the request was written): it may or may not have taken effect. Retrying an idempotent
/// call (same order id or request id) tells which.
class OutcomeUnknownError : public TransientError {
 public:
  using TransientError::TransientError;
};

/// A failure that retrying will not fix: bad credentials, malformed reply, schema mismatch.
class PermanentError : public Error {
 public:
  using Error::Error;
};

/// A statement the database refused because of the values it carries (a data exception such as an
/// overflow, a constraint violation): the same values fail the same way however often they are
/// retried. Any other refusal (a read-only standby, a timeout, a revoked privilege) is about the
/// database, not the data, and may pass once an operator or a failover fixes it.
class RejectedDataError : public PermanentError {
 public:
  using PermanentError::PermanentError;
};

/// A setting that is missing or invalid; the message names the setting.
class ConfigError : public PermanentError {
 public:
  using PermanentError::PermanentError;
};

}  // namespace invsync
