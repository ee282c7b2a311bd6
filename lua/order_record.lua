-- The order record and the writes of an order's lines, shared by deduct.lua and cancel.lua: this
-- file is put in front of each when the script is loaded (Redis scripts cannot share code
-- otherwise), after lua/inflight.lua.
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

-- Writes an order's lines, all checked by the caller: one stream entry of kind `kind`, then each
-- line's stock key (KEYS[3 + i]) moved by `sign` .. quantity ('-' takes, '' gives back) and its
-- SKU's in-flight count raised. The XADD goes first: it is the one write that can fail (a key of
-- another type under the stream's name), and then nothing has changed. The stock keys hold
-- integers of at most 16 digits (checked by the caller), raise_inflight cannot fail. Returns the
-- stream id and each line's stock after, one per line.
local function write_lines(stream_key, inflight_key, kind, order_id, sign, lines)
  local deltas = {}
  for i = 1, lines do
    deltas[i] = ARGV[2 + 2 * i] .. ' ' .. sign .. ARGV[3 + 2 * i]
  end
  local id = redis.call('XADD', stream_key, '*', 'kind', kind, 'ref', order_id,
                        'deltas', table.concat(deltas, '\n'))
  local remaining = {}
  for i = 1, lines do
    remaining[i] = string.format('%d',
        redis.call('HINCRBY', KEYS[3 + i], 'quantity', sign .. ARGV[3 + 2 * i]))
    raise_inflight(inflight_key, ARGV[2 + 2 * i])
  end
  return id, table.concat(remaining, '\n')
end
