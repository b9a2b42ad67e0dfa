/**
 * @module
 * The memory backend's projections besides the records: indexes, leases, counters and time
 * buckets, moved by the effects of each transition (the same `effectsOf` as every backend).
 */

import type { Lease } from "../../lib/projection.ts";
import type { State } from "../../lib/states.ts";
import type { JobRecord } from "../../lib/job.ts";
import {
  bucketStart,
  createdLater,
  type DueEntry,
  dueEntry,
  type Effects,
  type ReadyEntry,
  readyEntry,
  type StateEntry,
  stateEntry,
  zeroBatchCounts,
  zeroDurations,
  zeroStates,
  zeroTotals,
} from "../effects.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Change,
  type Commit,
  type Counts,
  type RecurringRecord,
  type Resolution,
  RESOLUTIONS,
  type TimelinePoint,
} from "../storage.ts";
import { SortedSet, type Tuple } from "./sorted.ts";
import { type StatPoint, statPoints, type StatQuery, type StatResolution } from "../stats.ts";

const stateKey = (e: StateEntry): Tuple => [e.at, e.id];
const readyKey = (e: ReadyEntry): Tuple => [e.rank, e.at, e.id];
const dueKey = (e: DueEntry): Tuple => [e.runAt, e.id];

/** Everything a transition moves besides the record and the log. */
export class MemoryIndexes {
  byState = new Map<State, SortedSet>();
  ready = new Map<string, SortedSet>();
  due = new SortedSet();
  leases = new Map<string, Lease>();
  gauges = new Map<string, Record<State, number>>();
  totals = zeroTotals();
  /** Time buckets by resolution, then by start (no key string made per hit). */
  buckets = new Map<Resolution, Map<number, { succeeded: number; failed: number }>>();
  batchCounts = new Map<string, BatchCounts>();
  names = new SortedSet();
  durations = zeroDurations();
  /** Statistics counters by resolution, then bucket start, then field (see `stats.ts`). */
  statCounts = new Map<StatResolution, Map<number, Map<string, number>>>();
  retrying = 0;
  /** Unique key → the job holding it. */
  unique = new Map<string, string>();

  /** True when `commit`'s unique claim (if any) expects the key's current holder. */
  canClaim(commit: Commit): boolean {
    return !commit.unique || (this.unique.get(commit.unique.key) ?? null) === commit.unique.holder;
  }

  /** Rebuild: `record` takes its key unless the holder so far was created later. */
  rebuildClaim(record: JobRecord, holder: (id: string) => JobRecord | undefined): void {
    const key = record.options.unique?.key;
    if (key === undefined) return;
    const held = holder(this.unique.get(key) ?? "");
    if (!held || !createdLater(held, record)) this.unique.set(key, record.id);
  }

  /** Applies one transition's effects. */
  apply(effects: Effects): void {
    if (effects.removeState) {
      this.stateSet(effects.removeState.state).delete(stateKey(effects.removeState));
    }
    if (effects.addState) this.stateSet(effects.addState.state).add(stateKey(effects.addState));
    if (effects.removeReady) {
      this.readySet(effects.removeReady.queue).delete(readyKey(effects.removeReady));
    }
    if (effects.addReady) this.readySet(effects.addReady.queue).add(readyKey(effects.addReady));
    if (effects.removeDue) this.due.delete(dueKey(effects.removeDue));
    if (effects.addDue) this.due.add(dueKey(effects.addDue));
    if (effects.dropLease && effects.removeState) this.leases.delete(effects.removeState.id);
    for (const { queue, state, delta } of effects.gauges) {
      const gauge = this.gauges.get(queue) ?? zeroStates();
      gauge[state] += delta;
      this.gauges.set(queue, gauge);
    }
    this.retrying += effects.retrying;
    if (effects.addName) {
      const { name, createdAt, id } = effects.addName;
      this.names.add([name, -createdAt, id]);
    }
    this.history(effects);
  }

  /** Succeeded and failed per bucket of `resolution` from `from` to `to`. */
  timeline(resolution: Resolution, from: number, to: number): TimelinePoint[] {
    const points: TimelinePoint[] = [];
    for (let at = bucketStart(resolution, from); at <= to; at += RESOLUTIONS[resolution].ms) {
      const bucket = this.buckets.get(resolution)?.get(at);
      points.push({ at, succeeded: bucket?.succeeded ?? 0, failed: bucket?.failed ?? 0 });
    }
    return points;
  }

  /** The statistics counters `query` asks for. */
  stats(query: StatQuery): StatPoint[] {
    return statPoints(this.statCounts.get(query.resolution) ?? [], query);
  }

  /** Drops time buckets (and statistics buckets) past their keep. */
  pruneBuckets(now: number): void {
    for (const [resolution, buckets] of [...this.buckets, ...this.statCounts]) {
      if (resolution === "total") continue;
      for (const at of buckets.keys()) {
        if (at < now - RESOLUTIONS[resolution].keepMs) buckets.delete(at);
      }
    }
  }

  /** Applies the history part of `effects`: totals, batch counts, durations, time buckets. */
  history(effects: Effects): void {
    for (const total of effects.totals) this.totals[total]++;
    if (effects.batch) {
      const counts = this.batchCounts.get(effects.batch.id) ?? zeroBatchCounts();
      for (const { kind, delta } of effects.batch.deltas) counts[kind] += delta;
      this.batchCounts.set(effects.batch.id, counts);
    }
    for (const { bucket, ms } of effects.durations) {
      this.durations.counts[bucket]++;
      this.durations.sumMs += ms;
    }
    for (const hit of effects.buckets) {
      let buckets = this.buckets.get(hit.resolution);
      if (!buckets) this.buckets.set(hit.resolution, buckets = new Map());
      let bucket = buckets.get(hit.at);
      if (!bucket) buckets.set(hit.at, bucket = { succeeded: 0, failed: 0 });
      bucket[hit.kind]++;
    }
    for (const { resolution, at, field, n } of effects.stats) {
      let byAt = this.statCounts.get(resolution);
      if (!byAt) this.statCounts.set(resolution, byAt = new Map());
      let fields = byAt.get(at);
      if (!fields) byAt.set(at, fields = new Map());
      fields.set(field, (fields.get(field) ?? 0) + n);
    }
  }

  /** Jobs of `queue` Processing now (what a global concurrency limit counts). */
  processing(queue: string): number {
    return this.gauges.get(queue)?.Processing ?? 0;
  }

  /**
   * Takes a finished job out of every index, lease and gauge (its removal for good); the
   * all-time totals other than `pruned`, durations, buckets and batch counts stay (the
   * storage keeps the job's share of them in its pruned base, for rebuild).
   */
  remove(record: JobRecord): void {
    this.stateSet(record.state).delete(stateKey(stateEntry(record)));
    const ready = readyEntry(record), due = dueEntry(record);
    if (ready) this.readySet(ready.queue).delete(readyKey(ready));
    if (due) this.due.delete(dueKey(due));
    this.leases.delete(record.id);
    const key = record.options.unique?.key;
    if (key !== undefined && this.unique.get(key) === record.id) this.unique.delete(key);
    this.names.delete([record.name, -record.createdAt, record.id]);
    const gauge = this.gauges.get(record.queue) ?? zeroStates();
    gauge[record.state]--;
    this.gauges.set(record.queue, gauge);
    this.totals.pruned++;
  }

  /** Indexes holding (copies of) the history of `base` only: where a rebuild starts from. */
  static from(base: MemoryIndexes): MemoryIndexes {
    const ix = new MemoryIndexes();
    ix.totals = { ...base.totals };
    ix.durations = { counts: [...base.durations.counts], sumMs: base.durations.sumMs };
    for (const [resolution, buckets] of base.buckets) {
      ix.buckets.set(resolution, new Map([...buckets].map(([at, b]) => [at, { ...b }])));
    }
    for (const [resolution, byAt] of base.statCounts) {
      ix.statCounts.set(resolution, new Map([...byAt].map(([at, f]) => [at, new Map(f)])));
    }
    for (const [id, counts] of base.batchCounts) ix.batchCounts.set(id, { ...counts });
    return ix;
  }

  /** The counters as `counts()` returns them (copies). */
  counts(): Counts {
    const states = zeroStates();
    const queues: Counts["queues"] = {};
    for (const [queue, gauge] of this.gauges) {
      queues[queue] = { ...gauge };
      for (const [state, n] of Object.entries(gauge)) states[state as State] += n;
    }
    const durations = { counts: [...this.durations.counts], sumMs: this.durations.sumMs };
    return { states, queues, totals: { ...this.totals }, durations, retrying: this.retrying };
  }

  stateSet(state: State): SortedSet {
    let set = this.byState.get(state);
    if (!set) this.byState.set(state, set = new SortedSet());
    return set;
  }

  readySet(queue: string): SortedSet {
    let set = this.ready.get(queue);
    if (!set) this.ready.set(queue, set = new SortedSet());
    return set;
  }
}

/** Why `change`'s cap or setting refuses it now (undefined: they let it through). */
export function guardsRefuse(
  change: Change,
  ix: MemoryIndexes,
  settings: ReadonlyMap<string, RecurringRecord>,
): AppendResult | undefined {
  const { cap, setting } = change;
  if (setting && (settings.get(setting.record.id)?.version ?? 0) !== setting.expect) {
    return { ok: false, conflicts: [`setting:${setting.record.id}`] };
  }
  if (cap && ix.processing(cap.queue) + change.commits.length > cap.max) {
    return { ok: false, conflicts: [], limited: true };
  }
}
