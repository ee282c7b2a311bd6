-- Restock (add) or set (absolute) one SKU, once per request id, recorded as a delta.
-- KEYS: 1 request record, 2 event stream, 3 in-flight counts, 4 inventory hash, 5 absent marker,
--       6 persisted counts, 7 recent changes of the SKU (apply_changes.lua), 8 fill positions,
--       9 Redis's data epoch
-- ARGV: 1 request id, 2 kind ('restock' | 'set'), 3 sku, 4 quantity, 5 retention in ms,
--       6 '1' if the SKU may be created (a database read found no row for it), 7 largest stock
--       allowed; with '1': 8 the SKU's persisted count read before that database read, 9 the read's
--       change seq (highest outbox id of the SKU it included), 10 the epoch read with that count
--       ('' for none)
-- Replies: {'ok', quantity, delta, stream id} | {'replay', quantity} | {'conflict'}
--          | {'not_cached'} | {'stale'} | {'corrupt', value} | {'too_large', current quantity}
--
-- Creating the SKU (its key at 0, then the change as a delta: the persister's upsert creates the
-- row) is right only if the database still has no row. A back-office INSERT committed after the
-- read would otherwise be counted twice: the row's quantity plus the set's delta. So the creation
-- follows fill.lua's rule for a read that found no row and answers 'stale' (changing nothing; the
-- caller reads again) when the SKU has events not yet persisted, when events were persisted since
-- the read (the persister may have created the row), when Redis lost its data since (the counts
-- compared restarted from 0: fill.lua), or when the syncer remembers a change after the read. The syncer remembers every insert and every change to a SKU that is not cached;
-- an update to a cached SKU it does not remember needs a row, hence an insert after the read,
-- remembered. Like a fill, the creation records the read's change seq as the SKU's fill position,
-- so that the syncer does not apply the changes the read included (a delete) to the new key.
local request_key, stream_key, inflight_key, inventory_key, absent_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local persisted_key, recent_key, fillpos_key, epoch_key = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local request_id, kind, sku, quantity, retention_ms, may_create, max_stock =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])

local first = redis.call('HMGET', request_key, 'kind', 'sku', 'quantity', 'result')
if first[1] then
  if first[1] ~= kind or first[2] ~= sku or first[3] ~= quantity then
    return {'conflict'}
  end
  return {'replay', first[4]}
end

-- Whether the database may have gained a row for the SKU since the read that found none.
local function changed_since_read(persisted_before, seq, epoch_before)
  if (redis.call('GET', epoch_key) or '') ~= epoch_before or
      tonumber(redis.call('HGET', inflight_key, sku) or '0') > 0 or
      (redis.call('HGET', persisted_key, sku) or '0') ~= persisted_before then
    return true
  end
  local recent = redis.call('HGETALL', recent_key)
  for j = 1, #recent, 2 do
    -- An 'overflow' field holds the id of the change that made older ones forgotten.
    local id = recent[j] == 'overflow' and recent[j + 1] or recent[j]
    if tonumber(id) > seq then
      return true
    end
  end
  return false
end

local current = redis.call('HGET', inventory_key, 'quantity')
local seq = nil  -- the read's change seq, when this call creates the SKU
if not current then
  if may_create ~= '1' then
    return {'not_cached'}
  end
  seq = tonumber(ARGV[9])
  if changed_since_read(ARGV[8], seq, ARGV[10]) then
    return {'stale'}
  end
  current = '0'
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

-- The writes, the one that can fail first (see write_lines in lua/order_record.lua);
-- raise_inflight: lua/inflight.lua.
local id = redis.call('XADD', stream_key, '*', 'kind', kind, 'ref', request_id,
                      'deltas', sku .. ' ' .. string.format('%d', delta))
if seq then
  -- Created as a fill that found no row would be: the key at 0, the read's change seq recorded
  -- as the SKU's fill position.
  redis.call('HSET', inventory_key, 'product_id', sku, 'quantity', '0')
  if seq > 0 then
    redis.call('HSET', fillpos_key, sku, ARGV[9])
  else
    redis.call('HDEL', fillpos_key, sku)
  end
end
local result = string.format('%d', redis.call('HINCRBY', inventory_key, 'quantity', delta))
redis.call('DEL', absent_key)
redis.call('HSET', request_key, 'kind', kind, 'sku', sku, 'quantity', quantity, 'result', result)
redis.call('PEXPIRE', request_key, retention_ms)
raise_inflight(inflight_key, sku)
return {'ok', result, string.format('%d', delta), id}
