-- KEYS: limit key, unique key, then incr keys, unique-incr keys, read keys, tally keys, unique-tally keys, their
-- inherited-estimate keys in the same order, and last the log stream key and the once key.
-- ARGV: has_limit, max, window ms, has_unique, unique ttl ms, #incr, #unique-incr, #read, #tally, #unique-tally,
-- has_once, once ttl ms, the "other" member, then (member, cap, ttl ms) per tally and unique tally, and last
-- has_record, the record's text and the oldest stream id kept (older records are trimmed).
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
-- it is added. When it was one too many, the member ranked lowest (estimate, then own count, then name) gives its
-- place up: its own count moves to "other" and the newcomer inherits its estimate (space-saving; see the
-- contract's Tally). A tally's inherited estimates are a second hash, expiring with the first.
local ntotal = ntally + tonumber(ARGV[10])
local function evict(key, inherited, member, other)
  local counts, given, got = redis.call('HGETALL', key), redis.call('HGETALL', inherited), {}
  for j = 1, #given, 2 do got[given[j]] = tonumber(given[j + 1]) end
  local victim, vn, vown
  for j = 1, #counts, 2 do
    local m, n = counts[j], tonumber(counts[j + 1])
    local own = n - (got[m] or 0)
    if m ~= other and m ~= member and (victim == nil or n < vn or (n == vn and (own < vown or
        (own == vown and m < victim)))) then
      victim, vn, vown = m, n, own
    end
  end
  redis.call('HDEL', key, victim, member)
  redis.call('HDEL', inherited, victim)
  redis.call('HINCRBY', key, other, vown)
  redis.call('HSET', key, member, vn + 1)
  redis.call('HSET', inherited, member, vn)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then redis.call('PEXPIRE', inherited, ttl) end
end
local function tally(first, last)
  local base = 2 + nincr + nuincr + nread
  for i = first, last do
    local key, inherited, a = KEYS[base + i], KEYS[base + ntotal + i], 14 + 3 * (i - 1)
    local member, other = ARGV[a], ARGV[13]
    if redis.call('HINCRBY', key, member, 1) == 1 then
      local held = redis.call('HLEN', key)  -- this member included
      if held == 1 then
        redis.call('PEXPIRE', key, ARGV[a + 2])  -- a new key: its retention starts now
      elseif member ~= other and held - 1 - redis.call('HEXISTS', key, other) >= tonumber(ARGV[a + 1]) then
        evict(key, inherited, member, other)
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
if ARGV[#ARGV - 2] == '1' then
  redis.call('XADD', KEYS[#KEYS - 1], 'MINID', '~', ARGV[#ARGV], '*', 'p', ARGV[#ARGV - 1])
end
return answer(1, new, 0)
