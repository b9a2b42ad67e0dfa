/**
 * @module
 * Reads of the Redis backend: records, logs, index pages (one page script call each),
 * counters, time buckets, leases and servers.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import type { State } from "../../lib/states.ts";
import { badCursor, decodeCursor, encodeCursor } from "../cursor.ts";
import { bucketStart, isFinal, zeroDurations, zeroStates, zeroTotals } from "../effects.ts";
import { CorruptRecordError } from "../errors.ts";
import { decodeCollapsed, decodeCollapsedRecord, decodeEvent } from "../log_codec.ts";
import {
  type BatchCounts,
  type Counts,
  type LeasePage,
  type ListQuery,
  type Page,
  type Resolution,
  RESOLUTIONS,
  type SearchQuery,
  type ServerInfo,
  type TimelinePoint,
} from "../storage.ts";
import { type StatPoint, statPoints, type StatQuery } from "../stats.ts";
import { parsedRecord } from "../stored_record.ts";
import { command, fields, type RedisDb, script } from "./context.ts";
import { READY_ID_AT, STATE_ID_AT } from "./keys.ts";

/** Job ids per HMGET. */
const HMGET_IDS = 1_000;

/** One range of an index (lexicographic unless `byScore`), with the records it names. */
export interface IndexRange {
  start: string;
  stop: string;
  limit: number;
  /** Where the job id starts in a member (1: the member is the id). */
  idAt: number;
  reverse?: boolean;
  byScore?: boolean;
  /** Where the records are (default: live jobs, then finished ones). */
  records?: [string, string];
}

/**
 * Job `id` from what the `jobs` hash (record JSON) or the `done` hash (a collapsed job, after its
 * position's line) holds for it; null when absent.
 */
export function recordOf(id: string, text: string | null): JobRecord | null {
  if (text === null || text.startsWith("{")) return parsedRecord(id, text);
  const at = text.indexOf("\n");
  if (at < 0) throw new CorruptRecordError(id, "the stored record is not a job record");
  return decodeCollapsedRecord(id, text.slice(at + 1));
}

/** A `done` field: its position, record and log. */
export function collapsed(
  id: string,
  text: string,
): { position: string; record: JobRecord; events: JobEvent[] } {
  const at = text.indexOf("\n");
  if (at < 0) throw new CorruptRecordError(id, "the stored record is not a job record");
  return { position: text.slice(0, at), ...decodeCollapsed(id, text.slice(at + 1)) };
}

/** The stored texts of `ids`: live records, then finished jobs for the rest (null: neither). */
export async function texts(db: RedisDb, ids: readonly string[]): Promise<(string | null)[]> {
  const found = await hmget(db, db.keys.jobs, ids);
  const missing = ids.filter((_, i) => found[i] === null);
  if (!missing.length) return found;
  const more = await hmget(db, db.keys.done, missing);
  let m = 0;
  return found.map((text) => text ?? more[m++]);
}

/** HMGETs of `ids` in `hash`, in bounded sizes. */
async function hmget(db: RedisDb, hash: string, ids: readonly string[]) {
  const parts: Promise<(string | null)[]>[] = [];
  for (let i = 0; i < ids.length; i += HMGET_IDS) {
    const some = ids.slice(i, i + HMGET_IDS);
    parts.push(command(db, "HMGET", hash, ...some) as Promise<(string | null)[]>);
  }
  return (await Promise.all(parts)).flat();
}

/** The record of job `id`, or null. */
export async function get(db: RedisDb, id: string): Promise<JobRecord | null> {
  return recordOf(id, (await texts(db, [id]))[0]);
}

/** The records of `ids` (null where absent), in HMGETs of a bounded size. */
export async function getMany(db: RedisDb, ids: readonly string[]): Promise<(JobRecord | null)[]> {
  return (await texts(db, ids)).map((text, i) => recordOf(ids[i], text));
}

/** The log of job `id`, oldest first. */
export async function events(db: RedisDb, id: string): Promise<JobEvent[]> {
  const replies = await db.conn.callMany([
    ["MULTI"],
    ["LRANGE", db.keys.log(id), "0", "-1"],
    ["HGET", db.keys.done, id],
    ["EXEC"],
  ]);
  const [lines, done] = replies[3] as [string[], string | null];
  if (!lines.length && done !== null) return collapsed(id, done).events;
  return lines.map((line, i) => decodeEvent(id, line, i));
}

/** One index range with the records it names (see the page script). */
export async function page(
  db: RedisDb,
  index: string,
  range: IndexRange,
): Promise<[string[], (JobRecord | null)[], (string | null)[]]> {
  const [members, texts] = await script(db, "page", [
    index,
    ...(range.records ?? [db.keys.jobs, db.keys.done]),
    range.byScore ? "BYSCORE" : "BYLEX",
    range.start,
    range.stop,
    range.reverse ? "1" : "0",
    range.limit,
    range.idAt,
  ]) as [string[], (string | null)[]];
  const ids = members.map((m) => m.slice(range.idAt - 1));
  return [members, texts.map((text, i) => recordOf(ids[i], text)), texts];
}

/** A page of a state index (newest first) or of a ready queue (claim order). */
export async function list(db: RedisDb, query: ListQuery): Promise<Page> {
  const limit = query.limit ?? 50;
  const after = query.cursor === undefined ? undefined : memberOf(query.cursor);
  const [members, records] = query.state !== undefined
    ? await page(db, db.keys.state(query.state), {
      start: after ? `(${after}` : "+",
      stop: "-",
      reverse: true,
      limit,
      idAt: STATE_ID_AT,
      records: isFinal(query.state) ? [db.keys.done, db.keys.jobs] : undefined,
    })
    : await page(db, db.keys.ready(query.queue!), {
      start: after ? `(${after}` : "-",
      stop: "+",
      limit,
      idAt: READY_ID_AT,
    });
  const result: Page = { jobs: records.filter((r): r is JobRecord => r !== null) };
  if (members.length === limit) result.cursor = encodeCursor([members[members.length - 1]]);
  return result;
}

/** A page of the jobs whose name starts with the query's prefix. */
export async function search(db: RedisDb, query: SearchQuery): Promise<Page> {
  const limit = query.limit ?? 50;
  const prefix = query.namePrefix;
  const after = query.cursor === undefined ? undefined : nameCursor(query.cursor);
  const from = after ? `(${after}` : `[${prefix}`;
  const members = await command(
    db,
    ...["ZRANGE", db.keys.names, from, `(${prefix}\xff`, "BYLEX", "LIMIT", 0, limit],
  ) as string[];
  const ids = members.map((m) => m.slice(m.lastIndexOf("\u0000") + 1));
  const records = ids.length ? await texts(db, ids) : [];
  const result: Page = {
    jobs: records.map((text, i) => recordOf(ids[i], text)).filter((r): r is JobRecord =>
      r !== null
    ),
  };
  if (members.length === limit) result.cursor = encodeCursor([members[members.length - 1]]);
  return result;
}

/** The gauges and totals, read together in one transaction. */
export async function counts(db: RedisDb): Promise<Counts> {
  const replies = await db.conn.callMany([
    ["MULTI"],
    ["HGETALL", db.keys.gauges],
    ["HGETALL", db.keys.totals],
    ["EXEC"],
  ]);
  const [gauges, totalsHash] = (replies[3] as string[][]).map(fields);
  const states = zeroStates();
  const queues: Counts["queues"] = {};
  for (const [field, n] of Object.entries(gauges)) {
    const [queue, state] = field.split("|") as [string, State];
    (queues[queue] ??= zeroStates())[state] = Number(n);
    states[state] += Number(n);
  }
  const totals = zeroTotals();
  for (const name of Object.keys(totals) as (keyof Counts["totals"])[]) {
    totals[name] = Number(totalsHash[name] ?? 0);
  }
  const durations = zeroDurations();
  durations.sumMs = Number(totalsHash.duration_ms ?? 0);
  for (const [field, n] of Object.entries(totalsHash)) {
    const bucket = /^duration:(\d+)$/.exec(field)?.[1];
    if (bucket !== undefined) durations.counts[Number(bucket)] = Number(n);
  }
  return { states, queues, totals, durations, retrying: Number(totalsHash.retrying ?? 0) };
}

/** The time buckets from `from` to `to`, zero where none was counted. */
export async function timeline(
  db: RedisDb,
  { resolution, from, to }: { resolution: Resolution; from: number; to: number },
): Promise<TimelinePoint[]> {
  const points: TimelinePoint[] = [];
  for (let at = bucketStart(resolution, from); at <= to; at += RESOLUTIONS[resolution].ms) {
    points.push({ at, succeeded: 0, failed: 0 });
  }
  const replies = await Promise.all(
    points.map((point) =>
      command(db, "HMGET", db.keys.bucket(resolution, point.at), "succeeded", "failed")
    ),
  ) as (string | null)[][];
  replies.forEach(([succeeded, failed], i) => {
    points[i].succeeded = Number(succeeded ?? 0);
    points[i].failed = Number(failed ?? 0);
  });
  return points;
}

/** The statistics counters of `query` (one HGETALL per bucket of its range). */
export async function stats(db: RedisDb, query: StatQuery): Promise<StatPoint[]> {
  const { resolution } = query;
  const starts: number[] = [];
  if (resolution === "total") starts.push(0);
  else {
    // Keys past their keep have expired: the range is cut to what can still be there.
    const { ms, keepMs } = RESOLUTIONS[resolution];
    const to = query.to ?? Date.now() + ms;
    const from = Math.max(query.from ?? 0, to - keepMs - ms);
    for (let at = bucketStart(resolution, from); at <= to; at += ms) starts.push(at);
  }
  const replies = await Promise.all(
    starts.map((at) => command(db, "HGETALL", db.keys.stat(resolution, at))),
  );
  return statPoints(
    starts.map((at, i) => [at, Object.entries(fields(replies[i])).map(([f, n]) => [f, Number(n)])]),
    query,
  );
}

/** Scheduled jobs due, or Processing jobs whose lease expired, before `before`. */
export async function due(
  db: RedisDb,
  query: { state: "Scheduled" | "Processing"; before: number; limit: number },
): Promise<JobRecord[]> {
  const index = query.state === "Scheduled" ? db.keys.due : db.keys.leases;
  const [, records] = await page(db, index, {
    start: "-inf",
    stop: String(query.before),
    limit: query.limit,
    idAt: 1,
    byScore: true,
  });
  return records.filter((r): r is JobRecord => r !== null);
}

/** The lease of a job: its holder and expiry, read together in one transaction. */
export async function lease(db: RedisDb, id: string): Promise<Lease | null> {
  const replies = await db.conn.callMany([
    ["MULTI"],
    ["HGET", db.keys.lease, id],
    ["ZSCORE", db.keys.leases, id],
    ["EXEC"],
  ]);
  const [serverId, until] = replies[3] as (string | null)[];
  return serverId === null || until === null ? null : { serverId, until: Number(until) };
}

/** One HSCAN page of the leases (see the leases script); the cursor wraps HSCAN's. */
export async function leases(
  db: RedisDb,
  query: { cursor?: string; limit?: number },
): Promise<LeasePage> {
  let scan = "0";
  if (query.cursor !== undefined) {
    const key = decodeCursor(query.cursor);
    if (key.length !== 1 || typeof key[0] !== "string" || !/^[1-9]\d*$/.test(key[0])) {
      throw badCursor(query.cursor);
    }
    scan = key[0];
  }
  const [next, flat] = await script(db, "leases", [
    db.keys.lease,
    db.keys.leases,
    scan,
    query.limit ?? 500,
  ]) as [string, string[]];
  const page: LeasePage = { leases: [] };
  for (let i = 0; i < flat.length; i += 3) {
    page.leases.push({ id: flat[i], serverId: flat[i + 1], until: Number(flat[i + 2]) });
  }
  if (next !== "0") page.cursor = encodeCursor([next]);
  return page;
}

/** Servers whose records have not expired, on the Redis server's clock (as they were written). */
export async function servers(db: RedisDb): Promise<ServerInfo[]> {
  const [seconds, micros] = await command(db, "TIME") as [string, string];
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const [, infos] = await script(db, "page", [
    db.keys.serverExpiry,
    db.keys.servers,
    db.keys.servers,
    "BYSCORE",
    `(${now}`,
    "+inf",
    "0",
    10_000,
    1,
  ]) as [string[], (string | null)[]];
  return infos.flatMap((json) => json === null ? [] : [JSON.parse(json) as ServerInfo]);
}

/** The finished members of batch `id`, by outcome. */
export async function batchCounts(db: RedisDb, id: string): Promise<BatchCounts> {
  const hash = fields(await command(db, "HGETALL", db.keys.batchCount(id)));
  return {
    succeeded: Number(hash.succeeded ?? 0),
    failed: Number(hash.failed ?? 0),
    deleted: Number(hash.deleted ?? 0),
  };
}

/** The index member a cursor made by `list` points after. */
function memberOf(cursor: string): string {
  const key = decodeCursor(cursor);
  if (key.length !== 1 || typeof key[0] !== "string" || !/^\d{16}/.test(key[0])) {
    throw badCursor(cursor);
  }
  return key[0];
}

/** The name-index member a cursor made by `search` points after. */
function nameCursor(cursor: string): string {
  const key = decodeCursor(cursor);
  if (key.length !== 1 || typeof key[0] !== "string" || key[0].split("\u0000").length !== 3) {
    throw badCursor(cursor);
  }
  return key[0];
}
