-- GCRA (generic cell rate algorithm) for one key, atomically, with the server's clock.
-- KEYS[1]: the key's theoretical arrival time (TAT), in microseconds since the epoch.
-- ARGV[1]: emission interval in microseconds (period / requests); ARGV[2]: burst (requests).
-- Returns {1, 0} when allowed, {0, wait_us} when over the limit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return {1, 0}
