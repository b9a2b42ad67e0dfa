/**
 * @module
 * The remove script: finished jobs removed for good (retention), every key of each.
 */

/** Removes the jobs whose stored position is the expected one; see the header. */
export const REMOVE = `--[[
remove: removes finished jobs for good, each only if its stored position (version and the hash
of its placement) is the one the caller read, so the index members the caller computed from
that record are the job's own. Per job it deletes the record, the position, the log list, the
state, ready, due, lease and name index entries, and decrements the job's gauge; then the
pruned total goes up by the number removed. All-time totals, durations, time buckets and batch
counts stay; each removed job's share of them (computed in TypeScript from its log, read before this
call: the position check proves the log is the same) is added to the pruned base, which rebuild
starts from. The capped events stream keeps its entries (it is the live feed, trimmed to about the last 100 calls).

KEYS[1] pos hash (id -> position)   KEYS[2] jobs hash   KEYS[3] gauges hash   KEYS[4] totals hash
KEYS[5] names zset   KEYS[6] due zset   KEYS[7] lease hash   KEYS[8] leases zset
ARGV[1] key prefix with its colon, e.g. "taskflow:" (log:<id>, state:<State>, ready:<queue>)
ARGV[2] number N of jobs; then per job 8 arguments:
  id, position read, state, state-index member, queue, ready-index member ("" for none),
  name-index member, gauge field (queue|state)
  then the number M of its pruned-base increments, and per increment 4 arguments:
  hash key, field, increment, expiry (PEXPIREAT ms, "" for none)
Returns: the ids removed (the others had moved on, or were gone).
]]
local ARGV, KEYS = ARGV, KEYS
local call = redis.call
local prefix = ARGV[1]
local removed = {}
-- Pruned-base increments merged per key and field, applied once each, in first-seen order.
local base, order = {}, {}
local a = 3
for _ = 1, tonumber(ARGV[2]) do
  local id, position = ARGV[a], ARGV[a + 1]
  local m = tonumber(ARGV[a + 8])
  if call('HGET', KEYS[1], id) == position then
    for o = a + 9, a + 8 + 4 * m, 4 do
      local name = ARGV[o] .. '\\0' .. ARGV[o + 1]
      local op = base[name]
      if op then op[3] = op[3] + tonumber(ARGV[o + 2])
      else
        base[name] = { ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2]), ARGV[o + 3] }
        order[#order + 1] = name
      end
    end
    call('HDEL', KEYS[1], id)
    call('HDEL', KEYS[2], id)
    call('DEL', prefix .. 'log:' .. id)
    call('ZREM', prefix .. 'state:' .. ARGV[a + 2], ARGV[a + 3])
    if ARGV[a + 5] ~= '' then call('ZREM', prefix .. 'ready:' .. ARGV[a + 4], ARGV[a + 5]) end
    call('ZREM', KEYS[6], id)
    call('HDEL', KEYS[7], id)
    call('ZREM', KEYS[8], id)
    call('ZREM', KEYS[5], ARGV[a + 6])
    call('HINCRBY', KEYS[3], ARGV[a + 7], -1)
    removed[#removed + 1] = id
  end
  a = a + 9 + 4 * m
end
for _, name in ipairs(order) do
  local op = base[name]
  call('HINCRBY', op[1], op[2], op[3])
  if op[4] ~= '' then call('PEXPIREAT', op[1], op[4]) end
end
if #removed > 0 then call('HINCRBY', KEYS[4], 'pruned', #removed) end
return removed
`;
