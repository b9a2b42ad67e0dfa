/**
 * @module
 * Reads of the PostgreSQL backend: records, logs, index pages (keyset pagination on the jobs
 * table's indexes), counters summed over their slots, time buckets, statistics, leases and
 * servers.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import type { State } from "../../lib/states.ts";
import { badCursor, type CursorKey, decodeCursor, encodeCursor } from "../cursor.ts";
import { bucketStart, zeroDurations, zeroStates, zeroTotals } from "../effects.ts";
import { CorruptRecordError } from "../errors.ts";
import {
  type BatchCounts,
  type Counts,
  type FinishedQuery,
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
import { counter, type PgDb } from "./db.ts";

/** The database clock in ms since epoch, as SQL. */
export const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/** The records of `ids` (null where absent), in order. */
export async function getMany(db: PgDb, ids: readonly string[]): Promise<(JobRecord | null)[]> {
  if (!ids.length) return [];
  const { rows } = await db.q.query(
    `select id, record from ${db.s}.jobs where id = any($1::text[])`,
    [ids],
  );
  const byId = new Map<string, string>(rows.map((row) => [row.id, row.record]));
  return ids.map((id) => parsedRecord(id, byId.get(id) ?? null));
}

/** A job's log, oldest first. */
export async function events(db: PgDb, id: string): Promise<JobEvent[]> {
  const { rows } = await db.q.query(
    `select seq, body from ${db.s}.events where id = $1 order by seq`,
    [id],
  );
  return rows.flatMap((row) => eventsOf(id, row));
}

/** The events of one row of a job's log (a commit's events, from seq `row.seq`). */
export function eventsOf(id: string, row: { seq: number; body: string }): JobEvent[] {
  let events: unknown;
  try {
    events = JSON.parse(row.body);
  } catch {
    throw new CorruptRecordError(id, `events from ${row.seq} are not JSON`);
  }
  if (!Array.isArray(events)) {
    throw new CorruptRecordError(id, `events from ${row.seq} are no list`);
  }
  return events as JobEvent[];
}

/** Records of rows (`id`, `record`), skipping none: a broken one throws. */
function records(rows: { id: string; record: string }[]): JobRecord[] {
  return rows.map((row) => parsedRecord(row.id, row.record)!);
}

/** A cursor's key checked against the kinds of its parts (`n` number, `s` string). */
function keyOf(cursor: string, kinds: string): CursorKey {
  const key = decodeCursor(cursor);
  const ok = key.length === kinds.length &&
    key.every((k, i) => typeof k === (kinds[i] === "n" ? "number" : "string"));
  if (!ok) throw badCursor(cursor);
  return key;
}

/** A page and its cursor (the last row's key) when it is full. */
function pageOf(rows: any[], limit: number, key: (row: any) => CursorKey): Page {
  const page: Page = { jobs: records(rows) };
  if (rows.length === limit && limit > 0) page.cursor = encodeCursor(key(rows[rows.length - 1]));
  return page;
}

/** A page of a state (newest first) or of a queue's ready jobs (claim order). */
export async function list(db: PgDb, query: ListQuery): Promise<Page> {
  const limit = query.limit ?? 50;
  if (query.state !== undefined) {
    const after = query.cursor === undefined ? null : keyOf(query.cursor, "ns");
    const { rows } = await db.q.query(
      `select id, record, state_at from ${db.s}.jobs where state = $1
         and ($2::bigint is null or (state_at, id) < ($2, $3::text))
       order by state_at desc, id desc limit $4`,
      [query.state, after?.[0] ?? null, after?.[1] ?? null, limit],
    );
    return pageOf(rows, limit, (r) => [Number(r.state_at), r.id]);
  }
  const after = query.cursor === undefined ? null : keyOf(query.cursor, "nns");
  const { rows } = await db.q.query(
    `select id, record, rank, state_at from ${db.s}.jobs where state = 'Enqueued' and queue = $1
       and ($2::int is null or (rank, state_at, id) > ($2, $3::bigint, $4::text))
     order by rank, state_at, id limit $5`,
    [query.queue, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, limit],
  );
  return pageOf(rows, limit, (r) => [r.rank, Number(r.state_at), r.id]);
}

/** Jobs in a final state, oldest first, entered at or before `before`. */
export async function finished(db: PgDb, query: FinishedQuery): Promise<Page> {
  const limit = query.limit ?? 100;
  const after = query.cursor === undefined ? null : keyOf(query.cursor, "ns");
  const { rows } = await db.q.query(
    `select id, record, state_at from ${db.s}.jobs where state = $1 and state_at <= $2
       and ($3::bigint is null or (state_at, id) > ($3, $4::text))
     order by state_at, id limit $5`,
    [query.state, Math.floor(query.before), after?.[0] ?? null, after?.[1] ?? null, limit],
  );
  return pageOf(rows, limit, (r) => [Number(r.state_at), r.id]);
}

/** Jobs whose name starts with the prefix, by name, newest first within a name. */
export async function search(db: PgDb, query: SearchQuery): Promise<Page> {
  const limit = query.limit ?? 50;
  const after = query.cursor === undefined ? null : keyOf(query.cursor, "sns");
  const { rows } = await db.q.query(
    `select id, record, name, created_at from ${db.s}.jobs
     where name >= $1 and starts_with(name, $1)
       and ($2::text is null or name > $2
         or (name = $2 and (created_at < $3::bigint or (created_at = $3 and id > $4::text))))
     order by name, created_at desc, id limit $5`,
    [query.namePrefix, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, limit],
  );
  return pageOf(rows, limit, (r) => [r.name, Number(r.created_at), r.id]);
}

/** Every counter, summed over its slots (the pruned base left out). */
export async function counts(db: PgDb): Promise<Counts> {
  const { rows } = await db.q.query(
    `select name, sum(n)::text as n from ${db.s}.counters
     where name like 'g:%' or name like 't:%' or name like 'd:%' group by name`,
  );
  const states = zeroStates(), queues: Counts["queues"] = {}, totals = zeroTotals();
  const durations = zeroDurations();
  let retrying = 0;
  for (const row of rows) {
    const name = row.name as string, n = Number(row.n);
    if (name.startsWith("g:")) {
      const at = name.indexOf(":", 2);
      const state = name.slice(2, at) as State, queue = name.slice(at + 1);
      (queues[queue] ??= zeroStates())[state] = n;
      states[state] += n;
    } else if (name.startsWith("d:")) durations.counts[Number(name.slice(2))] = n;
    else if (name === "t:retrying") retrying = n;
    else if (name === "t:duration_ms") durations.sumMs = n;
    else if (name.slice(2) in totals) totals[name.slice(2) as keyof Counts["totals"]] = n;
  }
  return { states, queues, totals, durations, retrying };
}

/** The time buckets from `from` to `to`, zero where none was counted. */
export async function timeline(
  db: PgDb,
  resolution: Resolution,
  from: number,
  to: number,
): Promise<TimelinePoint[]> {
  const points: TimelinePoint[] = [];
  const byAt = new Map<number, TimelinePoint>();
  for (let at = bucketStart(resolution, from); at <= to; at += RESOLUTIONS[resolution].ms) {
    const point = { at, succeeded: 0, failed: 0 };
    points.push(point);
    byAt.set(at, point);
  }
  if (!points.length) return points;
  const { rows } = await db.q.query(
    `select at::text, kind, sum(n)::text as n from ${db.s}.buckets
     where resolution = $1 and at >= $2 and at <= $3 group by at, kind`,
    [resolution, points[0].at, points[points.length - 1].at],
  );
  for (const row of rows) {
    const point = byAt.get(Number(row.at));
    if (point && (row.kind === "succeeded" || row.kind === "failed")) {
      point[row.kind as "succeeded" | "failed"] = Number(row.n);
    }
  }
  return points;
}

/** The statistics counters of `query`, summed over their slots. */
export async function stats(db: PgDb, query: StatQuery): Promise<StatPoint[]> {
  const total = query.resolution === "total";
  const { rows } = await db.q.query(
    `select at::text, kind, sum(n)::text as n from ${db.s}.buckets
     where resolution = $1 and at >= $2::bigint and ($3::bigint is null or at <= $3)
       and starts_with(kind, $4) group by at, kind`,
    [
      counter.stat(query.resolution),
      total ? 0 : Math.max(0, Math.ceil(query.from ?? 0)),
      total ? 0 : Number.isFinite(query.to) ? Math.floor(query.to!) : null,
      query.prefix ?? "",
    ],
  );
  const byAt = new Map<number, [string, number][]>();
  for (const row of rows) {
    const at = Number(row.at);
    let fields = byAt.get(at);
    if (!fields) byAt.set(at, fields = []);
    fields.push([row.kind, Number(row.n)]);
  }
  return statPoints(byAt, query);
}

/** Scheduled jobs due, or Processing jobs whose lease expired, at `before`. */
export async function due(
  db: PgDb,
  query: { state: "Scheduled" | "Processing"; before: number; limit: number },
): Promise<JobRecord[]> {
  const { rows } = query.state === "Scheduled"
    ? await db.q.query(
      `select id, record from ${db.s}.jobs where state = 'Scheduled' and run_at <= $1
       order by run_at, id limit $2`,
      [query.before, query.limit],
    )
    : await db.q.query(
      `select id, record from ${db.s}.jobs where lease_server is not null and lease_until <= $1
       order by lease_until, id limit $2`,
      [query.before, query.limit],
    );
  return records(rows);
}

/** The lease of a Processing job. */
export async function lease(db: PgDb, id: string): Promise<Lease | null> {
  const { rows } = await db.q.query(
    `select lease_server, lease_until::text from ${db.s}.jobs
     where id = $1 and lease_server is not null`,
    [id],
  );
  return rows.length
    ? { serverId: rows[0].lease_server, until: Number(rows[0].lease_until) }
    : null;
}

/** One page of every lease, by job id. */
export async function leases(
  db: PgDb,
  query: { cursor?: string; limit?: number },
): Promise<LeasePage> {
  const limit = query.limit ?? 500;
  const after = query.cursor === undefined ? "" : keyOf(query.cursor, "s")[0] as string;
  const { rows } = await db.q.query(
    `select id, lease_server, lease_until::text from ${db.s}.jobs
     where lease_server is not null and id > $1 order by id limit $2`,
    [after, limit],
  );
  const page: LeasePage = {
    leases: rows.map((r) => ({ id: r.id, serverId: r.lease_server, until: Number(r.lease_until) })),
  };
  if (rows.length === limit) page.cursor = encodeCursor([rows[rows.length - 1].id]);
  return page;
}

/** Servers whose record has not expired on the database's clock. */
export async function servers(db: PgDb): Promise<ServerInfo[]> {
  const { rows } = await db.q.query(
    `select info from ${db.s}.servers where expires_at > ${NOW_MS} order by id`,
  );
  return rows.map((row) => JSON.parse(row.info) as ServerInfo);
}

/** The finished members of batch `id`, by outcome. */
export async function batchCounts(db: PgDb, id: string): Promise<BatchCounts> {
  const kinds = ["succeeded", "failed", "deleted"] as const;
  const { rows } = await db.q.query(
    `select name, sum(n)::text as n from ${db.s}.counters where name = any($1::text[]) group by name`,
    [kinds.map((kind) => counter.batch(id, kind))],
  );
  const found = new Map<string, number>(rows.map((row) => [row.name, Number(row.n)]));
  return {
    succeeded: found.get(counter.batch(id, "succeeded")) ?? 0,
    failed: found.get(counter.batch(id, "failed")) ?? 0,
    deleted: found.get(counter.batch(id, "deleted")) ?? 0,
  };
}
