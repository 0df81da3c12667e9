-- insert: ARGV[3] id, ARGV[4] digest (hex) if the record is opaque, else ''; ARGV[5..] the record's fields.
local why = taken(ARGV[3], ARGV[4])
if why then
  return redis.error_reply(why)
end
store(ARGV[3], ARGV[4], 5)
return 1
