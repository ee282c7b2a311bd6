-- Acknowledges persisted stream entries and, for each entry acknowledged now (not before),
-- lowers the SKU's in-flight count, raises its persisted count and applies its compensations, in
-- one step (so a crash before this script repeats none of it, and a replay after it none twice).
-- KEYS: 1 event stream, 2 in-flight counts, 3 persisted counts, 4 dead-letter stream, 5 epoch
-- ARGV: 1 consumer group, 2 consumer name, 3 epoch the persister saw before reading the batch,
--       4 inventory key prefix, then per entry: stream id, number of SKUs n, n SKUs,
--       number of compensations m, m pairs (inventory key, amount to add if the key exists),
--       and why the entry is dead-lettered ('' if it was persisted)
-- Reply: {entries acknowledged by this call, 1 if Redis lost its data since the batch was read}
--
-- Redis losing its data (FLUSHALL, a restart without persistence) also loses the epoch. The
-- batch, read before, is in the database now, but a key refilled from the database before that
-- commit does not show it: such keys are dropped (the next read loads them, the database now
-- being right) and their persisted counts raised (so a fill that read before the commit retries).
local stream_key, inflight_key, persisted_key, dead_key, epoch_key =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, epoch, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lost = redis.call('GET', epoch_key) ~= epoch
local acknowledged = 0
local per_sku = {}  -- events acknowledged now, per SKU: one counter update per SKU, not per event
local i = 5
while i <= #ARGV do
  local id, skus = ARGV[i], tonumber(ARGV[i + 1])
  local compensations = tonumber(ARGV[i + 2 + skus])
  local problem = ARGV[i + 3 + skus + 2 * compensations]
  local now_acked = redis.call('XACK', stream_key, group, id)
  acknowledged = acknowledged + now_acked
  if lost then
    for j = 1, skus do
      local sku = ARGV[i + 1 + j]
      redis.call('DEL', prefix .. sku)
      redis.call('HINCRBY', persisted_key, sku, 1)
    end
  end
  if now_acked == 1 then
    for j = 1, skus do
      local sku = ARGV[i + 1 + j]
      per_sku[sku] = (per_sku[sku] or 0) + 1
    end
    for c = 1, compensations do
      local key = ARGV[i + 1 + skus + 2 * c]
      -- A key not cached is left alone: the next fill reads the database, which is right.
      if redis.call('EXISTS', key) == 1 then
        redis.call('HINCRBY', key, 'quantity', tonumber(ARGV[i + 2 + skus + 2 * c]))
      end
    end
    if problem ~= '' then
      redis.call('XADD', dead_key, '*', 'entry', id, 'problem', problem, 'consumer', consumer)
    end
  end
  i = i + 4 + skus + 2 * compensations
end
for sku, count in pairs(per_sku) do
  if redis.call('HINCRBY', inflight_key, sku, -count) <= 0 then
    redis.call('HDEL', inflight_key, sku)
  end
  redis.call('HINCRBY', persisted_key, sku, count)
end
return {acknowledged, lost and 1 or 0}
