-- Installs a value read from the database into Redis, only if that is still safe.
-- KEYS: 1 inventory hash, 2 in-flight counts, 3 persisted counts, 4 absent marker
-- ARGV: 1 sku, 2 database quantity ('' if the database has no row), 3 persisted count read
--       before the database read, 4 absent-marker time to live in ms (0: no marker)
-- Replies: {'cached', quantity} | {'filled', quantity} | {'absent'} | {'inflight'} | {'retry'}
--
-- Never overwrites a key that exists (it is newer than any database read). Refuses while events
-- for the SKU are still in the stream (the database does not have them yet), and when events were
-- persisted between the database read and now (the read may predate them).
local inventory_key, inflight_key, persisted_key, absent_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sku, quantity, persisted_before, absent_ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

local current = redis.call('HGET', inventory_key, 'quantity')
if current then
  return {'cached', current}
end
if tonumber(redis.call('HGET', inflight_key, sku) or '0') > 0 then
  return {'inflight'}
end
if (redis.call('HGET', persisted_key, sku) or '0') ~= persisted_before then
  return {'retry'}
end
if quantity == '' then
  if absent_ttl > 0 then
    redis.call('SET', absent_key, '1', 'PX', absent_ttl)
  end
  return {'absent'}
end
redis.call('HSET', inventory_key, 'product_id', sku, 'quantity', quantity)
redis.call('DEL', absent_key)
return {'filled', quantity}
