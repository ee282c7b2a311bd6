-- Loaded in front of adjust.lua, and of lua/order_record.lua for deduct.lua and cancel.lua.
--
-- Raises a SKU's in-flight count (events in the stream not yet persisted; ack.lua lowers it) in a
-- way that cannot fail. Redis does not roll a script back when a command in it fails, so a failure
-- here, after the stock key changed, would leave the change without its stream entry. A count
-- someone made non-integer restarts at 1, as ack.lua removes one it cannot lower.
local function raise_inflight(inflight_key, sku)
  local reply = redis.pcall('HINCRBY', inflight_key, sku, 1)
  if type(reply) == 'table' and reply.err then
    redis.pcall('HSET', inflight_key, sku, '1')
  end
end
