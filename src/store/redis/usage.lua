-- record_usage: ARGV[3] is how many hours of counts per hour are kept (USAGE_HOURS_KEPT); ARGV[4..] quadruples
-- of id, count, last-used time, start of the hour (whole seconds since the Unix epoch). Counts add up, to the
-- key's total and to its hour (saturating at 2^64 - 1); last-used only moves forward; unknown ids are skipped.
-- The record's TTL is left as it is.
--
-- The counts per hour of key `id` are the hash `{ns}:usage:<id>` (same hash tag, same slot): hour -> count. Each
-- write gives it a TTL of one hour more than the hours kept, so the counts of a key no longer used go away by
-- themselves; a hash that holds more hours than that loses those before its newest hour minus the hours kept.
local MAX = '18446744073709551615'
local kept_hours = tonumber(ARGV[3])
local kept_secs = kept_hours * 3600

-- Sum of two canonical decimals, saturating at MAX.
local function add(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then
      d = d + string.byte(a, i) - 48
      i = i - 1
    end
    if j > 0 then
      d = d + string.byte(b, j) - 48
      j = j - 1
    end
    out[#out + 1] = string.char(48 + d % 10)
    carry = math.floor(d / 10)
  end
  local sum = string.reverse(table.concat(out))
  if earlier(MAX, sum) then
    return MAX
  end
  return sum
end

-- Drops the hours of `key` older than its newest minus the hours kept. Hours are whole seconds since 1970, exact
-- in Lua's doubles.
local function prune(key)
  local hours = redis.call('HKEYS', key)
  local newest = 0
  for _, h in ipairs(hours) do
    newest = math.max(newest, tonumber(h))
  end
  for _, h in ipairs(hours) do
    if tonumber(h) < newest - kept_secs then
      redis.call('HDEL', key, h)
    end
  end
end

for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  local key = record_key(id)
  if redis.call('EXISTS', key) == 1 then
    local f = redis.call('HMGET', key, 'uses', 'last_used')
    redis.call('HSET', key, 'uses', add(f[1] or '0', ARGV[i + 1]))
    if not f[2] or earlier(f[2], ARGV[i + 2]) then
      redis.call('HSET', key, 'last_used', ARGV[i + 2])
    end
    local usage = ns .. 'usage:' .. id
    local hour = ARGV[i + 3]
    redis.call('HSET', usage, hour, add(redis.call('HGET', usage, hour) or '0', ARGV[i + 1]))
    redis.call('EXPIRE', usage, kept_secs + 3600)
    if redis.call('HLEN', usage) > kept_hours + 1 then
      prune(usage)
    end
  end
end
return 1
