-- KEYS[1] item hash, KEYS[2] pending zset, KEYS[3] target zset (done/dead) or pending again.
-- ARGV: id, token, new state, now, ready_at (release) or '', last_error or ''.
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'token', '', 'updated_at', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[6]) end
if ARGV[3] == 'pending' then
  redis.call('HSET', KEYS[1], 'ready_at', ARGV[5], 'last_error', ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'created_at'), ARGV[1])
end
return 1
