-- Applies outbox rows (changes made in the database outside invsync) to Redis, exactly once.
-- KEYS: 1 syncer cursor, 2 fill positions (hash sku -> change seq), 3 the key that says some
--       recent-changes hash may exist, 4 the key that says a fill's database read may be in
--       flight, 5 and 6 the current and the previous hash of changes to cached SKUs (sku -> highest
--       id), 7 the key that exists until those two turn over, then per row: inventory hash,
--       recent-changes hash, absent marker
-- ARGV: 1 recent-changes time to live in ms, 2 most recent changes kept per SKU, 3 how long in ms
--       the hashes of changes to cached SKUs go between turns, then per row, in outbox order: xid,
--       id, sku, kind ('U', 'I' or 'D'), delta
-- Replies: {applied, skipped, cursor, dropped, failure}: rows that changed a cached key, rows at or
--          before the cursor (already applied: a replay), the cursor after the batch, updates that
--          dropped their key instead (see apply), and '' or why the batch stopped early.
--
-- The cursor moves in this same script, so a batch replayed after a crash applies nothing twice.
-- A cached key gets an update's delta, unless the fill that loaded it already read this change
-- (its id is at or below the fill's position); an insert, a delete or a malformed row ('R')
-- removes the key, and the next read loads the row as it is then. A change to a SKU that is not
-- cached, every insert, delete, malformed row and dropped key is also remembered for a while per
-- SKU, so a fill whose database read predates it can add it or read again (fill.lua). While a
-- fill's read may be in flight, an update to a cached SKU is noted too (its SKU and id), so that a
-- fill whose read predates it reads again.
local cursor_key, fillpos_key, recent_any_key, fill_reads_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cached_changes_key, previous_cached_changes_key, turn_key = KEYS[5], KEYS[6], KEYS[7]
local recent_ttl, recent_cap, turn_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local first_row_arg, args_per_row, first_row_key = 4, 5, 8

local function after(xid, id, cursor_xid, cursor_id)
  return xid > cursor_xid or (xid == cursor_xid and id > cursor_id)
end

local cursor = redis.call('GET', cursor_key) or '0:0'
local cursor_xid_text, cursor_id_text = string.match(cursor, '^(%d+):(%d+)$')
if not cursor_xid_text then
  return redis.error_reply('syncer cursor ' .. cursor_key .. ' is malformed: ' .. cursor)
end
local cursor_xid, cursor_id = tonumber(cursor_xid_text), tonumber(cursor_id_text)

local applied, skipped, dropped = 0, 0, 0
local remembered = false  -- whether any change was remembered for fills
-- Every fill sets this key before its database read, for longer than the read may take.
local fill_reads = redis.call('EXISTS', fill_reads_key) == 1

-- Remembers a change for fills whose database read may predate it (fill.lua adds it, or reads
-- again). A SKU that is not cached needs this.
local function remember(recent_key, id_text, value)
  redis.call('HSET', recent_key, id_text, value)
  if redis.call('HLEN', recent_key) > recent_cap then
    -- Forget the older ones; a fill that read before this change must then read again.
    redis.call('DEL', recent_key)
    redis.call('HSET', recent_key, 'overflow', id_text)
  end
  redis.call('PEXPIRE', recent_key, recent_ttl)
  remembered = true
end

-- Notes an update to a cached SKU while some fill's read may be in flight. While the key exists, a
-- fill finds it cached and installs nothing, but the key can vanish before the fill installs, and
-- not every way leaves a sign (inserts, deletes and drops are remembered; the persister's drop
-- after a data loss raises the persisted count; a key deleted by hand leaves none). A fill whose
-- read predates a noted change reads again (fill.lua). With no fill's read in flight, no fill can
-- install a read older than the change, and nothing is noted. Only the highest id per SKU matters:
-- for one SKU, ids are in commit order, so a read that includes it includes the others.
local noted, noted_skus = {}, {}
local function note_cached_change(sku, id)
  local before = noted[sku]
  if not before then
    noted_skus[#noted_skus + 1] = sku
  end
  if not before or id > before then
    noted[sku] = id
  end
end

-- Writes the noted changes into the current hash, keeping each SKU's highest id (rows of one SKU
-- are applied in transaction order, which need not be id order). The current hash becomes the
-- previous one at most every turn_ms, and the previous one is then dropped: a note lives at least
-- turn_ms, longer than any fill's read may take, and the two hashes hold only the notes of the
-- last two turns.
local function write_noted_changes()
  if #noted_skus == 0 then
    return
  end
  if redis.call('EXISTS', turn_key) == 0 then
    if redis.call('EXISTS', cached_changes_key) == 1 then
      redis.call('RENAME', cached_changes_key, previous_cached_changes_key)
    else
      redis.call('DEL', previous_cached_changes_key)
    end
    redis.call('SET', turn_key, '1', 'PX', turn_ms)
  end
  local chunk = 2000  -- keeps unpack within Lua's stack
  for first = 1, #noted_skus, chunk do
    local last = math.min(first + chunk - 1, #noted_skus)
    local skus = {unpack(noted_skus, first, last)}
    local stored = redis.call('HMGET', cached_changes_key, unpack(skus))
    local fields = {}
    for i, sku in ipairs(skus) do
      local id = math.max(noted[sku], tonumber(stored[i]) or 0)
      fields[#fields + 1] = sku
      fields[#fields + 1] = string.format('%d', id)
    end
    redis.call('HSET', cached_changes_key, unpack(fields))
  end
  -- Outlives two turns, with the same margin for Redis's clock as the other keys (RENAME keeps it).
  redis.call('PEXPIRE', cached_changes_key, 2 * turn_ms + 10000)
end

-- Applies one row that is after the cursor. An update whose delta Redis cannot add (the sum would
-- overflow 64 bits, or the key is not a hash) drops the key instead: the next read loads the row
-- from the database, which is the truth. Returns whether a cached key changed.
local function apply(row, a, xid, id)
  local sku, kind, delta = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local k = first_row_key + 3 * row
  local inventory_key, recent_key, absent_key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local cached = redis.call('EXISTS', inventory_key) == 1
  if kind ~= 'U' or not cached then
    remember(recent_key, ARGV[a + 1], kind == 'U' and delta or kind)
  elseif fill_reads then
    note_cached_change(sku, id)
  end
  if kind == 'I' then
    redis.call('DEL', absent_key)
  end
  if not cached or id <= (tonumber(redis.call('HGET', fillpos_key, sku)) or 0) then
    return false
  end
  if kind == 'U' then
    local added = redis.pcall('HINCRBY', inventory_key, 'quantity', delta)
    if type(added) ~= 'table' or not added.err then
      return true
    end
    dropped = dropped + 1
    remember(recent_key, ARGV[a + 1], 'R')  -- fills that read before it read again
  end
  redis.call('DEL', inventory_key)
  return true
end

-- Each row runs protected: if one fails, the rows before it stay applied and the cursor stops
-- right after them, so a retry neither loses nor repeats any row (a script's writes are not
-- undone by an error).
local failure
for row = 0, (#ARGV - first_row_arg + 1) / args_per_row - 1 do
  local a = first_row_arg + args_per_row * row
  local xid, id = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if not after(xid, id, cursor_xid, cursor_id) then
    skipped = skipped + 1
  else
    local ok, result = pcall(apply, row, a, xid, id)
    if not ok then
      failure = 'outbox row ' .. ARGV[a + 1] .. ' (SKU ' .. ARGV[a + 2] .. '): ' ..
          (type(result) == 'table' and (result.err or '?') or tostring(result))
      break
    end
    if result then
      applied = applied + 1
    end
    cursor_xid, cursor_id = xid, id
    cursor = ARGV[a] .. ':' .. ARGV[a + 1]
  end
end
redis.call('SET', cursor_key, cursor)
write_noted_changes()
-- Outlives every recent-changes hash: a bulk fill that finds it absent need not look for them.
-- The margin covers the clocks a script's commands read differing by up to the script's run time
-- (the PEXPIREs above may read a later time than this PTTL).
local recent_ms = tonumber(recent_ttl)
if remembered and redis.call('PTTL', recent_any_key) < recent_ms + 10000 then
  redis.call('SET', recent_any_key, '1', 'PX', 2 * recent_ms + 10000)
end
return {applied, skipped, cursor, dropped, failure or ''}
