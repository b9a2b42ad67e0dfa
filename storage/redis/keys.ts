/**
 * @module
 * The Redis key layout and the index member encodings that the Lua scripts rely on.
 *
 * Every key starts with `{<prefix>}:` (default `{taskflow}:`). The braces make the prefix a hash
 * tag: on a Redis Cluster every key of a storage hashes to one slot, so each script and
 * transaction touches one node (`cluster.ts`). A plain server has the same layout: one code path.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `jobs` | hash | job id → record JSON, for jobs not in a final state |
 * | `pos` | hash | job id → position: `version:hash`, the hash of the job's placement in the indexes (see `placementHash`), for jobs not in a final state |
 * | `log:<id>` | list | the job's events (one `log_codec.ts` line each), oldest first — the source of truth, for jobs not in a final state |
 * | `done` | hash | job id → a job in a final state, collapsed: its position, then its record and whole log as `log_codec.ts` encodes them (`encodeCollapsed`), one line each |
 * | `feed` / `feedseq` | stream / string | the event feed: one entry per append call, id `0-<n>` (n dense: XADD's next sequence; from `feedseq` on Redis 6.2), job id → `<version its events follow> <how many>` (the events are read back from the logs); capped at about 256 KiB |
 * | `state:<State>` | zset (lex) | `stateMember` per job in that state |
 * | `ready:<queue>` | zset (lex) | `readyMember` per Enqueued job of the queue (claim order) |
 * | `due` | zset | Scheduled job ids by run time |
 * | `lease` / `leases` | hash / zset | Processing job id → holding server / lease expiry |
 * | `gauges` / `totals` | hash | `queue\|state` → jobs / all-time totals (`pruned`: jobs removed) |
 * | `bucket:<resolution>:<at>` | hash | succeeded/failed in that time bucket (expires) |
 * | `stat:<resolution>:<at>` (expires), `stat:total` | hash | statistics counters (`stats.ts`) of that bucket, and all-time; `pruned:stat:...` their pruned base |
 * | `pruned:totals`, `pruned:bucket:<resolution>:<at>` (expires), `pruned:batchcount:<id>` | hash | the pruned base: what removed jobs' logs added to `totals` (durations too), buckets and batch counts; rebuild starts from it |
 * | `servers` / `serverexp` | hash / zset | server id → info JSON / record expiry |
 * | `recurring` | hash | recurring id → record JSON |
 * | `settings` | hash | setting id → record JSON (the retention policy in force) |
 * | `wake` | channel | published when a write makes jobs Enqueued or Scheduled (the record of a single Enqueued job, else "1") |
 * | `feedwake` | channel | published when an append adds an entry to `feed` and publishes no `wake` (feed listeners subscribe to both) |
 * | `unique` | hash | unique key → the job holding it (set by the create commit that claims it) |
 *
 * Index members are fixed-width strings ordered byte-wise (all scores 0), so paging by an
 * exclusive bound is exact even when thousands of jobs share one timestamp. `state:Processing`
 * and `leases` also hold one keeper member each (`PROCESSING_KEEPER`, `LEASES_KEEPER` in
 * `append_call.ts`) that keeps them skiplists; it names no job and is never due. The `lease` hash
 * holds a keeper field (`LEASE_KEEPER`) that keeps it a hashtable; it names no job.
 */

import type { JobRecord } from "../../lib/job.ts";
import { dueEntry, isRetry, readyEntry } from "../effects.ts";

/** Width of a time in index members: ms since epoch, zero-padded. */
const TIME_WIDTH = 16;
const MAX_TIME = 10 ** TIME_WIDTH - 1;

/** Characters a member spends before the job id, per index. */
export const STATE_ID_AT = TIME_WIDTH + 1;
/** Characters a ready member spends before the job id (+1: Lua strings are 1-based). */
export const READY_ID_AT = 4 + TIME_WIDTH + 1;

function time(at: number): string {
  const whole = Math.min(Math.max(Math.floor(at), 0), MAX_TIME);
  // Times from 2001 to 2286 have 13 digits: the common case skips padStart.
  if (whole >= 1e12 && whole < 1e13) return `000${whole}`;
  return String(whole).padStart(TIME_WIDTH, "0");
}

/** Member of a job in its per-state index: time of entering the state, then the id. */
export function stateMember(at: number, id: string): string {
  return time(at) + id;
}

/** Member of an Enqueued job in its queue's ready index: priority (highest first), time, id. */
export function readyMember(rank: number, at: number, id: string): string {
  return String(Math.min(Math.max(rank + 1000, 0), 9999)).padStart(4, "0") + time(at) + id;
}

/**
 * Where a job sits in the indexes. Its `position` (version, then a hash of what places the job
 * in the indexes; see {@link placementHash}) is what the append script compares: a commit
 * applies only to the job it was built on.
 */
export interface Place {
  position: string;
  /** Member in `state:<state>`. */
  stateMember: string;
  /** Member in `ready:<queue>` ("" unless Enqueued). */
  readyMember: string;
  /** Score in `due` ("" unless Scheduled). */
  dueScore: string;
}

/** The index members of `record` and its position. */
export function placeOf(record: JobRecord): Place {
  const readyAt = readyEntry(record), dueAt = dueEntry(record);
  return {
    position: `${record.version}:${placementHash(record, dueAt?.runAt ?? -1)}`,
    stateMember: stateMember(record.stateAt, record.id),
    readyMember: readyAt ? readyMember(readyAt.rank, readyAt.at, record.id) : "",
    dueScore: dueAt ? String(dueAt.runAt) : "",
  };
}

/**
 * A position is short: the version, then a 30-bit hash of the job's placement (state, queue,
 * time in the state, priority, due time, retry mark, batch: what its index members are made
 * of). Short because Redis's Lua hashes every byte of a script's arguments and replies again;
 * mixed field by field, without building a string, because this runs four times per job.
 */
export function placementHash(record: JobRecord, dueAt: number): number {
  let h = mixText(0, record.state);
  h = mixText(h, record.queue);
  h = mixNumber(h, record.stateAt);
  h = mixNumber(h, record.priority);
  h = mixNumber(h, dueAt);
  h = mixNumber(h, isRetry(record) ? 1 : 0);
  h = mixText(h, record.batchId ?? "");
  // 30 bits: a small integer, which V8 turns into text fastest.
  return h & 0x3fffffff;
}

/** Mixes the UTF-16 code units of `text`, then a separator, into hash `h` (31·h + unit). */
function mixText(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  return (Math.imul(h, 31) + 0x7c) | 0;
}

/** Mixes a number (its low and high 32 bits), then a separator, into hash `h`. */
function mixNumber(h: number, n: number): number {
  h = (Math.imul(h, 31) + ((n % 4294967296) | 0)) | 0;
  h = (Math.imul(h, 31) + (Math.floor(n / 4294967296) | 0)) | 0;
  return (Math.imul(h, 31) + 0x7c) | 0;
}

/** What every key of `prefix` starts with: the prefix as a hash tag, then a colon. */
export function keyPrefix(prefix: string): string {
  return `{${prefix}}:`;
}

/** The names of every key of one prefix. */
export function keysOf(prefix: string) {
  const p = keyPrefix(prefix);
  return {
    prefix: p,
    jobs: `${p}jobs`,
    done: `${p}done`,
    pos: `${p}pos`,
    log: (id: string) => `${p}log:${id}`,
    feed: `${p}feed`,
    state: (state: string) => `${p}state:${state}`,
    ready: (queue: string) => `${p}ready:${queue}`,
    due: `${p}due`,
    lease: `${p}lease`,
    leases: `${p}leases`,
    gauges: `${p}gauges`,
    totals: `${p}totals`,
    bucket: (resolution: string, at: number) => `${p}bucket:${resolution}:${at}`,
    stat: (resolution: string, at: number) =>
      `${p}stat:${resolution === "total" ? "total" : `${resolution}:${at}`}`,
    servers: `${p}servers`,
    serverExpiry: `${p}serverexp`,
    recurring: `${p}recurring`,
    settings: `${p}settings`,
    wake: `${p}wake`,
    feedWake: `${p}feedwake`,
    names: `${p}names`,
    paused: `${p}paused`,
    batches: `${p}batches`,
    flows: `${p}flows`,
    batchCount: (id: string) => `${p}batchcount:${id}`,
    prunedTotals: `${p}pruned:totals`,
    prunedBucket: (resolution: string, at: number) => `${p}pruned:bucket:${resolution}:${at}`,
    prunedBatchCount: (id: string) => `${p}pruned:batchcount:${id}`,
    unique: `${p}unique`,
  };
}

/** The key names of one prefix. */
export type Keys = ReturnType<typeof keysOf>;

/** Escapes glob characters for `SCAN MATCH`. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
