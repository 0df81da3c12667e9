-- Shared head of every RedisStore script (the Rust side puts it before each script body).
--
-- KEYS[1] is the namespace's id index `{ns}:ids`: declaring it routes the call to the node that holds the
-- namespace's slot. Every other key a script touches carries the same `{ns}` hash tag, so it lives in that slot too.
-- ARGV[1] is the key prefix `{ns}:`, ARGV[2] how long (milliseconds) an expired record is kept; the script's own
-- arguments start at ARGV[3].
--
-- Times are canonical decimal nanoseconds since the Unix epoch (no leading zeros), compared by length, then bytes:
-- exact, where Lua's doubles would round.
local ids_key = KEYS[1]
local ns = ARGV[1]
local retention_ms = tonumber(ARGV[2])

local function record_key(id)
  return ns .. 'key:' .. id
end

local function digest_key(hex)
  return ns .. 'digest:' .. hex
end

-- Whether canonical decimal `a` is less than `b`.
local function earlier(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end

-- Sets the TTL of the record `id` (and of its digest index entry, for an opaque key) from its expiry: gone
-- `retention_ms` after it expires, or kept for ever when it has no expiry.
local function settle(id)
  local key = record_key(id)
  local f = redis.call('HMGET', key, 'expires', 'prefix', 'digest')
  local keys = { key }
  if not f[2] and f[3] then
    keys[2] = digest_key(f[3])
  end
  for _, k in ipairs(keys) do
    if f[1] then
      local ms = 0
      if #f[1] > 6 then
        ms = tonumber(string.sub(f[1], 1, #f[1] - 6))
      end
      redis.call('PEXPIREAT', k, string.format('%.0f', ms + retention_ms))
    else
      redis.call('PERSIST', k)
    end
  end
end

-- Why a record `id` (with `digest`, '' for a key of the crate's format) cannot be stored, or nil.
local function taken(id, digest)
  if redis.call('EXISTS', record_key(id)) == 1 then
    return 'CONFLICT id'
  end
  if digest ~= '' then
    local holder = redis.call('GET', digest_key(digest))
    -- An index entry whose record is gone (expired a moment apart) does not count.
    if holder and redis.call('EXISTS', record_key(holder)) == 1 then
      return 'CONFLICT digest'
    end
  end
  return nil
end

-- Writes the record `id` from the field/value pairs ARGV[first..#ARGV], indexes it, and sets its TTL.
local function store(id, digest, first)
  local key = record_key(id)
  for i = first, #ARGV, 2 do
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
  redis.call('ZADD', ids_key, 0, id)
  if digest ~= '' then
    redis.call('SET', digest_key(digest), id)
  end
  settle(id)
end

