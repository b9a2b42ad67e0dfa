/**
 * @module
 * Retention on PostgreSQL: removing finished jobs for good in one transaction per call, their
 * rows, logs and unique keys deleted, gauges lowered and their history kept as the pruned base
 * (the `p:` counters, time buckets and statistics buckets) that rebuild starts from.
 */

import type { JobEvent } from "../../lib/events.ts";
import { historyOf, removable } from "../effects.ts";
import { keptStats } from "../stat_hits.ts";
import { parsedRecord } from "../stored_record.ts";
import { eventsOf } from "./reads.ts";
import { type Removal, type RemoveResult, RESOLUTIONS } from "../storage.ts";
import { addIncrements, counter, Increments, type PgDb, retrying, transaction } from "./db.ts";

/** Most removals per call (one transaction holds them all). */
export const MAX_REMOVALS = 1_000;

/** Removes finished jobs (the storage contract's `remove`). */
export async function remove(db: PgDb, removals: readonly Removal[]): Promise<RemoveResult> {
  // Too many: the same typed error as every backend, before anything is read.
  if (removals.length > MAX_REMOVALS) removable(removals, [], MAX_REMOVALS);
  return await retrying(db, () =>
    transaction(db, async (q) => {
      const ids = removals.map((r) => r.id);
      const { rows } = await q.query(
        `select id, record from ${db.s}.jobs where id = any($1::text[]) order by id for update`,
        [ids],
      );
      const byId = new Map<string, string>(rows.map((row) => [row.id, row.record]));
      const read = ids.map((id) => {
        try {
          return parsedRecord(id, byId.get(id) ?? null);
        } catch {
          return null;
        }
      });
      const { records, refused } = removable(removals, read, MAX_REMOVALS);
      if (!records.length) return { removed: [], refused };
      const gone = records.map((r) => r.id);
      const logs = await q.query(
        `select id, seq, body from ${db.s}.events where id = any($1::text[]) order by id, seq`,
        [gone],
      );
      const logOf = new Map<string, JobEvent[]>();
      for (const row of logs.rows) {
        const list = logOf.get(row.id) ?? [];
        list.push(...eventsOf(row.id, row));
        logOf.set(row.id, list);
      }
      const inc = new Increments();
      const now = Date.now();
      const keys: string[] = [], holders: string[] = [];
      for (const record of records) {
        inc.add(counter.gauge(record.queue, record.state), -1);
        const key = record.options.unique?.key;
        if (key !== undefined) keys.push(key), holders.push(record.id);
        const history = historyOf(record, logOf.get(record.id) ?? []);
        for (const total of history.totals) inc.add(counter.pruned(counter.total(total)), 1);
        for (const { bucket, ms } of history.durations) {
          inc.add(counter.pruned(counter.duration(bucket)), 1);
          inc.add(counter.pruned(counter.total("duration_ms")), Math.max(0, Math.round(ms)));
        }
        if (history.batch) {
          for (const { kind, delta } of history.batch.deltas) {
            inc.add(counter.pruned(counter.batch(history.batch.id, kind)), delta);
          }
        }
        for (const hit of history.buckets) {
          if (hit.at < now - RESOLUTIONS[hit.resolution].keepMs) continue;
          inc.bucket(counter.pruned(hit.resolution), hit.at, hit.kind);
        }
        for (const hit of keptStats(history.stats, now)) inc.stat(hit, counter.pruned(""));
      }
      inc.add(counter.total("pruned"), records.length);
      await q.query(`delete from ${db.s}.jobs where id = any($1::text[])`, [gone]);
      await q.query(`delete from ${db.s}.events where id = any($1::text[])`, [gone]);
      if (keys.length) {
        // A key goes only while the removed job still holds it.
        await q.query(
          `delete from ${db.s}.uniques u using unnest($1::text[], $2::text[]) x(key, holder)
           where u.key = x.key and u.holder = x.holder`,
          [keys, holders],
        );
      }
      await addIncrements(q, db.s, inc);
      return { removed: gone, refused };
    }));
}
