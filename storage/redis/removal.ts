/**
 * @module
 * Retention on Redis: finished jobs oldest first, and their removal for good (one call of the
 * remove script per `remove`).
 */

import type { JobRecord } from "../../lib/job.ts";
import { badCursor, decodeCursor, encodeCursor } from "../cursor.ts";
import { removable } from "../effects.ts";
import type { FinishedQuery, Page, Removal, RemoveResult } from "../storage.ts";
import { nameMember } from "./append_call.ts";
import { command, type RedisDb, script } from "./context.ts";
import { placeOf, STATE_ID_AT, stateMember } from "./keys.ts";
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
  for (const record of records) {
    const place = placeOf(record);
    args.push(
      record.id,
      place.position,
      record.state,
      place.stateMember,
      record.queue,
      place.readyMember,
      nameMember(record.name, record.createdAt, record.id),
      `${record.queue}|${record.state}`,
    );
  }
  const removed = await script(db, "remove", args) as string[];
  const gone = new Set(removed);
  for (const record of records) if (!gone.has(record.id)) refused.push(record.id);
  return { removed, refused };
}
