-- update: ARGV[3] id; ARGV[4] expiry: '' keep, '-' remove, else the new time; ARGV[5] n; then n field/value pairs
-- to set; then the fields to delete. Returns the record as changed. The semantics of `KeyUpdate::apply`.
local id, expiry, n = ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = record_key(id)
if redis.call('EXISTS', key) == 0 then
  return redis.error_reply('NOTFOUND key')
end
local i = 6
while i < 6 + 2 * n do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', key, ARGV[i])
  i = i + 1
end
if expiry ~= '' then
  local f = redis.call('HMGET', key, 'rotated_to', 'expires')
  if f[1] and f[2] then
    -- A rotated key's grace period can be cut short, never stretched or removed.
    if expiry ~= '-' and earlier(expiry, f[2]) then
      redis.call('HSET', key, 'expires', expiry)
    end
  elseif expiry == '-' then
    redis.call('HDEL', key, 'expires')
  else
    redis.call('HSET', key, 'expires', expiry)
  end
end
local out = redis.call('HGETALL', key)
settle(id)
return out
