-- Restock (add) or set (absolute) one SKU, once per request id, recorded as a delta.
-- KEYS: 1 request record, 2 event stream, 3 in-flight counts, 4 inventory hash, 5 absent marker
-- ARGV: 1 request id, 2 kind ('restock' | 'set'), 3 sku, 4 quantity, 5 retention in ms,
--       6 '1' if the SKU may be created (the database has no row for it), 7 largest stock allowed
-- Replies: {'ok', quantity, delta, stream id} | {'replay', quantity} | {'conflict'}
--          | {'not_cached'} | {'corrupt', value} | {'too_large', current quantity}
local request_key, stream_key, inflight_key, inventory_key, absent_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local request_id, kind, sku, quantity, retention_ms, may_create, max_stock =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])

local first = redis.call('HMGET', request_key, 'kind', 'sku', 'quantity', 'result')
if first[1] then
  if first[1] ~= kind or first[2] ~= sku or first[3] ~= quantity then
    return {'conflict'}
  end
  return {'replay', first[4]}
end

local current = redis.call('HGET', inventory_key, 'quantity')
if not current then
  if may_create ~= '1' then
    return {'not_cached'}
  end
  current = '0'
  redis.call('HSET', inventory_key, 'product_id', sku, 'quantity', '0')
end
if not string.match(current, '^%-?%d+$') or #current > 16 then
  return {'corrupt', current}
end

local delta = tonumber(quantity)
if kind == 'set' then
  delta = tonumber(quantity) - tonumber(current)
end
-- Past the maximum, deduct.lua and cancel.lua would soon take the key for corrupt (more than 16
-- characters) and this script's arithmetic would stop being exact. Refused before anything is
-- written, so a retry with the same request id is judged again.
if tonumber(current) + delta > max_stock then
  return {'too_large', current}
end
local result = string.format('%d', redis.call('HINCRBY', inventory_key, 'quantity', delta))
redis.call('DEL', absent_key)
redis.call('HSET', request_key, 'kind', kind, 'sku', sku, 'quantity', quantity, 'result', result)
redis.call('PEXPIRE', request_key, retention_ms)
redis.call('HINCRBY', inflight_key, sku, 1)
-- A set also records the quantity it set: a set whose SKU has no database row (deleted there, or
-- never there) creates the row with that quantity, not with a delta relative to what Redis held.
local fields = {'kind', kind, 'ref', request_id, 'deltas', sku .. ' ' .. string.format('%d', delta)}
if kind == 'set' then
  fields[#fields + 1] = 'quantity'
  fields[#fields + 1] = quantity
end
local id = redis.call('XADD', stream_key, '*', unpack(fields))
return {'ok', result, string.format('%d', delta), id}
