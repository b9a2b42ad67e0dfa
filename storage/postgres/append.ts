/**
 * @module
 * The PostgreSQL append path: changes are packed into calls of the `append` function (one
 * statement, one transaction), each job at most once per call. The function checks every
 * version, unique key, setting and cap under row and advisory locks and then writes the events,
 * the job rows, counters, time buckets, statistics counters and the feed entry, or writes nothing and names the
 * changes it refuses; the others go again in the next call.
 */

import { beforesOf } from "../befores.ts";
import type { JobRecord } from "../../lib/job.ts";
import { checkChange, DURATION_BUCKETS_MS, effectsOf } from "../effects.ts";
import { encodeRefs, refsOf } from "../feed.ts";
import type { AppendResult, Change, Commit } from "../storage.ts";
import { counter, Increments, type PgDb, retrying } from "./db.ts";
import { getMany } from "./reads.ts";

/** Most changes per call, so that a large enqueueMany is several transactions of bounded size. */
const CALL_CHANGES = 1_000;

/** Options of {@link append}. */
export interface AppendOptions {
  /** Rebuild: no event, feed entry or wake-up is written. */
  replay?: boolean;
  /** The records the commits were built on, when the caller read them (a claim). */
  befores?: Map<Commit, JobRecord | null>;
}

/** Appends `changes` (see the storage contract); returns the result of each change. */
export async function append(
  db: PgDb,
  changes: readonly Change[],
  options: AppendOptions = {},
): Promise<AppendResult[]> {
  changes.forEach(checkChange);
  const results: AppendResult[] = new Array(changes.length);
  const befores = options.befores ?? await readBefores(db, changes, results);
  let pending = changes.flatMap((_, i) => results[i] ? [] : [i]);
  while (pending.length) {
    const again: number[] = [];
    for (const call of pack(changes, pending)) {
      const payload = payloadOf(changes, call, befores, options.replay ?? false);
      const { rows } = await retrying(
        db,
        () =>
          db.q.query(`select ${db.s}.append($1::jsonb, $2::json, $3, $4) as r`, [
            payload.rest,
            payload.commits,
            payload.records,
            payload.events,
          ]),
      );
      const refused = rows[0].r as Record<string, string[]> | null;
      call.forEach((index, c) => {
        const conflicts = refused?.[c];
        if (!refused) results[index] = { ok: true };
        else if (conflicts?.[0] === "") {
          results[index] = { ok: false, conflicts: [], limited: true };
        } else if (conflicts) results[index] = { ok: false, conflicts };
        else again.push(index);
      });
    }
    pending = again;
  }
  return results;
}

/** Splits the pending changes into calls where each job (and unique key) appears once. */
function pack(changes: readonly Change[], pending: readonly number[]): number[][] {
  const calls: { ids: Set<string>; indexes: number[] }[] = [];
  for (const index of pending) {
    // A unique key is claimed at most once per call too (the first claim wins, the next is
    // checked against it in the following call).
    const ids = changes[index].commits.flatMap((c) =>
      c.unique ? [c.id, `\0${c.unique.key}`] : [c.id]
    );
    let call = calls.find((c) =>
      c.indexes.length < CALL_CHANGES && !ids.some((id) => c.ids.has(id))
    );
    if (!call) calls.push(call = { ids: new Set(), indexes: [] });
    for (const id of ids) call.ids.add(id);
    call.indexes.push(index);
  }
  return calls.map((c) => c.indexes);
}

/**
 * The `append` function's arguments: the commits' columns (json), their records and event lists
 * (JSON text, one line per commit, stored as sent), and the rest (jsonb).
 */
export interface Payload {
  commits: string;
  records: string;
  events: string | null;
  rest: string;
}

/** The `append` function's arguments for the changes `call` (indexes into `changes`). */
export function payloadOf(
  changes: readonly Change[],
  call: readonly number[],
  befores: Map<Commit, JobRecord | null>,
  replay: boolean,
): Payload {
  const commits: unknown[] = [], uniques: unknown[] = [];
  const records: string[] = [], events: string[] = [];
  const caps: unknown[] = [], settings: unknown[] = [];
  const inc = new Increments();
  let wake = false, old = false, fresh = false;
  call.forEach((index, c) => {
    const change = changes[index];
    if (change.cap) {
      const gauge = counter.gauge(change.cap.queue, "Processing");
      caps.push({ c, gauge, max: change.cap.max, n: change.commits.length });
    }
    if (change.setting) {
      const { record, expect } = change.setting;
      settings.push({
        c,
        id: record.id,
        expect,
        version: record.version,
        body: JSON.stringify(record),
      });
    }
    for (const commit of change.commits) {
      const { id, record } = commit;
      if (commit.unique && !replay) {
        uniques.push({ c, key: commit.unique.key, holder: commit.unique.holder, id });
      }
      if (commit.expect > 0) old = true;
      else fresh = true;
      commits.push({
        c,
        id,
        expect: commit.expect,
        version: record.version,
        state: record.state,
        queue: record.queue,
        state_at: record.stateAt,
        rank: -record.priority,
        run_at: record.state === "Scheduled" ? record.runAt ?? record.stateAt : null,
        name: record.name,
        created_at: record.createdAt,
        lease_server: commit.lease?.serverId ?? null,
        lease_until: commit.lease?.until ?? null,
      });
      records.push(JSON.stringify(record));
      // One log row per commit (its events as a JSON array, keyed by the first one's seq): a
      // new job is one row of its log, not two.
      if (!replay) events.push(JSON.stringify(commit.events));
      const effects = effectsOf(befores.get(commit) ?? null, commit);
      if (effects.addState && (record.state === "Enqueued" || record.state === "Scheduled")) {
        wake = true;
      }
      for (const { queue, state, delta } of effects.gauges) {
        inc.add(counter.gauge(queue, state), delta);
      }
      for (const total of effects.totals) inc.add(counter.total(total), 1);
      if (effects.retrying) inc.add(counter.total("retrying"), effects.retrying);
      for (const { bucket, ms } of effects.durations) {
        inc.add(counter.duration(bucket), 1);
        inc.add(counter.total("duration_ms"), Math.max(0, Math.round(ms)));
      }
      if (effects.batch) {
        for (const { kind, delta } of effects.batch.deltas) {
          inc.add(counter.batch(effects.batch.id, kind), delta);
        }
      }
      for (const hit of effects.buckets) inc.bucket(hit.resolution, hit.at, hit.kind);
      for (const hit of effects.stats) inc.stat(hit);
    }
  });
  const refs = replay ? null : encodeRefs(refsOf(call.flatMap((i) => changes[i].commits)));
  return {
    commits: JSON.stringify(commits),
    records: records.join("\n"),
    events: replay ? null : events.join("\n"),
    // Empty parts are left out: the function skips their statements.
    rest: JSON.stringify({
      uniques: nonEmpty(uniques),
      caps: nonEmpty(caps),
      settings: nonEmpty(settings),
      counters: nonEmpty(inc.counterRows()),
      buckets: nonEmpty(inc.bucketRows()),
      old: old || undefined,
      new: fresh || undefined,
      refs: refs || null,
      wake: wake && !replay,
      replay,
    }),
  };
}

/** `list`, or undefined (left out of JSON) when it is empty. */
function nonEmpty<T>(list: T[]): T[] | undefined {
  return list.length ? list : undefined;
}

/** Duration bucket count (for readers of the `d:` counters). */
export const DURATION_BUCKETS = DURATION_BUCKETS_MS.length + 1;

/** The records the commits were built on (see `beforesOf`). */
function readBefores(
  db: PgDb,
  changes: readonly Change[],
  results: AppendResult[],
): Promise<Map<Commit, JobRecord | null>> {
  return beforesOf(changes, results, (ids) => getMany(db, ids));
}
