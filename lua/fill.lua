-- Installs values read from the database into Redis, one or many SKUs per call, each only if that
-- is still safe.
-- KEYS: 1 in-flight counts, 2 persisted counts, 3 fill positions, 4 the key that says recent-changes
--       hashes may exist (apply_changes.lua), 5 the key that says absent markers may exist, 6 and 7
--       the current and previous hashes of changes to cached SKUs (apply_changes.lua), 8 Redis's
--       data epoch (set by the persister), then per SKU: inventory hash, and unless the call is
--       lean: absent marker, recent changes of the SKU
-- ARGV: 1 absent-marker time to live in ms (0: no marker), 2 keys per SKU: 3, or 1 for a lean call,
--       3 the epoch (key 8) read before the database read, no later than the persisted counts
--       ('' if there was none: an epoch is never empty), then per SKU: sku, database quantity
--       ('' if the database has no row; never in a lean call); then, for each SKU whose persisted
--       count read before the database read is not '0' or whose read's change seq (highest outbox
--       id of the SKU it included) is not 0: its place (1, 2, ...), that persisted count, that
--       change seq. The others, almost all SKUs of a warm, have '0' and 0: two arguments per SKU
--       instead of four.
-- Reply: a string with one letter per SKU, in order: 'F' filled with the database quantity given,
--        'f' filled with another (changes applied after the read added), 'c' cached (the key
--        exists), 'a' absent, 'i' inflight, 'r' retry; then, in the same order, the quantity of
--        each SKU answered 'f' or 'c'. (A warm answers one short string per call: most SKUs are 'F'.)
--        A lean call answers the single string 'full' instead, changing nothing, when recent
--        changes or absent markers may exist: the caller makes the call again with all keys.
--
-- Never overwrites a key that exists (it is newer than any database read). Refuses while events
-- for the SKU are still in the stream (the database does not have them yet), and when events were
-- persisted between the database read and now (the read may predate them). Changes the syncer
-- applied after the read are added (updates) or make the read stale (inserts, deletes, and updates
-- it noted for a SKU that was cached then); the fill records its change seq so the syncer does not
-- apply the changes the read included again.
--
-- Answers 'r' for every SKU of the call, changing nothing, when the epoch is not the one read
-- before the database read: Redis lost its data since (FLUSHALL, a restart without persistence)
-- and ack.lua rebuilt the persisted counts from 0, so a count can be back at the value the read
-- saw while events persisted meanwhile are missing from the read. A Redis without an epoch (never
-- had one, or just lost it) gets one from the next persister: a read from before then is read
-- again, once.
--
-- A lean call (a warm, usually into an emptied Redis) passes only the inventory keys: while neither
-- of keys 4 and 5 exists, no SKU has recent changes or an absent marker to look at.
local inflight_key, persisted_key, fillpos_key = KEYS[1], KEYS[2], KEYS[3]
local recent_any_key, absent_any_key = KEYS[4], KEYS[5]
local cached_changes_key, previous_cached_changes_key = KEYS[6], KEYS[7]
local epoch_key = KEYS[8]
local first_sku_key = 9
local absent_ttl = tonumber(ARGV[1])
local keys_per_sku = tonumber(ARGV[2])
local epoch_before = ARGV[3]
local lean = keys_per_sku == 1
local count = (#KEYS - first_sku_key + 1) / keys_per_sku
if count == 0 then
  return {}
end
if (redis.call('GET', epoch_key) or '') ~= epoch_before then
  return {string.rep('r', count)}
end
if lean and redis.call('EXISTS', recent_any_key, absent_any_key) > 0 then
  return 'full'
end
local persisted_before, seqs = {}, {}  -- by place, where not '0' and 0
for j = 4 + 2 * count, #ARGV, 3 do
  local i = tonumber(ARGV[j])
  persisted_before[i], seqs[i] = ARGV[j + 1], ARGV[j + 2]
end

-- The shared hashes are read once for all SKUs and written once at the end: nothing below reads
-- what those writes change, so this is the same as SKU by SKU, with fewer calls.
local skus = {}
for i = 1, count do
  skus[i] = ARGV[2 * i + 2]
  if lean and ARGV[2 * i + 3] == '' then
    return redis.error_reply('fill.lua: a lean call lists SKU ' .. skus[i] ..
        ' without a database quantity')
  end
end
-- With many SKUs (a warm), a shared hash that does not exist (a fresh or emptied Redis, where a
-- warm usually runs) is found with one EXISTS instead of passing every SKU to HMGET or HDEL.
local many = count >= 8
local function counts_in(key)
  if many and redis.call('EXISTS', key) == 0 then
    return {}
  end
  return redis.call('HMGET', key, unpack(skus))
end
local inflight = counts_in(inflight_key)
local persisted = counts_in(persisted_key)
local cached_changes = counts_in(cached_changes_key)
local previous_cached_changes = counts_in(previous_cached_changes_key)
local had_positions = not many or redis.call('EXISTS', fillpos_key) == 1
local positions, unpositioned, filled_absent_keys = {}, {}, {}

-- With many SKUs (a warm), one EXISTS over all their keys (stock, absent marker, recent changes)
-- usually answers 0: then no SKU needs its own HGET or HGETALL, and no marker needs deleting. Keys
-- this call installs are remembered, in case a SKU is listed twice.
local any_keys = not many or redis.call('EXISTS', unpack(KEYS, first_sku_key, #KEYS)) > 0
local others = any_keys and not lean  -- absent markers and recent changes to look at
local installed = {}
local no_changes = {}

-- Installs `quantity` and records the read's change seq as the SKU's fill position (or drops a
-- position an earlier fill left, when the read included no change).
local function put(inventory_key, sku, quantity, seq, seq_text)
  redis.call('HSET', inventory_key, 'product_id', sku, 'quantity', quantity)
  installed[inventory_key] = quantity
  if seq > 0 then
    positions[#positions + 1] = sku
    positions[#positions + 1] = seq_text
  elseif had_positions then
    unpositioned[#unpositioned + 1] = sku
  end
end

local function fill(i, inventory_key, absent_key, recent_key, sku, quantity)
  local current = installed[inventory_key] or
      (any_keys and redis.call('HGET', inventory_key, 'quantity'))
  if current then
    return 'c', current
  end
  if tonumber(inflight[i] or '0') > 0 then
    return 'i'
  end
  if (persisted[i] or '0') ~= (persisted_before[i] or '0') then
    return 'r'
  end
  local seq_text = seqs[i] or '0'
  local seq = tonumber(seq_text)
  -- An update applied to the SKU's key after the read, since removed (by hand, say).
  if tonumber(cached_changes[i] or '0') > seq or
      tonumber(previous_cached_changes[i] or '0') > seq then
    return 'r'
  end
  local later = 0
  local recent = others and redis.call('HGETALL', recent_key) or no_changes
  for j = 1, #recent, 2 do
    local field, value = recent[j], recent[j + 1]
    if field == 'overflow' then
      if tonumber(value) > seq then
        return 'r'
      end
    elseif tonumber(field) > seq then
      -- Not a number: an insert, a delete or a malformed row ('I', 'D', 'R'): read again.
      local delta = tonumber(value)
      if delta == nil or quantity == '' then
        return 'r'
      end
      later = later + delta
    end
  end
  if quantity == '' then
    if absent_ttl > 0 then
      redis.call('SET', absent_key, '1', 'PX', absent_ttl)
      -- Outlives the marker, with apply_changes.lua's margin for the clocks' difference.
      if redis.call('PTTL', absent_any_key) < absent_ttl + 10000 then
        redis.call('SET', absent_any_key, '1', 'PX', 2 * absent_ttl + 10000)
      end
    end
    return 'a'
  end
  local code = 'F'
  if later ~= 0 then
    quantity = string.format('%d', tonumber(quantity) + later)
    code = 'f'
  end
  put(inventory_key, sku, quantity, seq, seq_text)
  if others then
    filled_absent_keys[#filled_absent_keys + 1] = absent_key
  end
  if code == 'F' then
    return code
  end
  return code, quantity
end

-- A lean call that finds no key of its SKUs and nothing for them in the shared hashes (a warm
-- into an emptied Redis, usually): a SKU whose read has persisted count '0' and change seq 0 (no
-- extra arguments) passes every rule of fill() as it is, and is installed without its lookups.
local plain = lean and not any_keys and next(inflight) == nil and next(persisted) == nil and
    next(cached_changes) == nil and next(previous_cached_changes) == nil
local function install(inventory_key, sku, quantity)
  local current = installed[inventory_key]
  if current then  -- listed twice
    return 'c', current
  end
  put(inventory_key, sku, quantity, 0, '0')
  return 'F'
end

local codes, replies = {}, {''}
for i = 1, count do
  local k = first_sku_key + keys_per_sku * (i - 1)
  local code, quantity
  if plain and seqs[i] == nil then
    code, quantity = install(KEYS[k], ARGV[2 * i + 2], ARGV[2 * i + 3])
  elseif lean then
    code, quantity = fill(i, KEYS[k], nil, nil, ARGV[2 * i + 2], ARGV[2 * i + 3])
  else
    code, quantity = fill(i, KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[2 * i + 2], ARGV[2 * i + 3])
  end
  codes[i] = code
  if quantity then
    replies[#replies + 1] = quantity
  end
end
replies[1] = table.concat(codes)
if #positions > 0 then
  redis.call('HSET', fillpos_key, unpack(positions))
end
if #unpositioned > 0 then
  redis.call('HDEL', fillpos_key, unpack(unpositioned))
end
if #filled_absent_keys > 0 then
  redis.call('DEL', unpack(filled_absent_keys))
end
return replies
