-- record_usage: ARGV[3..] triples of id, count, last-used time. Counts add up (saturating at 2^64 - 1), last-used
-- only moves forward; unknown ids are skipped. TTLs are left as they are.
local MAX = '18446744073709551615'

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

for i = 3, #ARGV, 3 do
  local key = record_key(ARGV[i])
  if redis.call('EXISTS', key) == 1 then
    local f = redis.call('HMGET', key, 'uses', 'last_used')
    redis.call('HSET', key, 'uses', add(f[1] or '0', ARGV[i + 1]))
    if not f[2] or earlier(f[2], ARGV[i + 2]) then
      redis.call('HSET', key, 'last_used', ARGV[i + 2])
    end
  end
end
return 1
