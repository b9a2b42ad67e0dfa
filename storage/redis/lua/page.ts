/**
 * @module
 * The page script: one range of an index and the job records it points to, in one call.
 */

/** Reads one page of an index with its records; see the header. */
export const PAGE = `--[[
page: one page of a sorted-set index and the records of the jobs it names.

KEYS[1] the index (zset: state:<State>, ready:<queue>, due or leases)
KEYS[2] the hash of the records (jobs or done)   KEYS[3] the hash to look in for the others
ARGV[1] "BYLEX" or "BYSCORE"
ARGV[2] start, ARGV[3] stop (as ZRANGE takes them; with REV, start is the upper bound)
ARGV[4] "1" for reverse order (newest first)
ARGV[5] most members to return
ARGV[6] where the job id starts in a member (1: the member is the id)
Returns: { members, records }, records[i] false where the job is in neither hash.
]]
local range = { 'ZRANGE', KEYS[1], ARGV[2], ARGV[3], ARGV[1] }
if ARGV[4] == '1' then range[#range + 1] = 'REV' end
range[#range + 1] = 'LIMIT'
range[#range + 1] = 0
range[#range + 1] = tonumber(ARGV[5])
local members = redis.call(unpack(range))
local from = tonumber(ARGV[6])
local ids = {}
for k, member in ipairs(members) do ids[k] = string.sub(member, from) end
local records = {}
for s = 1, #ids, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, s, math.min(s + 999, #ids)))
  for k = 1, #part do records[s + k - 1] = part[k] end
end
local missing, at = {}, {}
for k = 1, #ids do
  if not records[k] then
    missing[#missing + 1] = ids[k]
    at[#missing] = k
  end
end
for s = 1, #missing, 1000 do
  local part = redis.call('HMGET', KEYS[3], unpack(missing, s, math.min(s + 999, #missing)))
  for k = 1, #part do records[at[s + k - 1]] = part[k] end
end
return { members, records }
`;
