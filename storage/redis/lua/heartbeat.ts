/**
 * @module
 * The heartbeat script: the server record and every lease its server holds, in one call.
 */

/** Writes a server record and extends its leases; see the header. */
export const HEARTBEAT = `--[[
heartbeat: stores the server record with its expiry, forgets expired server records, and
extends the leases of the given jobs that this server still holds.

KEYS[1] servers hash (server id -> ServerInfo JSON)
KEYS[2] server expiry zset (server id by expiry, ms)
KEYS[3] lease hash (job id -> holding server id)
KEYS[4] lease expiry zset (job id by lease expiry, ms)
ARGV[1] server id, ARGV[2] ServerInfo JSON, ARGV[3] record expiry (ms), ARGV[4] now (ms)
ARGV[5] new lease expiry (ms), ARGV[6..] job ids whose leases to extend
Returns: the job ids whose lease this server does not hold (lost).
]]
local server = ARGV[1]
redis.call('HSET', KEYS[1], server, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], server)
local dead = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[4], 'BYSCORE', 'LIMIT', 0, 1000)
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('ZREM', KEYS[2], unpack(dead))
end
local lost = {}
for s = 6, #ARGV, 1000 do
  local last = math.min(s + 999, #ARGV)
  local holders = redis.call('HMGET', KEYS[3], unpack(ARGV, s, last))
  local extend = {}
  for k = 1, #holders do
    local id = ARGV[s + k - 1]
    if holders[k] == server then
      extend[#extend + 1] = ARGV[5]
      extend[#extend + 1] = id
    else
      lost[#lost + 1] = id
    end
  end
  if #extend > 0 then redis.call('ZADD', KEYS[4], unpack(extend)) end
end
return lost
`;
