-- Repairs one drifted SKU in Redis, only if nothing touched it since it was judged
-- (compare-and-set), so a deduction landing in between is never lost.
-- KEYS: 1 inventory hash, 2 in-flight counts
-- ARGV: 1 sku, 2 the quantity judged wrong, 3 the right quantity ('' to remove the key: the
--       database has no such SKU)
-- Replies: 'repaired' | 'changed' (left alone; the next run judges it again)
-- stored_quantity: lua/stored_quantity.lua, loaded in front of this script.
local inventory_key, inflight_key = KEYS[1], KEYS[2]
local sku, judged, right = ARGV[1], ARGV[2], ARGV[3]
if stored_quantity(inventory_key) ~= judged
    or tonumber(redis.call('HGET', inflight_key, sku) or '0') > 0 then
  return 'changed'
end
-- A key that is not a hash is removed too: the next read loads the SKU from the database.
if right == '' or redis.call('TYPE', inventory_key).ok ~= 'hash' then
  redis.call('DEL', inventory_key)
else
  redis.call('HSET', inventory_key, 'quantity', right)
end
return 'repaired'
