/**
 * @module
 * The append script (every job transition, group-committed) and the encoder of its ARGV: lib
 * computes every index move, counter and time bucket of a call in TypeScript (the same
 * `effectsOf` as the other backends), so the script only compares and writes.
 */

import type { JobRecord } from "../../../lib/job.ts";
import { type Commit, RESOLUTIONS } from "../../storage.ts";
import { DURATION_BUCKETS_MS, effectsOf } from "../../effects.ts";
import { type Keys, placeOf } from "../keys.ts";

/** Applies a call's changes all together or not at all; see the header. */
export const APPEND = `--[[
append: applies a batch of changes (group commit), all of them or none.
Per commit it compares the job's stored position with the position the commit was built on
(the position holds the version and a hash of everything that places the job in the indexes;
one stored in full by an earlier version is compared on its version). When a
change fails that check, or (in a claim) names a job that is not among the first H ready jobs,
nothing is written and every failed change's job ids come back: lib sends the rest again.
Otherwise it RPUSHes each commit's events to the job's log, adds one entry to the capped events
stream (field: job id, value: its events as a JSON array), stores the new positions, and runs
the operations lib computed for the batch (index moves, record writes, leases, counters, time
buckets; already merged per key, so each is one multi-member command).

KEYS[1] pos hash (id -> position)   KEYS[2] events stream (capped)   KEYS[3] jobs hash
ARGV[1] key prefix with its colon, e.g. "taskflow:" (log:<id> keys)
ARGV[2] channel to PUBLISH a wake-up on after writing ("" for none)
ARGV[3] number Q of ready-index keys of a claim (0 for a plain append); ARGV[4..3+Q] the keys
then, only when Q > 0 (a claim), three more:
  head size H: a commit applies only if its job is among the first H ready jobs of those keys
    (claim order: key order, then the ready index)
  peek size P: how many ready jobs (after the writes) to return, with their records (P is at
    most lib's MAX_CLAIM, 500: one HMGET)
  where the job id starts in a ready member
then: number of changes; then per change: number of commits; then per commit:
  id, position it was built on ("" when the job must not exist), new position,
  number of events, events (JSON)...
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
local byte = string.byte
local sub, find, concat, min = string.sub, string.find, table.concat, math.min
local prefix, channel = ARGV[1], ARGV[2]
local CHUNK = 500
local nq = tonumber(ARGV[3])
local queues = {}
for q = 1, nq do queues[q] = ARGV[3 + q] end
local headSize, peekSize, idAt, i = 0, 0, 0, 4 + nq
if nq > 0 then
  headSize, peekSize, idAt = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
end

local function head(limit)
  local ids = {}
  for _, key in ipairs(queues) do
    if #ids >= limit then break end
    local members = call('ZRANGE', key, '-', '+', 'BYLEX', 'LIMIT', 0, limit - #ids)
    for _, member in ipairs(members) do ids[#ids + 1] = sub(member, idAt) end
  end
  return ids
end

-- A position stored in full by an earlier version ("version|placement") is compared on its
-- version alone (its members were made as today's are); any other position as it is.
local function short(position, built)
  local bar = find(position, '|', 1, true)
  if not bar then return position end
  local colon = find(built, ':', 1, true)
  if colon and sub(position, 1, bar - 1) == sub(built, 1, colon - 1) then return built end
  return position
end

-- First pass: where each commit's part starts (at[k]) and how many events it has (nev[k]);
-- change c holds commits first[c] .. first[c + 1] - 1; every job's stored position comes with
-- one HMGET per 500 ids. Counts are mostly one digit: those are read with string.byte, cheaper
-- than tonumber's strtod (here and in the operations).
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
    local n = ARGV[j + 3]
    n = #n == 1 and byte(n) - 48 or tonumber(n)
    ncommits = ncommits + 1
    at[ncommits], nev[ncommits] = j, n
    j = j + 4 + n
  end
  i = j
end
first[nchanges + 1] = ncommits + 1
local ops = i
for s = 1, nids, CHUNK do
  local last = min(s + CHUNK - 1, nids)
  local found = call('HMGET', KEYS[1], unpack(ids, s, last))
  for k = 1, #found do pos[ids[s + k - 1]] = found[k] end
end

local atHead = nil
if nq > 0 and headSize > 0 then
  atHead = {}
  for _, id in ipairs(head(headSize)) do atHead[id] = true end
end

-- Every change is checked; any conflict refuses the whole call, and each change's conflicting
-- job ids come back (an empty list for a change that would apply).
local results, refused, none = {}, false, {}
for c = 1, nchanges do
  local conflicts = nil
  for k = first[c], first[c + 1] - 1 do
    local a = at[k]
    local id, built = ARGV[a], ARGV[a + 1]
    local stored = pos[id]
    if stored and built ~= '' and stored ~= built then stored = short(stored, built) end
    if (built == '' and stored) or (built ~= '' and stored ~= built) or (atHead and not atHead[id]) then
      conflicts = conflicts or {}
      conflicts[#conflicts + 1] = id
    end
  end
  if conflicts then
    refused = true
  else
    for k = first[c], first[c + 1] - 1 do pos[ARGV[at[k]]] = ARGV[at[k] + 2] end
  end
  results[c] = conflicts or none
end
if refused then return { results } end

local posPairs, feed, npairs, nfeed = {}, {}, 0, 0
for k = 1, ncommits do
  local a, n = at[k], nev[k]
  local id = ARGV[a]
  posPairs[npairs + 1], posPairs[npairs + 2] = id, ARGV[a + 2]
  npairs = npairs + 2
  if n > 0 then
    local firstEvent, last = a + 4, a + 3 + n
    local log = prefix .. 'log:' .. id
    for s = firstEvent, last, CHUNK do
      call('RPUSH', log, unpack(ARGV, s, min(s + CHUNK - 1, last)))
    end
    feed[nfeed + 1] = id
    feed[nfeed + 2] = '[' .. (n == 1 and ARGV[firstEvent] or concat(ARGV, ',', firstEvent, last)) .. ']'
    nfeed = nfeed + 2
  end
end
for s = 1, npairs, 2 * CHUNK do
  call('HSET', KEYS[1], unpack(posPairs, s, min(s + 2 * CHUNK - 1, npairs)))
end

local o = ops + 1
for _ = 1, tonumber(ARGV[ops]) do
  local command, key, n = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  n = #n == 1 and byte(n) - 48 or tonumber(n)
  if command == 'BUCKET' then
    if call('HINCRBY', key, ARGV[o + 3], ARGV[o + 4]) == tonumber(ARGV[o + 4]) then
      call('PEXPIREAT', key, ARGV[o + 5])
    end
  else
    call(command, key, unpack(ARGV, o + 3, o + 2 + n))
  end
  o = o + 3 + n
end

for s = 1, nfeed, 2 * CHUNK do
  call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', unpack(feed, s, min(s + 2 * CHUNK - 1, nfeed)))
end
if channel ~= '' then call('PUBLISH', channel, '1') end
local next = peekSize > 0 and head(peekSize) or {}
if #next == 0 then return {} end
return call('HMGET', KEYS[3], unpack(next))
`;

/** Most arguments of one operation (the script passes them to `unpack`). */
const OP_ARGS = 1_000;

/**
 * Redis stores a small sorted set as a listpack, where every insert scans and shifts the whole
 * set: inserting a claim batch of 50 into the Processing index and the lease set cost more
 * than all other index moves together (callgrind: zzlInsert 11% of redis-server's
 * instructions at concurrency 50). A member longer than `zset-max-listpack-value` (64 bytes)
 * makes Redis use a skiplist instead, and the set is never empty, so it stays one. Measured
 * side by side: Redis CPU per job at c=50 53 → 43 µs. The keepers are invisible: the
 * Processing keeper names no record (listings skip it) and the lease keeper is due never.
 */
export const PROCESSING_KEEPER = "0".repeat(16) +
  "~ keeps this sorted set a skiplist (see storage/lua/append.ts) ~";
/** The lease set's keeper (score +inf), see {@link PROCESSING_KEEPER}. */
export const LEASES_KEEPER = "~ keeps this sorted set a skiplist (see storage/lua/append.ts) ~~~";
/**
 * The same for the lease hash (job id → holder): a small hash is a listpack too, where every
 * HSET scans all fields (callgrind: lpFind under hashTypeSet 4.6% of redis-server's
 * instructions at concurrency 50). A field longer than `hash-max-listpack-value` (64 bytes)
 * makes it a hashtable for good. The keeper names no job, and no lease set member names it.
 */
export const LEASE_KEEPER =
  "~ keeps this hash a hashtable, not a listpack (see storage/lua/append.ts) ~";

/** A bucket hit the script counts with HINCRBY, setting the expiry when the field is new. */
interface BucketOp {
  increment: number;
  expiry: number;
}

/**
 * The writes of one append call, merged per key as if every commit of the call applies (the
 * script refuses the whole call otherwise): per commit its ARGV part, and for the call the
 * operations. A job appears in at most one change of a call ({@link AppendCall.holds}), so
 * no two operations touch the same member and their order does not matter.
 */
export class AppendCall {
  /** Per-commit ARGV parts, in order (see the script's header). */
  readonly commits: string[] = [];
  /** Changes in this call. */
  changes = 0;
  /** Characters of ARGV so far (a bound on the call's size). */
  chars = 0;
  /** Whether a commit makes a job Enqueued or Scheduled (workers are woken). */
  wake = false;
  #keys: Keys;
  #replay: boolean;
  #ids = new Set<string>();
  /** Per key: members to add (score, member, ...) and to remove. */
  #zsets = new Map<string, { add: string[]; remove: string[] }>();
  /** Per hash: fields to set (field, value, ...) and to delete. */
  #hashes = new Map<string, { add: string[]; remove: string[] }>();
  #counters = new Map<string, Map<string, number>>();
  #buckets = new Map<string, Map<string, BucketOp>>();
  #bucketKeys = new Map<string, Map<number, string>>();

  /** A call on the keys of one prefix; `replay` (rebuild) writes no log, stream or wake-up. */
  constructor(keys: Keys, replay = false) {
    this.#keys = keys;
    this.#replay = replay;
  }

  /** True when one of `commits`' jobs is already in this call (it must go in the next one). */
  holds(commits: readonly Commit[]): boolean {
    return commits.some((commit) => this.#ids.has(commit.id));
  }

  /** Adds a change: its commits, each built on `before` (null for a new job). */
  add(commits: readonly { commit: Commit; before: JobRecord | null }[]): void {
    this.changes++;
    this.commits.push(String(commits.length));
    for (const { commit, before } of commits) this.#commit(commit, before);
  }

  /** Number of ARGV entries so far (commit parts; operations are a fraction of it). */
  get args(): number {
    return this.commits.length;
  }

  /** Adds one commit (checked by the caller with `checkCommit`). */
  #commit(commit: Commit, before: JobRecord | null): void {
    const k = this.#keys;
    const { id, record } = commit;
    this.#ids.add(id);
    const from = before ? placeOf(before) : undefined, to = placeOf(record);
    const events = this.#replay ? [] : commit.events.map((event) => JSON.stringify(event));
    const built = from?.position ?? "";
    this.commits.push(id, built, to.position, String(events.length));
    for (const event of events) {
      this.commits.push(event);
      this.chars += event.length;
    }
    const json = JSON.stringify(record);
    this.chars += id.length + built.length + to.position.length + json.length;
    this.#room(this.#hashes, k.jobs).add.push(id, json);

    const effects = effectsOf(before, commit);
    if (from && effects.removeState) {
      this.#room(this.#zsets, k.state(before!.state)).remove.push(from.stateMember);
      if (from.readyMember) {
        this.#room(this.#zsets, k.ready(before!.queue)).remove.push(from.readyMember);
      }
      if (from.dueScore) this.#room(this.#zsets, k.due).remove.push(id);
    }
    if (effects.addState) {
      this.#room(this.#zsets, k.state(record.state)).add.push("0", to.stateMember);
      if (to.readyMember) {
        this.#room(this.#zsets, k.ready(record.queue)).add.push("0", to.readyMember);
      }
      if (to.dueScore) this.#room(this.#zsets, k.due).add.push(to.dueScore, id);
      if (!this.#replay && (record.state === "Enqueued" || record.state === "Scheduled")) {
        this.wake = true;
      }
    }
    if (effects.addName) {
      const { name, createdAt } = effects.addName;
      this.#room(this.#zsets, k.names).add.push("0", nameMember(name, createdAt, id));
    }
    if (commit.lease) {
      this.#room(this.#hashes, k.lease).add.push(id, commit.lease.serverId);
      this.#room(this.#zsets, k.leases).add.push(String(commit.lease.until), id);
    } else if (effects.dropLease) {
      this.#room(this.#hashes, k.lease).remove.push(id);
      this.#room(this.#zsets, k.leases).remove.push(id);
    }
    for (const { queue, state, delta } of effects.gauges) {
      this.#count(k.gauges, gaugeField(queue, state), delta);
    }
    for (const total of effects.totals) this.#count(k.totals, total, 1);
    if (effects.retrying) this.#count(k.totals, "retrying", effects.retrying);
    for (const { bucket, ms } of effects.durations) {
      this.#count(k.totals, DURATION_FIELDS[bucket], 1);
      this.#count(k.totals, "duration_ms", Math.max(0, Math.round(ms)));
    }
    if (effects.batch) {
      for (const { kind, delta } of effects.batch.deltas) {
        this.#count(k.batchCount(effects.batch.id), kind, delta);
      }
    }
    for (const hit of effects.buckets) {
      // Keyed by resolution and start first: the key's text is made once per bucket and call.
      let starts = this.#bucketKeys.get(hit.resolution);
      if (!starts) this.#bucketKeys.set(hit.resolution, starts = new Map());
      let key = starts.get(hit.at);
      if (key === undefined) starts.set(hit.at, key = k.bucket(hit.resolution, hit.at));
      let fields = this.#buckets.get(key);
      if (!fields) this.#buckets.set(key, fields = new Map());
      const op = fields.get(hit.kind);
      if (op) op.increment++;
      else {
        fields.set(hit.kind, {
          increment: 1,
          expiry: hit.at + RESOLUTIONS[hit.resolution].keepMs,
        });
      }
    }
  }

  #room(
    rooms: Map<string, { add: string[]; remove: string[] }>,
    key: string,
  ): { add: string[]; remove: string[] } {
    let room = rooms.get(key);
    if (!room) rooms.set(key, room = { add: [], remove: [] });
    return room;
  }

  #count(key: string, field: string, delta: number): void {
    let fields = this.#counters.get(key);
    if (!fields) this.#counters.set(key, fields = new Map());
    fields.set(field, (fields.get(field) ?? 0) + delta);
  }

  /** The keeper (score, member) of a small, busy sorted set, added first with every insert. */
  #keeper(key: string): [string, string] | undefined {
    if (key === this.#keys.leases) return ["+inf", LEASES_KEEPER];
    if (key === this.#keys.state("Processing")) return ["0", PROCESSING_KEEPER];
    return undefined;
  }

  /** The operations section of ARGV (see the script's header). */
  operations(): string[] {
    const out: string[] = [""];
    let count = 0;
    const op = (command: string, key: string, args: string[], width: number) => {
      const most = OP_ARGS - (OP_ARGS % width);
      for (let s = 0; s < args.length; s += most) {
        const part = args.length <= most ? args : args.slice(s, s + most);
        out.push(command, key, String(part.length));
        for (const arg of part) out.push(arg);
        count++;
      }
    };
    for (const [key, { add, remove }] of this.#hashes) {
      op("HDEL", key, remove, 1);
      const keeper = add.length && key === this.#keys.lease ? [LEASE_KEEPER, ""] : [];
      op("HSET", key, keeper.length ? [...keeper, ...add] : add, 2);
    }
    for (const [key, { add, remove }] of this.#zsets) {
      op("ZREM", key, remove, 1);
      const keeper = add.length ? this.#keeper(key) : undefined;
      op("ZADD", key, keeper ? [...keeper, ...add] : add, 2);
    }
    for (const [key, fields] of this.#counters) {
      for (const [field, delta] of fields) {
        if (delta !== 0) op("HINCRBY", key, [field, String(delta)], 2);
      }
    }
    for (const [key, fields] of this.#buckets) {
      for (const [field, { increment, expiry }] of fields) {
        op("BUCKET", key, [field, String(increment), String(expiry)], 3);
      }
    }
    out[0] = String(count);
    return out;
  }
}

/** The totals field of each duration bucket. */
const DURATION_FIELDS = Array.from(
  { length: DURATION_BUCKETS_MS.length + 1 },
  (_, bucket) => `duration:${bucket}`,
);

/** Gauge fields (`queue|state`) by queue and state, made once (bounded: cleared when large). */
const gaugeFields = new Map<string, Map<string, string>>();

function gaugeField(queue: string, state: string): string {
  let states = gaugeFields.get(queue);
  if (!states) {
    if (gaugeFields.size >= 1_000) gaugeFields.clear();
    gaugeFields.set(queue, states = new Map());
  }
  let field = states.get(state);
  if (field === undefined) states.set(state, field = `${queue}|${state}`);
  return field;
}

/** Longest timestamp we order by, so that (MAX - createdAt) sorts newest first as text. */
const MAX_TIME = 9_999_999_999_999;

/** A name-index member: sorts by name, then newest first, then id (all in byte order). */
export function nameMember(name: string, createdAt: number, id: string): string {
  return `${name}\u0000${String(MAX_TIME - createdAt).padStart(13, "0")}\u0000${id}`;
}
