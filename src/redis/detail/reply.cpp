#include "redis/detail/reply.hpp"

namespace invsync::redis::detail {

namespace {

// hiredis' own reply builders, which every reader starts with.
const redisReplyObjectFunctions* hiredis_functions = nullptr;

void* CreateBoundedArray(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > kMaxReplyElements) {
    return nullptr;  // hiredis reports it as out of memory and drops the connection
  }
  return hiredis_functions->createArray(task, elements);
}

}  // namespace

void BoundReplyArrays(redisReader& reader) {
  static redisReplyObjectFunctions bounded = [&reader] {
    hiredis_functions = reader.fn;
    redisReplyObjectFunctions functions = *reader.fn;
    functions.createArray = CreateBoundedArray;
    return functions;
  }();
  if (reader.fn == hiredis_functions) {
    reader.fn = &bounded;
  }
}

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
