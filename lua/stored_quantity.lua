-- A SKU's quantity as reconcile reads it: this file is put in front of audit_state.lua and
-- repair.lua when they are loaded (Redis scripts cannot share code otherwise).
--
-- A key under the inventory prefix that invsync did not write may be of another type than a hash.
-- It reads as "(<type>, not a hash)", which is never an integer, so reconcile reports it as drift
-- (and its repair removes it) instead of failing the whole run on WRONGTYPE.
local function stored_quantity(key)
  local value = redis.pcall('HGET', key, 'quantity')
  if type(value) == 'table' and value.err then
    return '(' .. redis.call('TYPE', key).ok .. ', not a hash)'
  end
  return value
end
