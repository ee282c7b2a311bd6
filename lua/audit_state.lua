-- Reads, in one consistent view, what reconcile needs to judge a page of SKUs.
-- KEYS: 1 syncer cursor, 2 in-flight counts, 3 persisted counts, 4 fill positions,
--       then the inventory hash of each SKU
-- ARGV: the SKUs, in KEYS order
-- Reply: {cursor, then per SKU: quantity or false, in-flight count, persisted count, fill position}
-- stored_quantity: lua/stored_quantity.lua, loaded in front of this script.
local cursor_key, inflight_key, persisted_key, fillpos_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local reply = {redis.call('GET', cursor_key) or '0:0'}
for i = 1, #ARGV do
  local sku = ARGV[i]
  reply[#reply + 1] = stored_quantity(KEYS[4 + i])
  reply[#reply + 1] = redis.call('HGET', inflight_key, sku) or '0'
  reply[#reply + 1] = redis.call('HGET', persisted_key, sku) or '0'
  reply[#reply + 1] = redis.call('HGET', fillpos_key, sku) or '0'
end
return reply
