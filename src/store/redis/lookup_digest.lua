-- lookup by digest: ARGV[3] digest (hex). The fields of the record it indexes, or an empty reply.
local id = redis.call('GET', digest_key(ARGV[3]))
if not id then
  return {}
end
return redis.call('HGETALL', record_key(id))
