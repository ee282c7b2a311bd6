#include "redis/detail/reply.hpp"

namespace invsync::redis::detail {

Value ToValue(const redisReply& reply) {
  Value value;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      value.type = Value::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
      value.type = Value::Type::kString;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = Value::Type::kStatus;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = Value::Type::kError;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      value.type = Value::Type::kArray;
      value.elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i) {
        value.elements.push_back(reply.element[i] != nullptr ? ToValue(*reply.element[i])
                                                             : Value{});
      }
      break;
    default:  // REDIS_REPLY_NIL and anything a newer server might add
      value.type = Value::Type::kNil;
      break;
  }
  return value;
}

}  // namespace invsync::redis::detail
