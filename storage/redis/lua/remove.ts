/**
 * @module
 * The remove script: finished jobs removed for good (retention), every key of each.
 */

/** Removes the jobs whose stored position is the expected one; see the header. */
export const REMOVE = `--[[
remove: removes finished jobs for good, all of them or none: each job's done field must still
start with the position the caller read (its version and the hash of its placement), so the
writes the caller computed from that record are the job's own. When one has moved on (or is
gone), nothing is written and those jobs' ids come back; lib sends the rest again.
The writes: the done fields deleted (by the script, from the ids), then those computed in
TypeScript, merged per key: the state and name index members removed, the gauges decremented,
the pruned total raised by the number removed, and each removed job's share of the all-time
totals, durations, time buckets and batch counts (computed from its log, read with the
position) added to the pruned base, which rebuild starts from. The events stream keeps its
entries (a live feed, capped by size).

KEYS[1] done hash (id -> position, then the collapsed job)
ARGV[1] key prefix with its colon (unused by the script: every key comes in the operations)
ARGV[2] number N of jobs; then per job: id, position read
then: number of operations; per operation: command, key, number of arguments, arguments...
  (command "HDELIF" takes field, value pairs: each field is deleted if it holds that value, so
  a unique key goes with its holder and stays with a newer one)
Returns: the ids whose done field no longer starts with the position read (empty: all removed).
]]
local ARGV, KEYS = ARGV, KEYS
local call, byte, find, tonumber, unpack = redis.call, string.byte, string.find, tonumber, unpack
local n = tonumber(ARGV[2])
local ids, moved = {}, {}
for j = 1, n do ids[j] = ARGV[1 + 2 * j] end
local stored = call('HMGET', KEYS[1], unpack(ids))
for j = 1, n do
  -- The position, then a newline, at the start of the field (no substring made to compare).
  local position, text = ARGV[2 + 2 * j], stored[j]
  if not text or find(text, position, 1, true) ~= 1 or byte(text, #position + 1) ~= 10 then
    moved[#moved + 1] = ids[j]
  end
end
if #moved > 0 then return moved end
for s = 1, n, 1000 do call('HDEL', KEYS[1], unpack(ids, s, math.min(s + 999, n))) end
local o = 3 + 2 * n
for _ = 1, tonumber(ARGV[o]) do
  local command, key, count = ARGV[o + 1], ARGV[o + 2], tonumber(ARGV[o + 3])
  if command == 'HDELIF' then
    for a = o + 4, o + 3 + count, 2 do
      if call('HGET', key, ARGV[a]) == ARGV[a + 1] then call('HDEL', key, ARGV[a]) end
    end
  else
    call(command, key, unpack(ARGV, o + 4, o + 3 + count))
  end
  o = o + 3 + count
end
return {}
`;
