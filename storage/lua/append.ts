/**
 * @module
 * The append script (every job transition, group-committed) and the encoder of its ARGV.
 */

import { type Commit, RESOLUTIONS } from "../storage.ts";
import { checkCommit, effectsOf } from "../effects.ts";
import { positionOf } from "./layout.ts";

/** Applies changes with compare-and-set on every job's version; see the header. */
export const APPEND = `--[[
append: applies a batch of changes (group commit). A change applies all its commits or none.
Per commit: compare-and-set on the job's version, RPUSH its events to the job's log, add
them to this call's entry of the capped events stream (field: job id, value: its events as a
JSON array; one XADD per call, 500 jobs per entry at most), store the record and position, move index entries, adjust
gauges, totals and time buckets, set or drop the lease. Index and counter writes are batched
(one multi-member ZADD/ZREM/HSET per key) at the end of the call.

KEYS[1] jobs hash (id -> record JSON)      KEYS[5] leases zset (id by lease expiry)
KEYS[2] pos hash (id -> position)          KEYS[6] gauges hash ("queue|state" -> n)
KEYS[3] due zset (id by runAt)             KEYS[7] totals hash (name -> n)
KEYS[4] lease hash (id -> server id)       KEYS[8] events stream (capped)
ARGV[1] key prefix with its colon, e.g. "taskflow:" (state:, ready:, log:, bucket:, wake)
ARGV[2] "1" to replay (rebuild): no log append, no stream entry, no wake-up
ARGV[3] number of queues Q for a claim (0 for a plain append); ARGV[4..3+Q] their names
ARGV[4+Q] head size H: with Q > 0, a commit applies only if its job is among the first H ready
  jobs of those queues (claim order: queue order, then the ready index)
ARGV[5+Q] peek size P: how many ready jobs (after the changes) to return, with their records
ARGV[6+Q] where the job id starts in a ready member
ARGV[7+Q] number of changes; then per change: number of commits; then per commit:
  id, expected version ("0": must not exist), new position
  ("version|state|queue|stateMember|readyMember|dueScore|retry|batchId"), record JSON,
  lease server id ("" when none), lease expiry,
  number of events, events (JSON)..., number of totals, totals...,
  number of bucket hits, then per hit: "resolution:at", "succeeded"|"failed", expiry (ms),
  number of name-index members, members... (ZADD to the "names" zset, score 0, by lex)
  (a total is a field name, counted once, or "field=delta")
Returns: { results, records }: results has one array per change, empty when applied, else the
ids that differed (version, or not at the head); records are the first P ready jobs' records.
]]
local prefix = ARGV[1]
local replay = ARGV[2] == '1'
local CHUNK = 500
local pos, dirty, posOrder, records = {}, {}, {}, {}
local zops, zkeys = {}, {}
local leases, leaseOrder = {}, {}
local gauges, totals, buckets, bucketOrder = {}, {}, {}, {}
local wake = false
local feed = {}
local nq = tonumber(ARGV[3])
local queues = {}
for q = 1, nq do queues[q] = prefix .. 'ready:' .. ARGV[3 + q] end
local headSize, peekSize, idAt = tonumber(ARGV[4 + nq]), tonumber(ARGV[5 + nq]), tonumber(ARGV[6 + nq])

local function head(limit)
  local ids = {}
  for _, key in ipairs(queues) do
    if #ids >= limit then break end
    local members = redis.call('ZRANGE', key, '-', '+', 'BYLEX', 'LIMIT', 0, limit - #ids)
    for _, member in ipairs(members) do ids[#ids + 1] = string.sub(member, idAt) end
  end
  return ids
end

local atHead = nil
if nq > 0 and headSize > 0 then
  atHead = {}
  for _, id in ipairs(head(headSize)) do atHead[id] = true end
end

local function version(p)
  if not p then return '0' end
  return string.match(p, '^(%d+)|')
end

local ENDS = { Succeeded = 'succeeded', Failed = 'failed', Deleted = 'deleted' }

local function split(p)
  return string.match(p, '^%d+|(([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*))$')
end

local function zop(key, member, score)
  local ops = zops[key]
  if not ops then
    ops = {}
    zops[key] = ops
    zkeys[#zkeys + 1] = key
  end
  ops[member] = score
end

local function count(t, field, delta)
  t[field] = (t[field] or 0) + delta
end

local function setLease(id, value)
  if leases[id] == nil then leaseOrder[#leaseOrder + 1] = id end
  leases[id] = value
end

local function apply(a)
  local id, newPos, record = ARGV[a], ARGV[a + 2], ARGV[a + 3]
  local old = pos[id]
  if not dirty[id] then
    dirty[id] = true
    posOrder[#posOrder + 1] = id
  end
  pos[id] = newPos
  records[id] = record
  local n = tonumber(ARGV[a + 6])
  local first, last = a + 7, a + 6 + n
  if not replay and n > 0 then
    local log = prefix .. 'log:' .. id
    for s = first, last, CHUNK do
      redis.call('RPUSH', log, unpack(ARGV, s, math.min(s + CHUNK - 1, last)))
    end
    feed[#feed + 1] = id
    feed[#feed + 1] = '[' .. (n == 1 and ARGV[first] or table.concat(ARGV, ',', first, last)) .. ']'
  end
  local rest, state, queue, sm, rm, ds, rt, batch = split(newPos)
  local oldRest, oldState, oldQueue, oldSm, oldRm, oldDs, oldRt, oldBatch
  if old then oldRest, oldState, oldQueue, oldSm, oldRm, oldDs, oldRt, oldBatch = split(old) end
  if rest ~= oldRest then
    if oldBatch and oldBatch ~= '' and ENDS[oldState] then
      redis.call('HINCRBY', prefix .. 'batchcount:' .. oldBatch, ENDS[oldState], -1)
    end
    if batch ~= '' and ENDS[state] then
      redis.call('HINCRBY', prefix .. 'batchcount:' .. batch, ENDS[state], 1)
    end
    if (rt == 'r') ~= (oldRt == 'r') then count(totals, 'retrying', rt == 'r' and 1 or -1) end
    if old then
      zop(prefix .. 'state:' .. oldState, oldSm, false)
      if oldRm ~= '' then zop(prefix .. 'ready:' .. oldQueue, oldRm, false) end
      if oldDs ~= '' then zop(KEYS[3], id, false) end
      count(gauges, oldQueue .. '|' .. oldState, -1)
      if oldState == 'Processing' and state ~= 'Processing' then setLease(id, false) end
    end
    zop(prefix .. 'state:' .. state, sm, 0)
    if rm ~= '' then zop(prefix .. 'ready:' .. queue, rm, 0) end
    if ds ~= '' then zop(KEYS[3], id, ds) end
    count(gauges, queue .. '|' .. state, 1)
    if state == 'Enqueued' or state == 'Scheduled' then wake = true end
  end
  if ARGV[a + 4] ~= '' then setLease(id, { ARGV[a + 4], ARGV[a + 5] }) end
  local t = last + 1
  for k = t + 1, t + tonumber(ARGV[t]) do
    local field, delta = string.match(ARGV[k], '^(.-)=(%-?%d+)$')
    if field then count(totals, field, tonumber(delta)) else count(totals, ARGV[k], 1) end
  end
  local b = t + tonumber(ARGV[t]) + 1
  for k = b + 1, b + 3 * tonumber(ARGV[b]), 3 do
    local key = prefix .. 'bucket:' .. ARGV[k]
    local hit = buckets[key]
    if not hit then
      hit = { exp = ARGV[k + 2] }
      buckets[key] = hit
      bucketOrder[#bucketOrder + 1] = key
    end
    count(hit, ARGV[k + 1], 1)
  end
  local nm = b + 1 + 3 * tonumber(ARGV[b])
  for k = nm + 1, nm + tonumber(ARGV[nm]) do zop(prefix .. 'names', ARGV[k], 0) end
end

-- First pass: where each commit starts, and every job's position in one HMGET per 500 ids.
local changes, ids = {}, {}
local i = 8 + nq
for c = 1, tonumber(ARGV[7 + nq]) do
  local starts = {}
  local j = i + 1
  for k = 1, tonumber(ARGV[i]) do
    starts[k] = j
    if pos[ARGV[j]] == nil then
      pos[ARGV[j]] = false
      ids[#ids + 1] = ARGV[j]
    end
    j = j + 6
    j = j + 1 + tonumber(ARGV[j])
    j = j + 1 + tonumber(ARGV[j])
    j = j + 1 + 3 * tonumber(ARGV[j])
    j = j + 1 + tonumber(ARGV[j])
  end
  changes[c] = starts
  i = j
end
for s = 1, #ids, CHUNK do
  local last = math.min(s + CHUNK - 1, #ids)
  local found = redis.call('HMGET', KEYS[2], unpack(ids, s, last))
  for k = 1, #found do pos[ids[s + k - 1]] = found[k] end
end

local results = {}
for c, starts in ipairs(changes) do
  local conflicts = {}
  for _, a in ipairs(starts) do
    local id = ARGV[a]
    if version(pos[id]) ~= ARGV[a + 1] or (atHead and not atHead[id]) then
      conflicts[#conflicts + 1] = id
    end
  end
  if #conflicts == 0 then
    for _, a in ipairs(starts) do apply(a) end
  end
  results[c] = conflicts
end

local function flush(cmd, key, list)
  for s = 1, #list, 2 * CHUNK do
    redis.call(cmd, key, unpack(list, s, math.min(s + 2 * CHUNK - 1, #list)))
  end
end

local jobPairs, posPairs = {}, {}
for _, id in ipairs(posOrder) do
  jobPairs[#jobPairs + 1] = id
  jobPairs[#jobPairs + 1] = records[id]
  posPairs[#posPairs + 1] = id
  posPairs[#posPairs + 1] = pos[id]
end
flush('HSET', KEYS[1], jobPairs)
flush('HSET', KEYS[2], posPairs)

for _, key in ipairs(zkeys) do
  local adds, removes = {}, {}
  for member, score in pairs(zops[key]) do
    if score then
      adds[#adds + 1] = score
      adds[#adds + 1] = member
    else
      removes[#removes + 1] = member
    end
  end
  flush('ZREM', key, removes)
  flush('ZADD', key, adds)
end

local holders, expiries, dropped = {}, {}, {}
for _, id in ipairs(leaseOrder) do
  local lease = leases[id]
  if lease then
    holders[#holders + 1] = id
    holders[#holders + 1] = lease[1]
    expiries[#expiries + 1] = lease[2]
    expiries[#expiries + 1] = id
  else
    dropped[#dropped + 1] = id
  end
end
flush('HDEL', KEYS[4], dropped)
flush('ZREM', KEYS[5], dropped)
flush('HSET', KEYS[4], holders)
flush('ZADD', KEYS[5], expiries)

for field, delta in pairs(gauges) do
  if delta ~= 0 then redis.call('HINCRBY', KEYS[6], field, delta) end
end
for field, delta in pairs(totals) do redis.call('HINCRBY', KEYS[7], field, delta) end
for _, key in ipairs(bucketOrder) do
  local hit = buckets[key]
  local created = false
  for _, kind in ipairs({ 'succeeded', 'failed' }) do
    if hit[kind] then
      -- A counter equal to this call's increment is new: only then can the key be new too.
      created = redis.call('HINCRBY', key, kind, hit[kind]) == hit[kind] or created
    end
  end
  if created then redis.call('PEXPIREAT', key, hit.exp) end
end
for s = 1, #feed, 2 * CHUNK do
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', 10000, '*', unpack(feed, s, math.min(s + 2 * CHUNK - 1, #feed)))
end
if wake and not replay then redis.call('PUBLISH', prefix .. 'wake', '1') end
local peeked = {}
if peekSize > 0 then
  local ids = head(peekSize)
  for s = 1, #ids, CHUNK do
    local part = redis.call('HMGET', KEYS[1], unpack(ids, s, math.min(s + CHUNK - 1, #ids)))
    for k = 1, #part do peeked[s + k - 1] = part[k] end
  end
end
return { results, peeked }
`;

/** Arguments of one commit for {@link APPEND}, and their size in characters. */
export function commitArgs(commit: Commit, out: string[]): number {
  checkCommit(commit);
  const { totals: counted, buckets, addName, durations } = effectsOf(null, commit);
  const totals: string[] = [...counted];
  for (const { bucket, ms } of durations) {
    totals.push(`duration:${bucket}`, `duration_ms=${Math.max(0, Math.round(ms))}`);
  }
  const record = JSON.stringify(commit.record);
  const start = out.length;
  out.push(
    commit.id,
    String(commit.expect),
    positionOf(commit.record),
    record,
    commit.lease?.serverId ?? "",
    commit.lease ? String(commit.lease.until) : "",
    String(commit.events.length),
  );
  for (const event of commit.events) out.push(JSON.stringify(event));
  out.push(String(totals.length), ...totals, String(buckets.length));
  for (const hit of buckets) {
    out.push(
      `${hit.resolution}:${hit.at}`,
      hit.kind,
      String(hit.at + RESOLUTIONS[hit.resolution].keepMs),
    );
  }
  if (addName) out.push("1", nameMember(addName.name, addName.createdAt, addName.id));
  else out.push("0");
  let chars = 0;
  for (let i = start; i < out.length; i++) chars += out[i].length;
  return chars;
}

/** Longest timestamp we order by, so that (MAX - createdAt) sorts newest first as text. */
const MAX_TIME = 9_999_999_999_999;

/** A name-index member: sorts by name, then newest first, then id (all in byte order). */
export function nameMember(name: string, createdAt: number, id: string): string {
  return `${name}\u0000${String(MAX_TIME - createdAt).padStart(13, "0")}\u0000${id}`;
}
