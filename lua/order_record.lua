-- The order record, shared by deduct.lua and cancel.lua: this file is put in front of each when
-- the script is loaded (Redis scripts cannot share code otherwise).
--
-- One string of four tab-separated fields (no field can hold a tab): canonical lines, status,
-- stock remaining after the deduction, stock remaining after a cancel; it expires after the
-- retention. A record an earlier version wrote as a hash of those fields is read as such until
-- its retention ends.
local function read_order(key)
  local text = redis.pcall('GET', key)
  if type(text) == 'table' then  -- WRONGTYPE: a hash record (of another type, HMGET fails too)
    return redis.call('HMGET', key, 'lines', 'status', 'remaining', 'cancel_remaining')
  end
  if not text then
    return {}
  end
  local record = {string.match(text, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')}
  if not record[1] then
    -- Not ours: taking it for "no order" could deduct an order twice.
    error(redis.error_reply('malformed order record at ' .. key))
  end
  return record
end

-- Writes the whole record (replacing a hash record of an earlier version).
local function write_order(key, lines, status, remaining, cancel_remaining, retention_ms)
  redis.call('SET', key, table.concat({lines, status, remaining, cancel_remaining}, '\t'), 'PX',
             retention_ms)
end
