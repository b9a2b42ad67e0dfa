/**
 * @module
 * PostgreSQL maintenance: rebuild (every projection recomputed from the events table in one
 * transaction, through the `append` function in replay mode), pruning of old time buckets and
 * statistics buckets and of the feed's window.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import { replayChange } from "../replay.ts";
import { type Change, type Derive, type RebuildResult, RESOLUTIONS } from "../storage.ts";
import { append } from "./append.ts";
import { eventsOf } from "./reads.ts";
import { STAT_RESOLUTIONS } from "../stats.ts";
import { addIncrements, counter, Increments, type PgDb, transaction } from "./db.ts";

/** Jobs replayed per call by rebuild. */
const REBUILD_BATCH = 200;

/** Recomputes every projection from the logs (the storage contract's `rebuild`). */
export function rebuild(db: PgDb, derive: Derive): Promise<RebuildResult> {
  return transaction(db, async (q) => {
    const s = db.s;
    const tx = { ...db, q, inTransaction: true };
    const held = await q.query(
      `select id, lease_server, lease_until::text from ${s}.jobs where lease_server is not null`,
    );
    const kept = new Map<string, Lease>(
      held.rows.map((r) => [r.id, { serverId: r.lease_server, until: Number(r.lease_until) }]),
    );
    // Removed jobs left no log to count them from: their history is the pruned base.
    await q.query(`delete from ${s}.jobs`);
    await q.query(`delete from ${s}.uniques`);
    await q.query(`delete from ${s}.counters where name not like 'p:%' and name <> 't:pruned'`);
    await q.query(`delete from ${s}.buckets where resolution not like 'p:%'`);
    const { rows: idRows } = await q.query(`select distinct id from ${s}.events order by id`);
    const ids: string[] = idRows.map((r) => r.id);
    const skipped: string[] = [];
    const holders = new Map<string, Pick<JobRecord, "createdAt" | "id">>();
    for (let i = 0; i < ids.length; i += REBUILD_BATCH) {
      const batch = ids.slice(i, i + REBUILD_BATCH);
      const { rows } = await q.query(
        `select id, seq, body from ${s}.events where id = any($1::text[]) order by id, seq`,
        [batch],
      );
      const logs = new Map<string, { seq: number; body: string }[]>();
      for (const row of rows) logs.set(row.id, [...logs.get(row.id) ?? [], row]);
      const changes = batch.flatMap((id): Change[] => {
        let events: JobEvent[];
        try {
          events = logs.get(id)!.flatMap((row) => eventsOf(id, row));
        } catch {
          skipped.push(id);
          return [];
        }
        const change = replayChange(id, events, { derive, holders, kept });
        if (!change.length) skipped.push(id);
        return change;
      });
      await append(tx, changes, { replay: true });
    }
    if (holders.size) {
      await q.query(
        `insert into ${s}.uniques (key, holder) select * from unnest($1::text[], $2::text[])`,
        [[...holders.keys()], [...holders.values()].map((h) => h.id)],
      );
    }
    await addPrunedBase(q, s);
    await pruneBuckets(q, s, Date.now());
    return { jobs: ids.length - skipped.length, skipped };
  });
}

/**
 * Adds the pruned base (what removed jobs' logs added) to the rebuilt counters and buckets (the
 * statistics' `p:s:` rows among them).
 */
async function addPrunedBase(q: Parameters<typeof addIncrements>[0], s: string): Promise<void> {
  const inc = new Increments();
  const counters = await q.query(
    `select name, sum(n)::text as n from ${s}.counters where name like 'p:%' group by name`,
  );
  for (const row of counters.rows) inc.add(row.name.slice(2), Number(row.n));
  const buckets = await q.query(
    `select resolution, at::text, kind, sum(n)::text as n from ${s}.buckets
     where resolution like 'p:%' group by resolution, at, kind`,
  );
  for (const row of buckets.rows) {
    inc.bucket(row.resolution.slice(2), Number(row.at), row.kind, Number(row.n));
  }
  await addIncrements(q, s, inc);
}

/**
 * Drops time buckets and statistics buckets (the pruned base's too) older than their
 * retention; the statistics totals are kept for ever.
 */
export async function pruneBuckets(
  q: Parameters<typeof addIncrements>[0],
  s: string,
  now: number,
): Promise<void> {
  const kept: [string, number][] = [
    ...Object.entries(RESOLUTIONS).map(([r, { keepMs }]): [string, number] => [r, keepMs]),
    ...STAT_RESOLUTIONS.map((r): [string, number] => [counter.stat(r), RESOLUTIONS[r].keepMs]),
  ];
  for (const [resolution, keepMs] of kept) {
    await q.query(
      `delete from ${s}.buckets where resolution in ($1, $2) and at < $3`,
      [resolution, counter.pruned(resolution), now - keepMs],
    );
  }
}
