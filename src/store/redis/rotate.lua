-- rotate: ARGV[3] old id, ARGV[4] grace end, ARGV[5] successor id, ARGV[6] successor digest if opaque else '',
-- ARGV[7..] the successor's fields. Returns the old record as changed.
local old, grace, new, digest = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = record_key(old)
if redis.call('EXISTS', key) == 0 then
  return redis.error_reply('NOTFOUND key')
end
local f = redis.call('HMGET', key, 'revoked', 'rotated_to', 'expires')
if f[1] then
  return redis.error_reply('CONFLICT revoked')
end
if f[2] then
  return redis.error_reply('CONFLICT rotated')
end
local why = taken(new, digest)
if why then
  return redis.error_reply(why)
end
store(new, digest, 7)
local ends = grace
if f[3] and earlier(f[3], grace) then
  ends = f[3]
end
redis.call('HSET', key, 'rotated_to', new, 'expires', ends)
local out = redis.call('HGETALL', key)
settle(old)
return out
