/**
 * @module
 * The heartbeat script: the server record and every lease its server holds, in one call.
 */

/** Writes a server record and extends its leases; see the header. */
export const HEARTBEAT = `--[[
heartbeat: stores the server record with its expiry, forgets expired server records, and
extends the leases of the given jobs that this server still holds. Records expire on the Redis
server's clock (TIME): servers' own clocks may disagree, and must not decide who is alive.

KEYS[1] servers hash (server id -> ServerInfo JSON)
KEYS[2] server expiry zset (server id by expiry, ms on the Redis server's clock)
KEYS[3] lease hash (job id -> holding server id)
KEYS[4] lease expiry zset (job id by lease expiry, ms)
ARGV[1] server id, ARGV[2] ServerInfo JSON, ARGV[3] the record's time to live (ms)
ARGV[4] new lease expiry (ms), ARGV[5..] job ids whose leases to extend; a lease already at
or past ARGV[4] moves 1 ms past its expiry instead, so that every extension changes it
Returns: the job ids whose lease this server does not hold (lost).
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local untilMs = tonumber(ARGV[4])
local server = ARGV[1]
redis.call('HSET', KEYS[1], server, ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%.17g', now + tonumber(ARGV[3])), server)
local dead = redis.call('ZRANGE', KEYS[2], '-inf', string.format('%.17g', now), 'BYSCORE',
  'LIMIT', 0, 1000)
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('ZREM', KEYS[2], unpack(dead))
end
local lost = {}
for s = 5, #ARGV, 1000 do
  local last = math.min(s + 999, #ARGV)
  local holders = redis.call('HMGET', KEYS[3], unpack(ARGV, s, last))
  local extend = {}
  for k = 1, #holders do
    local id = ARGV[s + k - 1]
    if holders[k] == server then
      local old = tonumber(redis.call('ZSCORE', KEYS[4], id))
      if old and old >= untilMs then
        extend[#extend + 1] = string.format('%.17g', old + 1)
      else
        extend[#extend + 1] = ARGV[4]
      end
      extend[#extend + 1] = id
    else
      lost[#lost + 1] = id
    end
  end
  if #extend > 0 then redis.call('ZADD', KEYS[4], unpack(extend)) end
end
return lost
`;

/** One page of the leases with their expiries; see the header. */
export const LEASES = `--[[
leases: one HSCAN page of the lease hash, with each lease's expiry. HSCAN lists every field
present for the whole scan at least once, however the hash changes meanwhile.

KEYS[1] lease hash (job id -> holding server id)
KEYS[2] lease expiry zset (job id by lease expiry, ms)
ARGV[1] HSCAN cursor ("0" for the first page), ARGV[2] COUNT hint
Returns: { next cursor ("0": the last page), { id, server id, expiry, ... } }; fields without
an expiry (the hash's keeper) are left out.
]]
local scan = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local found = scan[2]
local out = {}
for k = 1, #found, 2 do
  local score = redis.call('ZSCORE', KEYS[2], found[k])
  if score then
    out[#out + 1] = found[k]
    out[#out + 1] = found[k + 1]
    out[#out + 1] = score
  end
end
return { scan[1], out }
`;
