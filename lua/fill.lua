-- Installs a value read from the database into Redis, only if that is still safe.
-- KEYS: 1 inventory hash, 2 in-flight counts, 3 persisted counts, 4 absent marker,
--       5 recent changes of the SKU (apply_changes.lua), 6 fill positions
-- ARGV: 1 sku, 2 database quantity ('' if the database has no row), 3 persisted count read
--       before the database read, 4 absent-marker time to live in ms (0: no marker),
--       5 change seq of the read (highest outbox id of the SKU it included)
-- Replies: {'cached', quantity} | {'filled', quantity} | {'absent'} | {'inflight'} | {'retry'}
--
-- Never overwrites a key that exists (it is newer than any database read). Refuses while events
-- for the SKU are still in the stream (the database does not have them yet), and when events were
-- persisted between the database read and now (the read may predate them). Changes the syncer
-- applied after the read are added (updates) or make the read stale (inserts, deletes); the fill
-- records its change seq so the syncer does not apply the changes the read included again.
local inventory_key, inflight_key, persisted_key, absent_key, recent_key, fillpos_key =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local sku, quantity, persisted_before, absent_ttl, seq =
    ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])

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
local later = 0
local recent = redis.call('HGETALL', recent_key)
for i = 1, #recent, 2 do
  local field, value = recent[i], recent[i + 1]
  if field == 'overflow' then
    if tonumber(value) > seq then
      return {'retry'}
    end
  elseif tonumber(field) > seq then
    if value == 'I' or value == 'D' or quantity == '' then
      return {'retry'}
    end
    later = later + tonumber(value)
  end
end
if quantity == '' then
  if absent_ttl > 0 then
    redis.call('SET', absent_key, '1', 'PX', absent_ttl)
  end
  return {'absent'}
end
if later ~= 0 then
  quantity = string.format('%d', tonumber(quantity) + later)
end
redis.call('HSET', inventory_key, 'product_id', sku, 'quantity', quantity)
if seq > 0 then
  redis.call('HSET', fillpos_key, sku, ARGV[5])
else
  redis.call('HDEL', fillpos_key, sku)
end
redis.call('DEL', absent_key)
return {'filled', quantity}
