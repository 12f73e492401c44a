-- KEYS: limit key, unique key, then incr keys, unique-incr keys, read keys, tally keys, unique-tally keys, and
-- last the once key.
-- ARGV: has_limit, max, window ms, has_unique, unique ttl ms, #incr, #unique-incr, #read, #tally, #unique-tally,
-- has_once, once ttl ms, the "other" member, then (member, cap, ttl ms) per tally and unique tally.
-- Returns {allowed, new_unique, repeated, read values...}; a read key just incremented reuses INCR's answer.
local nincr, nuincr, nread, ntally = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local counted = {}
local function read_all()
  local out = {}
  for i = 3 + nincr + nuincr, 2 + nincr + nuincr + nread do
    out[#out + 1] = counted[KEYS[i]] or tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  return out
end
-- One call for a member already counted (nearly every view); a new member is checked against the cap after
-- it is added, and moved to "other" when it was one too many.
local function tally(first, last)
  for i = first, last do
    local key, a = KEYS[2 + nincr + nuincr + nread + i], 14 + 3 * (i - 1)
    local member = ARGV[a]
    if redis.call('HINCRBY', key, member, 1) == 1 then
      local held = redis.call('HLEN', key)  -- this member included
      if held == 1 then
        redis.call('PEXPIRE', key, ARGV[a + 2])  -- a new key: its retention starts now
      elseif member ~= ARGV[13] and held - 1 - redis.call('HEXISTS', key, ARGV[13]) >= tonumber(ARGV[a + 1]) then
        redis.call('HDEL', key, member)
        redis.call('HINCRBY', key, ARGV[13], 1)
      end
    end
  end
end
local function answer(allowed, new, repeated)
  local out = read_all(); table.insert(out, 1, repeated); table.insert(out, 1, new); table.insert(out, 1, allowed)
  return out
end
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[#KEYS]) == 1 then return answer(1, 0, 1) end
if ARGV[1] == '1' then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  if n > tonumber(ARGV[2]) then
    redis.call('DECR', KEYS[1])  -- a refused call is not counted
    return answer(0, 0, 0)
  end
end
if ARGV[11] == '1' then redis.call('SET', KEYS[#KEYS], '1', 'PX', ARGV[12]) end
for i = 3, 2 + nincr do counted[KEYS[i]] = redis.call('INCR', KEYS[i]) end
tally(1, ntally)
local new = 0
if ARGV[4] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[5]) then
  new = 1
  for i = 3 + nincr, 2 + nincr + nuincr do counted[KEYS[i]] = redis.call('INCR', KEYS[i]) end
  tally(ntally + 1, ntally + tonumber(ARGV[10]))
end
return answer(1, new, 0)
