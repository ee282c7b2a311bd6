-- Acknowledges persisted stream entries and, for each entry acknowledged now (not before),
-- lowers the SKU's in-flight count, raises its persisted count and applies its compensations, in
-- one step (so a crash before this script repeats none of it, and a replay after it none twice).
-- KEYS: 1 event stream, 2 in-flight counts, 3 persisted counts, 4 dead-letter stream, 5 epoch,
--       6 highest stream position acknowledged
-- ARGV: 1 consumer group, 2 consumer name, 3 epoch the persister saw before reading the batch,
--       4 inventory key prefix, 5 number of plain groups, then per plain group (entries with the
--       same SKUs, no compensation, not dead-lettered): number of SKUs n, n SKUs, number of
--       entries e, e stream ids; then per other entry: stream id, number of SKUs n, n SKUs,
--       number of compensations m, m pairs (inventory key, amount to add if the key exists),
--       and why the entry is dead-lettered ('' if it was persisted)
-- Reply: {entries acknowledged by this call, 1 if Redis lost its data since the batch was read,
--         {what could not be updated and was replaced instead, one line each (see below)}}
--
-- Redis losing its data (FLUSHALL, a restart without persistence) also loses the epoch. The
-- batch, read before, is in the database now, but a key refilled from the database before that
-- commit does not show it: such keys are dropped (the next read loads them, the database now
-- being right) and their persisted counts raised (so a fill that read before the commit retries).
--
-- KEYS[6] holds the newest entry ever acknowledged here, as a zero-padded position (as
-- db::StreamPosition writes it, so positions compare as strings). Raised only here, in the same
-- step as the acknowledgement, a Redis that loses acknowledgements (an append-only file missing
-- its tail, a promoted replica that was behind) loses it with them; the persister compares it
-- with the database's highest stream position (persister.cpp, CheckForLostWrites). Only entries
-- acknowledged now raise it: XACK forgets an entry Redis lost, so the mark never passes a loss.
--
-- Redis does not roll a script back when a command in it fails: what ran before stays (entries
-- acknowledged, their counts never moved). So nothing here may fail half-way. Keys of the wrong
-- type fail the call before its first write, changing nothing (the batch stays pending until
-- someone repairs them). A value a command cannot update (not an integer, set by hand; an
-- overflow) is replaced, and reported in the reply:
-- - a stock key owed a compensation is dropped: the database, committed now, is right, and the
--   next read loads it (fill.lua waits until the SKU has no events in flight);
-- - an in-flight count is removed: the SKU's later events count from 0 again;
-- - a persisted count restarts at Redis's clock in microseconds, far above any count a SKU
--   reaches, so no fill that read any earlier value takes it as unchanged.
local stream_key, inflight_key, persisted_key, dead_key, epoch_key, acked_key =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, consumer, epoch, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expected_types = {
  {stream_key, 'stream'}, {inflight_key, 'hash'}, {persisted_key, 'hash'}, {dead_key, 'stream'},
  {epoch_key, 'string'}, {acked_key, 'string'}}
for _, expected in ipairs(expected_types) do
  local found = redis.call('TYPE', expected[1])['ok']
  if found ~= 'none' and found ~= expected[2] then
    return redis.error_reply('ack.lua: ' .. expected[1] .. ' is a ' .. found .. ', not a ' ..
        expected[2] .. '; nothing was acknowledged')
  end
end
local lost = redis.call('GET', epoch_key) ~= epoch
local acknowledged = 0
local per_sku = {}  -- events acknowledged now, per SKU: one counter update per SKU, not per event
local highest = ''  -- position of the newest entry acknowledged now
local repairs = {}  -- values replaced because they could not be updated (see above)

local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
local function note(key, field, reply, action)
  repairs[#repairs + 1] = key .. ' ' .. field .. ': ' .. reply.err .. '; ' .. action
end

-- Compensations, in-flight and persisted counts, updated so that none can fail (see above).
local function compensate(key, amount)
  local reply = redis.pcall('HINCRBY', key, 'quantity', amount)
  if failed(reply) then
    redis.call('DEL', key)
    note(key, 'quantity', reply, 'key dropped, the next read loads it from the database')
  end
end
local function lower_inflight(sku, n)
  local left = redis.pcall('HINCRBY', inflight_key, sku, -n)
  if failed(left) then
    note(inflight_key, sku, left, 'removed')
    left = 0
  end
  if left <= 0 then
    redis.call('HDEL', inflight_key, sku)
  end
end
local function raise_persisted(sku, n)
  local reply = redis.pcall('HINCRBY', persisted_key, sku, n)
  if failed(reply) then
    local now = redis.call('TIME')
    local restart = now[1] .. string.format('%06d', tonumber(now[2]))
    redis.call('HSET', persisted_key, sku, restart)
    note(persisted_key, sku, reply, 'restarted at ' .. restart)
  end
end

local function raise(id)
  local millis, sequence = string.match(id, '^(%d+)-(%d+)$')
  if millis then
    local position = string.format('%020d-%020d', tonumber(millis), tonumber(sequence))
    if position > highest then
      highest = position
    end
  end
end

-- An entry counts where XACK answers that it was still pending: one acknowledged before (by
-- another persister that claimed it, or earlier in this batch) counts nothing. In a plain group
-- every entry has the same effect, so one XACK per group tells how many count.
local function lose(first, skus, entries)
  for j = first, first + skus - 1 do
    redis.call('DEL', prefix .. ARGV[j])
    raise_persisted(ARGV[j], entries)
  end
end
local function count(first, skus, entries)
  for j = first, first + skus - 1 do
    per_sku[ARGV[j]] = (per_sku[ARGV[j]] or 0) + entries
  end
end

local kXackAtOnce = 1000  -- ids per XACK, well inside Lua's stack
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  local skus = tonumber(ARGV[i])
  local entries = tonumber(ARGV[i + 1 + skus])
  local first_id = i + 2 + skus
  local now_acked = 0
  for from = first_id, first_id + entries - 1, kXackAtOnce do
    local to = math.min(from + kXackAtOnce - 1, first_id + entries - 1)
    now_acked = now_acked + redis.call('XACK', stream_key, group, unpack(ARGV, from, to))
  end
  acknowledged = acknowledged + now_acked
  -- Entries arrive in stream order (claimed ones, all older, first), so a group's last id is its
  -- newest. A group acknowledged only in part raises nothing: a mark too low costs at most a
  -- needless reload of the stock keys, one too high hides a loss.
  if entries > 0 and now_acked == entries then
    raise(ARGV[first_id + entries - 1])
  end
  if lost then
    lose(i + 1, skus, entries)
  end
  count(i + 1, skus, now_acked)
  i = first_id + entries
end
while i <= #ARGV do
  local id, skus = ARGV[i], tonumber(ARGV[i + 1])
  local compensations = tonumber(ARGV[i + 2 + skus])
  local problem = ARGV[i + 3 + skus + 2 * compensations]
  local now_acked = redis.call('XACK', stream_key, group, id)
  acknowledged = acknowledged + now_acked
  if lost then
    lose(i + 2, skus, 1)
  end
  if now_acked == 1 then
    raise(id)
    count(i + 2, skus, 1)
    for c = 1, compensations do
      local key = ARGV[i + 1 + skus + 2 * c]
      -- A key not cached is left alone: the next fill reads the database, which is right.
      if redis.call('EXISTS', key) == 1 then
        compensate(key, tonumber(ARGV[i + 2 + skus + 2 * c]))
      end
    end
    if problem ~= '' then
      local added = redis.pcall('XADD', dead_key, '*', 'entry', id, 'problem', problem,
                                'consumer', consumer)
      if failed(added) then  -- only a stream at its highest possible id: the persister logs it
        note(dead_key, id, added, 'not recorded there')
      end
    end
  end
  i = i + 4 + skus + 2 * compensations
end
for sku, n in pairs(per_sku) do
  if n > 0 then
    lower_inflight(sku, n)
    raise_persisted(sku, n)
  end
end
if highest ~= '' then
  local recorded = redis.call('GET', acked_key)
  if not recorded or highest > recorded then
    redis.call('SET', acked_key, highest)
  end
end
return {acknowledged, lost and 1 or 0, repairs}
