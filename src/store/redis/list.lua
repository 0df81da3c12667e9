-- list: ARGV[3] the ZRANGEBYLEX start ('-', or '(' and the last id seen), ARGV[4] how many ids. Returns id, fields,
-- id, fields, ... in byte order of ids; ids whose record is gone (expired) come with no fields and leave the index.
local ids = redis.call('ZRANGEBYLEX', ids_key, ARGV[3], '+', 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', record_key(id))
  if #fields == 0 then
    redis.call('ZREM', ids_key, id)
  end
  out[#out + 1] = id
  out[#out + 1] = fields
end
return out
