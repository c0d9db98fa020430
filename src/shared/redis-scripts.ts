/**
 * The Lua scripts the [cluster] link defines. Each touches one key only, so
 * that each runs where its key lives in a Redis Cluster (whatever hash slot
 * the key falls in) and never meets a CROSSSLOT error; nothing else sent is
 * multi-key either (see docs/workers.md "Redis Cluster").
 */

/**
 * One source's connection slots across the group, in one hash: field
 * `c:INSTANCE` is what that instance holds, `t:INSTANCE` until when (epoch
 * ms) it counts (renewed by its lease calls and its heartbeat). A holder
 * whose time passed is dropped; then up to `want` more are granted under
 * `limit`. KEYS[1]: the hash. ARGV: instance, want, limit, now, key TTL ms,
 * this instance's alive-until.
 */
export const LEASE_SCRIPT = `
local now = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 't:' .. ARGV[1], ARGV[6])
local sum = 0
local fields = redis.call('HGETALL', KEYS[1])
local alive = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 't:' then
    alive[string.sub(fields[i], 3)] = tonumber(fields[i + 1]) >= now
  end
end
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 2) == 'c:' then
    local who = string.sub(f, 3)
    if alive[who] then
      sum = sum + tonumber(fields[i + 1])
    else
      redis.call('HDEL', KEYS[1], f, 't:' .. who)
    end
  elseif string.sub(f, 1, 2) == 't:' and not alive[string.sub(f, 3)] then
    redis.call('HDEL', KEYS[1], f)
  end
end
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - sum)
if grant > 0 then redis.call('HINCRBY', KEYS[1], 'c:' .. ARGV[1], grant) else grant = 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return grant`;

/** Takes up to `want` of `limit` tokens of one second's window. */
export const TOKENS_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) else grant = 0 end
redis.call('PEXPIRE', KEYS[1], 2000)
return grant`;

/**
 * A stick entry: the first instance to write a key decides it for the group
 * (a later writer gets the group's answer back and adopts it), a renewal only
 * extends the TTL of the same answer, and a move (ARGV[3] = 1: the group's
 * backend was no candidate here) overwrites it. Returns the group's backend.
 */
export const STICK_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if (not cur) or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return cur`;
