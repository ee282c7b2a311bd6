-- Removes consumers of the group that have nothing pending and have been silent for long: names
-- of persisters that are gone. Atomic, so a consumer cannot read new entries between the check
-- and the removal (removing a consumer drops its pending entries).
-- KEYS: 1 event stream; ARGV: 1 group, 2 idle threshold in ms, 3 name never to remove (the caller)
-- Reply: number of consumers removed.
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for k = 1, #consumer, 2 do
    fields[consumer[k]] = consumer[k + 1]
  end
  if fields['pending'] == 0 and fields['idle'] > tonumber(ARGV[2]) and fields['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed = removed + 1
  end
end
return removed
