-- Reports the persister's lag and trims acknowledged history, in one consistent view.
-- KEYS: 1 event stream
-- ARGV: 1 consumer group, 2 '1' to trim entries that are delivered and acknowledged
-- Reply: {length, pending, undelivered, oldest unpersisted id or '', server time in ms}
local stream_key, group, trim = KEYS[1], ARGV[1], ARGV[2] == '1'
local time = redis.call('TIME')
local now_ms = string.format('%d', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
if redis.call('EXISTS', stream_key) == 0 then
  return {0, 0, 0, '', now_ms}
end

local last_delivered, lag = nil, nil
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream_key)) do
  local fields = {}
  for k = 1, #info, 2 do
    fields[info[k]] = info[k + 1]
  end
  if fields['name'] == group then
    last_delivered, lag = fields['last-delivered-id'], fields['lag']
  end
end
local length = redis.call('XLEN', stream_key)
if not last_delivered then
  local first = redis.call('XRANGE', stream_key, '-', '+', 'COUNT', 1)
  return {length, 0, length, first[1] and first[1][1] or '', now_ms}
end

local summary = redis.call('XPENDING', stream_key, group)
local pending, oldest = summary[1], ''
if pending > 0 then
  oldest = summary[2]
else
  local next_entry = redis.call('XRANGE', stream_key, '(' .. last_delivered, '+', 'COUNT', 1)
  if next_entry[1] then
    oldest = next_entry[1][1]
  end
end
if type(lag) ~= 'number' then
  -- Redis cannot always tell the lag (after deletions); everything in the stream that is not
  -- pending is then counted as not yet read, an upper bound that costs O(1) rather than a scan.
  lag = math.max(0, length - pending)
end

if trim then
  -- Everything older than the oldest pending entry, and than anything not yet delivered, is
  -- persisted and acknowledged; only that history is removed.
  local keep_from = oldest
  if keep_from == '' then
    keep_from = last_delivered
  end
  redis.call('XTRIM', stream_key, 'MINID', keep_from)
  length = redis.call('XLEN', stream_key)
end
return {length, pending, lag, oldest, now_ms}
