/**
 * @module
 * The append script: every job transition, group-committed. Its ARGV is built by
 * `../append_call.ts`, which computes every index move and counter in TypeScript, so the
 * script only compares and writes.
 */

import { operations } from "./operations.ts";

/** Applies a call's changes all together or not at all; see the header. */
export const APPEND = `--[[
append: applies a batch of changes (group commit), all of them or none.
Per commit it compares the job's stored position with the position the commit was built on
(the version and a hash of everything that places the job in the indexes). When a
change fails that check, or (in a claim) names a job that is not among the first H ready jobs,
nothing is written and every failed change's job ids come back: lib sends the rest again.
Otherwise it RPUSHes each commit's events to the job's log, adds one entry to the feed stream
(id 0-<n>, n dense: XADD's own next sequence on Redis 7, INCR <prefix>feedseq on 6.2, so that
readers see a trimmed gap; field: job id, value: "<version the events follow> <how many>", read
back from the logs; capped by size), PUBLISHes on <prefix>feedwake (unless it publishes on
ARGV[2], which feed listeners hear too), stores the new positions, and runs the operations lib
computed for the batch (index moves, record writes, leases, counters, time buckets; already
merged per key, so each is one multi-member command).
A commit with a record line (its job enters a final state) collapses the job instead: its log
list (or its earlier done entry's log) and new events become one done field, "position\\n
record line\\nevent lines" (storage/log_codec.ts), the first line "=" when it is the created
event the record implies: lib marks that line so in a log list (a "=" before it), and says
whether the record still implies it. A job in done has no pos entry: its position is the done
field's first line. A commit on a done job expands that log again ("=" back to the marked
created event lib sends) unless it collapses again.

KEYS[1] pos hash (id -> position)   KEYS[2] feed stream   KEYS[3] jobs hash   KEYS[4] done hash
ARGV[1] key prefix with its colon, e.g. "taskflow:" (log:<id> keys)
ARGV[2] channel to PUBLISH a wake-up on after writing ("" for none)
ARGV[3] the wake-up's message: the record JSON of the one job the call makes Enqueued (workers
  take it as their next candidate), else "1"
ARGV[4] number Q of ready-index keys of a claim (0 for a plain append); ARGV[5..4+Q] the keys
then, only when Q > 0 (a claim), three more:
  head size H: a commit applies only if its job is among the first H ready jobs of those keys
    (claim order: key order, then the ready index)
  peek size P: how many ready jobs (after the writes) to return, with their records (P is at
    most lib's MAX_CLAIM, 500: one HMGET)
  where the job id starts in a ready member
  then per ready key: the queue's global concurrency limit ("" for none) and its Processing
    gauges field: the first H and P ready jobs take at most limit - gauge jobs of that queue,
    then (after the others) more of it: for H any (the cap refuses them as limited), for P if
    this call claimed some of it (its caller claims again as they end)
then: number N of capped changes; per capped change: its number (1-based), the gauges field
  of its queue's Processing jobs, and the limit L: the change applies only if that gauge plus
  the changes applied before it in this call plus its commits stay at most L (else its
  conflicts are the single id "": it is limited)
then: number S of changes that write a setting; per such change: its number, the setting id,
  the version expected (0: absent) and the record JSON: the change applies only if the stored
  record (settings hash) is at that version (else its conflicts are "setting:<id>"), and then
  the record is written
then: number of changes; then per change: number of commits; then per commit:
  id, position it was built on ("" when the job must not exist), new position,
  record line ("" unless the job collapses), "=" when the new record implies the same created
  event as the stored one (else "": a marked created line loses its mark), the marked created
  event line the stored record implies ("" unless the job is in done),
  number of events, events (log_codec lines)...
then: number of unique claims; per claim: its change's number (from 1), the key, the holder it
  expects ("" for none), the claiming job's id. A claim whose key (in the hash ARGV[1].."unique")
  is held by another job than expected makes its change conflict, as does a second claim of a
  key in one call; the holders are read with one HMGET, and once every change applies, each
  claimed key is set to its job with one HSET (the operations do not name them again).
then: number of operations; per operation: command, key, number of arguments, arguments...
  (command "BUCKET" takes field, increment, expiry: HINCRBY, then PEXPIREAT when the field is new)
Returns, when every change applied: the first P ready jobs' records (an empty array for P = 0);
when a change was refused: { results }, where results has one array per change, empty when it
would apply, else the ids that differed. (Flat on success: Redis checks every table of a reply
for error and status fields, which for the empty conflict lists of 50 applied changes cost more
than the rest of the reply.)
]]
-- Globals read once: each use of a global (ARGV too) is a table lookup in Lua.
local ARGV, KEYS = ARGV, KEYS
local call, tonumber, unpack, ipairs = redis.call, tonumber, unpack, ipairs
local byte, find, gmatch = string.byte, string.find, string.gmatch
local sub, concat, min, ceil = string.sub, table.concat, math.min, math.ceil
local prefix, channel, message = ARGV[1], ARGV[2], ARGV[3]
local CHUNK = 500
-- The events stream keeps about this many bytes of references to events (about 8,000 job
-- transitions): a window for watchers to resume in, not history (each job's log is).
local FEED_BYTES = 262144
local nq = tonumber(ARGV[4])
local queues = {}
for q = 1, nq do queues[q] = ARGV[4 + q] end
local headSize, peekSize, idAt, i = 0, 0, 0, 5 + nq
local limits = {}
if nq > 0 then
  headSize, peekSize, idAt = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  for q = 1, nq do
    if ARGV[i + 1 + 2 * q] ~= '' then limits[q] = i + 1 + 2 * q end
  end
  i = i + 3 + 2 * nq
end

-- The first ready jobs, each capped queue's at most its limit minus its gauge; then, after
-- the others, its jobs past that if more (true, or a table by gauge field) says so. The peek's
-- are the queues this call claimed from: its caller claims again as those jobs end (a queue at
-- its cap by this caller alone would otherwise peek none, and its next claim would cost a call
-- more); a queue others hold at its cap stays out. The head check's are all: a job past the
-- cap is then refused as limited, not as out of order.
local function head(limit, more)
  local ids, past = {}, {}
  for q, key in ipairs(queues) do
    if #ids >= limit then break end
    local take, cap = limit - #ids, limits[q]
    if cap then
      local used = tonumber(call('HGET', prefix .. 'gauges', ARGV[cap + 1]) or '0')
      local room = math.max(0, tonumber(ARGV[cap]) - used)
      local extra = (more == true or more and more[ARGV[cap + 1]]) and take - min(take, room) or 0
      take = min(take, room)
      if extra > 0 then past[#past + 1] = { key, take, extra } end
    end
    if take > 0 then
      local members = call('ZRANGE', key, '-', '+', 'BYLEX', 'LIMIT', 0, take)
      for _, member in ipairs(members) do ids[#ids + 1] = sub(member, idAt) end
    end
  end
  for _, m in ipairs(past) do
    if #ids >= limit then break end
    local members = call('ZRANGE', m[1], '-', '+', 'BYLEX', 'LIMIT', m[2], min(m[3], limit - #ids))
    for _, member in ipairs(members) do ids[#ids + 1] = sub(member, idAt) end
  end
  return ids
end

-- First pass: where each commit's part starts (at[k]) and how many events it has (nev[k]);
-- change c holds commits first[c] .. first[c + 1] - 1; every job's stored position comes with
-- one HMGET per 500 ids. Counts are mostly one digit: those are read with string.byte, cheaper
-- than tonumber's strtod (here and in the operations).
local caps = {}
for k = 1, tonumber(ARGV[i]) do caps[tonumber(ARGV[i + 3 * k - 2])] = i + 3 * k - 2 end
i = i + 1 + 3 * tonumber(ARGV[i])
local puts = {}
for k = 1, tonumber(ARGV[i]) do puts[tonumber(ARGV[i + 4 * k - 3])] = i + 4 * k - 3 end
i = i + 1 + 4 * tonumber(ARGV[i])
local at, nev, first, ids, pos = {}, {}, {}, {}, {}
local ncommits, nids = 0, 0
local nchanges = tonumber(ARGV[i])
i = i + 1
for c = 1, nchanges do
  first[c] = ncommits + 1
  local j = i + 1
  local count = ARGV[i]
  for _ = 1, #count == 1 and byte(count) - 48 or tonumber(count) do
    local id = ARGV[j]
    if pos[id] == nil then
      pos[id] = false
      nids = nids + 1
      ids[nids] = id
    end
    local n = ARGV[j + 6]
    n = #n == 1 and byte(n) - 48 or tonumber(n)
    ncommits = ncommits + 1
    at[ncommits], nev[ncommits] = j, n
    j = j + 7 + n
  end
  i = j
end
first[nchanges + 1] = ncommits + 1
-- Unique claims by change: claimsOf[c] lists the ARGV index of each of change c's claims.
-- Their keys' holders come with one HMGET per 500 keys (one HGET per claim cost a command each).
local claimsOf, claimKeys, holders = {}, {}, {}
local nclaims, uniqueKey, claimsAt = tonumber(ARGV[i]), prefix .. 'unique', i + 1
for q = 1, nclaims do
  local a = i + 1 + 4 * (q - 1)
  local c = tonumber(ARGV[a])
  claimsOf[c] = claimsOf[c] or {}
  claimsOf[c][#claimsOf[c] + 1] = a
  claimKeys[q] = ARGV[a + 1]
end
for s = 1, nclaims, CHUNK do
  local last = min(s + CHUNK - 1, nclaims)
  local found = call('HMGET', uniqueKey, unpack(claimKeys, s, last))
  for k = 1, #found do holders[claimKeys[s + k - 1]] = found[k] or '' end
end
i = i + 1 + 4 * nclaims
local ops = i
for s = 1, nids, CHUNK do
  local last = min(s + CHUNK - 1, nids)
  local found = call('HMGET', KEYS[1], unpack(ids, s, last))
  for k = 1, #found do pos[ids[s + k - 1]] = found[k] end
end
-- Jobs without a pos entry are new, or finished: a done field starts with its position.
local missing, done = {}, {}
for _, id in ipairs(ids) do
  if not pos[id] then missing[#missing + 1] = id end
end
for s = 1, #missing, CHUNK do
  local last = min(s + CHUNK - 1, #missing)
  local found = call('HMGET', KEYS[4], unpack(missing, s, last))
  for k = 1, #found do
    local entry = found[k]
    if entry then
      local id = missing[s + k - 1]
      done[id] = entry
      pos[id] = sub(entry, 1, (find(entry, '\\n', 1, true) or #entry + 1) - 1)
    end
  end
end

local atHead = nil
if nq > 0 and headSize > 0 then
  atHead = {}
  for _, id in ipairs(head(headSize, true)) do atHead[id] = true end
end

-- Every change is checked; any conflict refuses the whole call, and each change's conflicting
-- job ids come back (an empty list for a change that would apply).
local results, refused, none, taken, mine = {}, false, {}, {}, {}
for c = 1, nchanges do
  local conflicts = nil
  for k = first[c], first[c + 1] - 1 do
    local a = at[k]
    local id, built = ARGV[a], ARGV[a + 1]
    local stored = pos[id]
    if (built == '' and stored) or (built ~= '' and stored ~= built) or (atHead and not atHead[id]) then
      conflicts = conflicts or {}
      conflicts[#conflicts + 1] = id
    end
  end
  for _, a in ipairs(claimsOf[c] or none) do
    if holders[ARGV[a + 1]] ~= ARGV[a + 2] then
      conflicts = conflicts or {}
      conflicts[#conflicts + 1] = ARGV[a + 3]
    end
  end
  local put = puts[c]
  if put and not conflicts then
    local old, stored = call('HGET', prefix .. 'settings', ARGV[put + 1]), 0
    if old then
      local ok, decoded = pcall(cjson.decode, old)
      if ok and type(decoded) == 'table' then stored = tonumber(decoded.version) or 0 end
    end
    if stored ~= tonumber(ARGV[put + 2]) then conflicts = { 'setting:' .. ARGV[put + 1] } end
  end
  local cap = caps[c]
  if cap and not conflicts then
    local field = ARGV[cap + 1]
    local used = taken[field] or tonumber(call('HGET', prefix .. 'gauges', field) or '0')
    used = used + first[c + 1] - first[c]
    if used > tonumber(ARGV[cap + 2]) then conflicts = { '' } else taken[field] = used end
    if not conflicts then mine[field] = true end
  end
  if conflicts then
    refused = true
  else
    for k = first[c], first[c + 1] - 1 do pos[ARGV[at[k]]] = ARGV[at[k] + 2] end
    for _, a in ipairs(claimsOf[c] or none) do holders[ARGV[a + 1]] = ARGV[a + 3] end
  end
  results[c] = conflicts or none
end
if refused then return { results } end

for _, put in pairs(puts) do call('HSET', prefix .. 'settings', ARGV[put + 1], ARGV[put + 3]) end
local posPairs, donePairs, feed, npairs, ndone, nfeed, feedBytes = {}, {}, {}, 0, 0, 0, 0
local function push(key, lines, first, last)
  for s = first, last, CHUNK do call('RPUSH', key, unpack(lines, s, min(s + CHUNK - 1, last))) end
end
for k = 1, ncommits do
  local a, n = at[k], nev[k]
  local id, part = ARGV[a], ARGV[a + 3]
  local firstEvent, last = a + 7, a + 6 + n
  local log = prefix .. 'log:' .. id
  local stored = done[id]
  local lines = nil
  if stored then
    -- The done field's log, its first line the created event again.
    local s = find(stored, '\\n', (find(stored, '\\n', 1, true) or #stored) + 1, true)
    lines = {}
    if s then for line in gmatch(sub(stored, s + 1), '[^\\n]+') do lines[#lines + 1] = line end end
    if lines[1] == '=' then lines[1] = ARGV[a + 5] end
    if part == '' then
      call('HDEL', KEYS[4], id)
      push(log, lines, 1, #lines)
    end
  end
  if part == '' then
    if ARGV[a + 4] == '' then
      -- The record implies another created event now: the log's line loses its mark.
      local created = call('LINDEX', log, 0)
      if created and #created > 1 and byte(created) == 61 then
        call('LSET', log, 0, sub(created, 2))
      end
    end
    posPairs[npairs + 1], posPairs[npairs + 2] = id, ARGV[a + 2]
    npairs = npairs + 2
    if n > 0 then push(log, ARGV, firstEvent, last) end
  else
    if not lines then
      lines = call('LRANGE', log, 0, -1)
      if #lines > 0 then call('DEL', log) end
    end
    for e = firstEvent, last do lines[#lines + 1] = ARGV[e] end
    local created = lines[1]
    if #lines > 1 and #created > 1 and byte(created) == 61 then
      lines[1] = ARGV[a + 4] == '=' and '=' or sub(created, 2)
    end
    donePairs[ndone + 1] = id
    donePairs[ndone + 2] = ARGV[a + 2] .. '\\n' .. part .. '\\n' .. concat(lines, '\\n')
    ndone = ndone + 2
  end
  if n > 0 then
    local built = ARGV[a + 1]
    local value = (built == '' and '0' or sub(built, 1, find(built, ':', 1, true) - 1)) ..
      ' ' .. n
    feed[nfeed + 1], feed[nfeed + 2] = id, value
    nfeed = nfeed + 2
    feedBytes = feedBytes + #id + #value + 2
  end
end
for s = 1, npairs, 2 * CHUNK do
  call('HSET', KEYS[1], unpack(posPairs, s, min(s + 2 * CHUNK - 1, npairs)))
end
for s = 1, ndone, 2 * CHUNK do
  call('HSET', KEYS[4], unpack(donePairs, s, min(s + 2 * CHUNK - 1, ndone)))
end
for s = 1, nclaims, CHUNK do
  local held, n = {}, 0
  for q = s, min(s + CHUNK - 1, nclaims) do
    local a = claimsAt + 4 * (q - 1)
    held[n + 1], held[n + 2] = ARGV[a + 1], ARGV[a + 3]
    n = n + 2
  end
  call('HSET', uniqueKey, unpack(held))
end

${operations("ops")}

-- The stream keeps about the last FEED_BYTES of references (as many entries as calls of this
-- size make), so a finished job costs it nothing once the feed has moved on.
if nfeed > 0 then
  local keep = ceil(FEED_BYTES * (nfeed <= 2 * CHUNK and 1 or 2 * CHUNK / nfeed) / feedBytes)
  for s = 1, nfeed, 2 * CHUNK do
    -- Redis 7 numbers the entry itself (the next sequence after the last id, kept when trimmed);
    -- 6.2 has no "0-*" (nor REDIS_VERSION_NUM), and counts with INCR.
    local id = redis.REDIS_VERSION_NUM and '0-*' or '0-' .. call('INCR', prefix .. 'feedseq')
    call('XADD', KEYS[2], 'MAXLEN', '~', keep, id, unpack(feed, s, min(s + 2 * CHUNK - 1, nfeed)))
  end
  -- Feed listeners subscribe to the wake channel too: one PUBLISH serves both.
  if channel == '' then call('PUBLISH', prefix .. 'feedwake', '1') end
end
if channel ~= '' then call('PUBLISH', channel, message) end
local next = peekSize > 0 and head(peekSize, mine) or {}
if #next == 0 then return {} end
return call('HMGET', KEYS[3], unpack(next))
`;
