/**
 * @module
 * Retention on Redis: finished jobs oldest first, and their removal for good (one call of the
 * remove script per `remove`).
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import { badCursor, decodeCursor, encodeCursor } from "../cursor.ts";
import { historyOf, keptBuckets, removable } from "../effects.ts";
import {
  type FinishedQuery,
  type Page,
  type Removal,
  type RemoveResult,
  RESOLUTIONS,
} from "../storage.ts";
import { DURATION_FIELDS, gaugeField, nameMember } from "./append_call.ts";
import { command, type RedisDb, script } from "./context.ts";
import { type Keys, placeOf, STATE_ID_AT, stateMember } from "./keys.ts";
import { page } from "./reads.ts";
import { parsedRecord } from "../stored_record.ts";

/** Most removals per call: one script call removes them all. */
export const MAX_REMOVALS = 500;

/** Jobs in a final state, oldest first, entered at or before `before`. */
export async function finished(db: RedisDb, query: FinishedQuery): Promise<Page> {
  const limit = query.limit ?? 100;
  let after: string | undefined;
  if (query.cursor !== undefined) {
    const key = decodeCursor(query.cursor);
    if (key.length !== 1 || typeof key[0] !== "string" || !/^\d{16}/.test(key[0])) {
      throw badCursor(query.cursor);
    }
    after = key[0];
  }
  const [members, records] = await page(db, db.keys.state(query.state), {
    start: after ? `(${after}` : "-",
    // Members are the time of entering the state, then the id: all of `before` sort below this.
    stop: `(${stateMember(Math.floor(query.before) + 1, "")}`,
    limit,
    idAt: STATE_ID_AT,
  });
  const result: Page = { jobs: records.filter((r): r is JobRecord => r !== null) };
  if (members.length === limit) result.cursor = encodeCursor([members[members.length - 1]]);
  return result;
}

/** The records of `ids`, null where absent or unreadable (a corrupt record is refused, not fatal). */
async function readable(db: RedisDb, ids: string[]): Promise<(JobRecord | null)[]> {
  if (!ids.length) return [];
  const found = await command(db, "HMGET", db.keys.jobs, ...ids) as (string | null)[];
  return found.map((json, i) => {
    try {
      return parsedRecord(ids[i], json);
    } catch {
      return null;
    }
  });
}

/** Removes finished jobs (the storage contract's `remove`): one script call. */
export async function remove(db: RedisDb, removals: readonly Removal[]): Promise<RemoveResult> {
  const read = await readable(db, removals.map((r) => r.id));
  const { records, refused } = removable(removals, read, MAX_REMOVALS);
  if (!records.length) return { removed: [], refused };
  const k = db.keys;
  // The logs are read here, so that their history is counted by the same `effectsOf` as
  // every append and rebuild (not a second version in Lua); the script's position check
  // proves each log is still the one read (a log only grows with its position's version).
  const logs = await Promise.all(
    records.map((r) => command(db, "LRANGE", k.log(r.id), 0, -1) as Promise<string[]>),
  );
  const args: (string | number)[] = [
    k.pos,
    k.jobs,
    k.gauges,
    k.totals,
    k.names,
    k.due,
    k.lease,
    k.leases,
    k.prefix,
    records.length,
  ];
  const now = Date.now();
  records.forEach((record, i) => {
    const place = placeOf(record);
    args.push(
      record.id,
      place.position,
      record.state,
      place.stateMember,
      record.queue,
      place.readyMember,
      nameMember(record.name, record.createdAt, record.id),
      gaugeField(record.queue, record.state),
    );
    const events = logs[i].map((json) => JSON.parse(json) as JobEvent);
    const base = prunedBase(k, historyOf(record, events), now);
    args.push(base.length / 4, ...base);
  });
  const removed = await script(db, "remove", args) as string[];
  const gone = new Set(removed);
  for (const record of records) if (!gone.has(record.id)) refused.push(record.id);
  return { removed, refused };
}

/**
 * A removed job's share of the pruned base, as the remove script's increments (hash key, field,
 * increment, expiry): the fields its log added to `totals`, buckets and batch counts. Buckets
 * past their keep are left out; the others expire with the buckets.
 */
function prunedBase(k: Keys, history: ReturnType<typeof historyOf>, now: number): string[] {
  const adds = new Map<string, [string, string, number, string]>();
  const add = (key: string, field: string, increment: number, expiry = "") => {
    const name = `${key}\n${field}`;
    const op = adds.get(name);
    if (op) op[2] += increment;
    else adds.set(name, [key, field, increment, expiry]);
  };
  for (const total of history.totals) add(k.prunedTotals, total, 1);
  for (const { bucket, ms } of history.durations) {
    add(k.prunedTotals, DURATION_FIELDS[bucket], 1);
    add(k.prunedTotals, "duration_ms", Math.max(0, Math.round(ms)));
  }
  for (const hit of keptBuckets(history.buckets, now)) {
    const expiry = String(hit.at + RESOLUTIONS[hit.resolution].keepMs);
    add(k.prunedBucket(hit.resolution, hit.at), hit.kind, 1, expiry);
  }
  for (const { kind, delta } of history.batch?.deltas ?? []) {
    add(k.prunedBatchCount(history.batch!.id), kind, delta);
  }
  return [...adds.values()].flatMap(([key, field, n, expiry]) => [key, field, String(n), expiry]);
}
