/**
 * @module
 * The create script: the append script's writes for a call that only creates jobs (each
 * change one new job, not final, no cap or setting), without the parsing and tables the other
 * changes need. `../append.ts` picks it; both write the same keys the same way.
 */

import { operations } from "./operations.ts";

/** Creates new jobs all together or not at all; see the header. */
export const CREATE = `--[[
create: the append script (lua/append.ts) for a call whose every change creates one job.
Nothing is written when a job already exists (a pos entry or a done field) or a unique key is
held by another job than its claim expects: then it returns { results } as the append script
does, one array per change, naming the job that exists or claims. Otherwise it RPUSHes each
job's events to its log, stores its position and record, sets the claimed unique keys, runs the
operations, adds one feed entry (field: job id, value "0 <how many>") and PUBLISHes the wake-up.

KEYS[1] pos hash   KEYS[2] feed stream   KEYS[3] done hash   KEYS[4] jobs hash
ARGV[1] key prefix with its colon (log:<id> keys)
ARGV[2] channel to PUBLISH a wake-up on ("" for none: then "1" on <prefix>feedwake)
ARGV[3] the wake-up's message, "=<k>" for the record of the k-th job (not sent twice)
ARGV[4] number N of jobs; then per job: id, position, record JSON, number of events, events...
then: 0 when no job claims a unique key, else N; then per job the key it claims (in the hash
  ARGV[1].."unique"; "" for none) and the holder it expects ("" for none). No two jobs of a
  call claim one key (the caller sends a repeated key in its next call)
then: number of operations; per operation: command, key, number of arguments, arguments...
  (as in the append script, "BUCKET" too; the records are not among them)
Returns {} when written.
]]
local ARGV, KEYS = ARGV, KEYS
local call, tonumber, unpack, byte = redis.call, tonumber, unpack, string.byte
local prefix, channel, message = ARGV[1], ARGV[2], ARGV[3]
-- See the append script: about 256 KiB of feed references.
local FEED_BYTES = 262144
local n = tonumber(ARGV[4])
local ids, at, i = {}, {}, 5
for k = 1, n do
  local count = ARGV[i + 3]
  ids[k], at[k] = ARGV[i], i
  i = i + 4 + (#count == 1 and byte(count) - 48 or tonumber(count))
end
-- Unique claims: each key's holder (one HMGET per 500 keys) must be the one its job expects.
local claimsAt, uniqueKey = i + 1, prefix .. 'unique'
local nclaims = tonumber(ARGV[i])
i = i + 1 + 2 * nclaims
local claimed, held, nheld = {}, {}, 0
if nclaims > 0 then
  local keys, found = {}, {}
  for k = 1, n do keys[k] = ARGV[claimsAt + 2 * k - 2] end
  for s = 1, n, 500 do
    local got = call('HMGET', uniqueKey, unpack(keys, s, math.min(s + 499, n)))
    if s == 1 then found = got else for k = 1, #got do found[s + k - 1] = got[k] end end
  end
  for k = 1, n do
    local key = keys[k]
    if key ~= '' then
      if (found[k] or '') ~= ARGV[claimsAt + 2 * k - 1] then
        claimed[k] = { ids[k] }
      else
        held[nheld + 1], held[nheld + 2] = key, ids[k]
        nheld = nheld + 2
      end
    end
  end
end
if n == 1 and not claimed[1] then
  -- One job (a single enqueue): HSETNX checks and stores its position in one command.
  local id = ids[1]
  if call('HEXISTS', KEYS[3], id) == 1 or call('HSETNX', KEYS[1], id, ARGV[6]) == 0 then
    return { { { id } } }
  end
  call('HSET', KEYS[4], id, ARGV[7])
else
  local stored = call('HMGET', KEYS[1], unpack(ids))
  local done = call('HMGET', KEYS[3], unpack(ids))
  local results, refused, none = {}, false, {}
  for k = 1, n do
    local conflicts = claimed[k]
    if stored[k] or done[k] then
      conflicts = conflicts or {}
      table.insert(conflicts, 1, ids[k])
    end
    results[k] = conflicts or none
    if conflicts then refused = true end
  end
  if refused then return { results } end
  local posPairs, records = {}, {}
  for k = 1, n do
    posPairs[2 * k - 1], posPairs[2 * k] = ids[k], ARGV[at[k] + 1]
    records[2 * k - 1], records[2 * k] = ids[k], ARGV[at[k] + 2]
  end
  call('HSET', KEYS[1], unpack(posPairs))
  call('HSET', KEYS[4], unpack(records))
end
for s = 1, nheld, 1000 do call('HSET', uniqueKey, unpack(held, s, math.min(s + 999, nheld))) end

local feed, nfeed, feedBytes = {}, 0, 0
for k = 1, n do
  local a, id = at[k], ids[k]
  local count = ARGV[a + 3]
  local events = #count == 1 and byte(count) - 48 or tonumber(count)
  if events > 0 then
    call('RPUSH', prefix .. 'log:' .. id, unpack(ARGV, a + 4, a + 3 + events))
    local value = '0 ' .. count
    feed[nfeed + 1], feed[nfeed + 2] = id, value
    nfeed = nfeed + 2
    feedBytes = feedBytes + #id + #value + 2
  end
end

${operations("i")}

if nfeed > 0 then
  local id = redis.REDIS_VERSION_NUM and '0-*' or '0-' .. call('INCR', prefix .. 'feedseq')
  call('XADD', KEYS[2], 'MAXLEN', '~', math.ceil(FEED_BYTES / feedBytes), id, unpack(feed))
  if channel == '' then call('PUBLISH', prefix .. 'feedwake', '1') end
end
if channel ~= '' then
  if byte(message) == 61 then message = ARGV[at[tonumber(string.sub(message, 2))] + 2] end
  call('PUBLISH', channel, message)
end
return {}
`;
