-- revoke: ARGV[3] id, ARGV[4] time. Revokes the key and every key rotated from it (following rotated_to); a key
-- already revoked keeps its time. Returns the record of ARGV[3]. TTLs are left as they are.
local id, at = ARGV[3], ARGV[4]
local key = record_key(id)
if redis.call('EXISTS', key) == 0 then
  return redis.error_reply('NOTFOUND key')
end
redis.call('HSETNX', key, 'revoked', at)
local out = redis.call('HGETALL', key)
local succ = redis.call('HGET', key, 'rotated_to')
-- A chain never repeats an id; the bound only guards against a corrupted one.
local steps, limit = 0, redis.call('ZCARD', ids_key) + 1
while succ and steps < limit do
  steps = steps + 1
  local k = record_key(succ)
  if redis.call('EXISTS', k) == 0 then
    break
  end
  redis.call('HSETNX', k, 'revoked', at)
  succ = redis.call('HGET', k, 'rotated_to')
end
return out
