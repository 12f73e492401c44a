-- KEYS[1] pending zset, ARGV[1] now, ARGV[2] lease end, ARGV[3] limit, ARGV[4] item-key prefix,
-- ARGV[5..] tokens. Ready ids are taken oldest-created first (ids sort by creation time).
local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
table.sort(ready)
local out = {}
for i = 1, math.min(#ready, tonumber(ARGV[3])) do
  local key = ARGV[4] .. ready[i]
  redis.call('HSET', key, 'token', ARGV[4 + i], 'ready_at', ARGV[2], 'updated_at', ARGV[1])
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('ZADD', KEYS[1], ARGV[2], ready[i])
  out[#out + 1] = ready[i]
end
return out
