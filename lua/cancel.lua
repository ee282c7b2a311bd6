-- Cancels a deducted order: returns its stock once; cancelling again changes nothing.
-- KEYS: 1 order record, 2 event stream, 3 in-flight counts, 4.. inventory hash of each line
-- ARGV: 1 order id, 2 canonical lines as read from the order record, 3 retention in ms,
--       then per line: sku, quantity (same order as KEYS 4..)
-- Replies: {'ok', remaining, stream id} | {'not_found'} | {'already', remaining} | {'stale'}
--          | {'not_cached', sku...} | {'corrupt', sku, value}
local order_key, stream_key, inflight_key = KEYS[1], KEYS[2], KEYS[3]
local order_id, canonical, retention_ms = ARGV[1], ARGV[2], ARGV[3]
local lines = #KEYS - 3
-- read_order, write_order, write_lines: lua/order_record.lua, loaded in front of this script.

local record = read_order(order_key)
if not record[1] then
  return {'not_found'}
end
if record[1] ~= canonical then
  return {'stale'}
end
if record[2] == 'cancelled' then
  return {'already', record[4]}
end

local missing = {'not_cached'}
for i = 1, lines do
  if redis.call('EXISTS', KEYS[3 + i]) == 0 then
    missing[#missing + 1] = ARGV[2 + 2 * i]
  end
end
if #missing > 1 then
  return missing
end
for i = 1, lines do
  local current = redis.call('HGET', KEYS[3 + i], 'quantity')
  if not string.match(current, '^%-?%d+$') or #current > 16 then
    return {'corrupt', ARGV[2 + 2 * i], current}
  end
end

local id, remaining_text = write_lines(stream_key, inflight_key, 'cancel', order_id, '', lines)
write_order(order_key, canonical, 'cancelled', record[3] or '', remaining_text, retention_ms)
return {'ok', remaining_text, id}
