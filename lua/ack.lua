-- Acknowledges persisted stream entries and, for each entry acknowledged now (not before),
-- lowers the SKU's in-flight count and raises its persisted count, in one step.
-- KEYS: 1 event stream, 2 in-flight counts, 3 persisted counts
-- ARGV: 1 consumer group, then per entry: stream id, number of SKUs n, n SKUs
-- Reply: number of entries acknowledged by this call.
local stream_key, inflight_key, persisted_key = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
local acknowledged = 0
local i = 2
while i <= #ARGV do
  local id, skus = ARGV[i], tonumber(ARGV[i + 1])
  local now_acked = redis.call('XACK', stream_key, group, id)
  acknowledged = acknowledged + now_acked
  if now_acked == 1 then
    for j = 1, skus do
      local sku = ARGV[i + 1 + j]
      if redis.call('HINCRBY', inflight_key, sku, -1) <= 0 then
        redis.call('HDEL', inflight_key, sku)
      end
      redis.call('HINCRBY', persisted_key, sku, 1)
    end
  end
  i = i + 2 + skus
end
return acknowledged
