-- Deducts a whole order atomically: all lines or none, never below zero, once per order id.
-- KEYS: 1 order record, 2 event stream, 3 in-flight counts, 4.. inventory hash of each line
-- ARGV: 1 order id, 2 canonical lines ("sku qty\n", sorted), 3 retention in ms,
--       then per line: sku, quantity (same order as KEYS 4..)
-- Replies: {'ok', remaining, stream id} | {'replay', status, remaining} | {'conflict', status}
--          | {'not_cached', sku...} | {'insufficient', sku, wanted, available}
--          | {'corrupt', sku, value}
-- `remaining` lists each line's stock after the deduction, one per line, in line order.
local order_key, stream_key, inflight_key = KEYS[1], KEYS[2], KEYS[3]
local order_id, canonical, retention_ms = ARGV[1], ARGV[2], ARGV[3]
local lines = #KEYS - 3
-- read_order, write_order, write_lines: lua/order_record.lua, loaded in front of this script.

local first = read_order(order_key)
if first[1] then
  if first[1] ~= canonical then
    return {'conflict', first[2]}
  end
  return {'replay', first[2], first[3]}
end

-- Check every line before changing any, so a refusal changes nothing. A missing key is reported
-- (all of them at once) so the caller loads them from the database and runs the order again.
local missing, shortage = {'not_cached'}, nil
for i = 1, lines do
  local sku = ARGV[2 + 2 * i]
  local available = redis.call('HGET', KEYS[3 + i], 'quantity')
  if not available then
    missing[#missing + 1] = sku
  elseif not string.match(available, '^%-?%d+$') or #available > 16 then
    return {'corrupt', sku, available}
  elseif not shortage and tonumber(available) < tonumber(ARGV[3 + 2 * i]) then
    shortage = {'insufficient', sku, ARGV[3 + 2 * i], available}
  end
end
if #missing > 1 then
  return missing
end
if shortage then
  return shortage
end

local id, remaining_text = write_lines(stream_key, inflight_key, 'deduct', order_id, '-', lines)
write_order(order_key, canonical, 'deducted', remaining_text, '', retention_ms)
return {'ok', remaining_text, id}
