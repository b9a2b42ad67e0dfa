/**
 * @module
 * The recurring-record script: put or delete with compare-and-set on the record's version.
 */

/** Puts or deletes a recurring record if its stored version is the expected one. */
export const RECURRING = `--[[
recurring: writes (or deletes) a recurring record if the stored record's version equals the
expected one (0: no record stored).

KEYS[1] recurring hash (id -> record JSON with a numeric "version")
ARGV[1] record id, ARGV[2] expected version, ARGV[3] new record JSON ("": delete)
Returns: 1 when written or deleted, 0 on a version conflict (or deleting a missing record).
A stored value that is not JSON counts as version 0.
]]
local old = redis.call('HGET', KEYS[1], ARGV[1])
local stored = 0
if old then
  -- A record that does not decode counts as version 0, as the reads present it.
  local ok, decoded = pcall(cjson.decode, old)
  if ok and type(decoded) == 'table' then stored = tonumber(decoded.version) or 0 end
end
if stored ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  if not old then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
`;
