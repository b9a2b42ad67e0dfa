/**
 * @module
 * The memory backend: reference semantics for tests and single-process use. Values are cloned
 * on the way in and out, so it behaves like a serialized store.
 */

import { StorageUnavailableError } from "./errors.ts";
import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import type { Lease } from "../lib/projection.ts";
import type { State } from "../lib/states.ts";
import {
  bucketStart,
  checkChange,
  type DueEntry,
  type Effects,
  effectsOf,
  type ReadyEntry,
  type StateEntry,
  zeroBatchCounts,
  zeroDurations,
  zeroStates,
  zeroTotals,
} from "./effects.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { SortedSet, type Tuple } from "./sorted.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Change,
  type ClaimBuilder,
  type ClaimQuery,
  type ClaimResult,
  type Commit,
  type Counts,
  type Derive,
  type Heartbeat,
  type ListQuery,
  type Notifier,
  type Page,
  type RebuildResult,
  type RecordStore,
  type RecurringRecord,
  type Resolution,
  RESOLUTIONS,
  type SearchQuery,
  type ServerInfo,
  type Storage,
  type TimelinePoint,
} from "./storage.ts";

/**
 * Deep copy of plain JSON data (all that storage holds), like a serialized store would return;
 * several times faster than structuredClone for the small objects stored here.
 */
function clone<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(clone) as T;
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) out[key] = clone(item);
  }
  return out as T;
}

const stateKey = (e: StateEntry): Tuple => [e.at, e.id];
const readyKey = (e: ReadyEntry): Tuple => [e.rank, e.at, e.id];
const dueKey = (e: DueEntry): Tuple => [e.runAt, e.id];

/** In-process storage; everything is lost when the process exits. */
export class MemoryStorage implements Storage {
  readonly address = "memory:";
  readonly limits = { args: 512 * 1024, result: 512 * 1024 };
  readonly notifier: Notifier;

  #jobs = new Map<string, JobRecord>();
  #events = new Map<string, JobEvent[]>();
  #byState = new Map<State, SortedSet>();
  #ready = new Map<string, SortedSet>();
  #due = new SortedSet();
  #leases = new Map<string, Lease>();
  #gauges = new Map<string, Record<State, number>>();
  #totals = zeroTotals();
  /** Time buckets by resolution, then by start (no key string made per hit). */
  #buckets = new Map<Resolution, Map<number, { succeeded: number; failed: number }>>();
  #servers = new Map<string, { info: ServerInfo; expiresAt: number }>();
  #batchCounts = new Map<string, BatchCounts>();
  #names = new SortedSet();
  #durations = zeroDurations();
  #paused = new Set<string>();
  #retrying = 0;
  #listeners = new Set<() => void>();
  #closed = false;

  constructor() {
    this.notifier = {
      listen: (wake) => {
        this.#listeners.add(wake);
        return () => this.#listeners.delete(wake);
      },
    };
  }

  append(changes: readonly Change[]): Promise<AppendResult[]> {
    this.#open();
    try {
      // A malformed commit is refused before anything is written.
      changes.forEach(checkChange);
    } catch (error) {
      return Promise.reject(error);
    }
    let wake = false;
    const results = changes.map((change): AppendResult => {
      let conflicts: string[] | undefined;
      for (const c of change.commits) {
        if ((this.#jobs.get(c.id)?.version ?? 0) !== c.expect) (conflicts ??= []).push(c.id);
      }
      if (conflicts) return { ok: false, conflicts };
      for (const commit of change.commits) {
        const before = this.#jobs.get(commit.id) ?? null;
        this.#jobs.set(commit.id, clone(commit.record));
        const log = this.#events.get(commit.id) ?? [];
        log.push(...clone(commit.events));
        this.#events.set(commit.id, log);
        this.#apply(effectsOf(before, commit));
        if (commit.lease) this.#leases.set(commit.id, { ...commit.lease });
        wake ||= commit.record.state === "Enqueued" || commit.record.state === "Scheduled";
      }
      return { ok: true };
    });
    if (wake) { for (const listener of this.#listeners) listener(); }
    return Promise.resolve(results);
  }

  /**
   * Claims in place: `build` sees the stored records themselves (lib's builder only reads them)
   * instead of copies made by a listing, and the claims are applied at once, so nothing can take
   * the jobs meanwhile.
   */
  async claim(query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
    this.#open();
    const commits: Commit[] = [];
    for (const queue of query.queues) {
      const limit = query.limit - commits.length;
      if (limit <= 0) break;
      for (const key of this.#readySet(queue).range({ limit })) {
        const record = this.#jobs.get(String(key[key.length - 1]));
        const commit = record && build(record);
        if (commit) commits.push(commit);
      }
    }
    if (!commits.length) return { claimed: [], contended: false };
    const results = await this.append(commits.map((commit) => ({ commits: [commit] })));
    const claimed = commits.filter((_, i) => results[i].ok);
    return { claimed, contended: claimed.length < commits.length };
  }

  #apply(effects: Effects): void {
    if (effects.removeState) {
      this.#stateSet(effects.removeState.state).delete(stateKey(effects.removeState));
    }
    if (effects.addState) this.#stateSet(effects.addState.state).add(stateKey(effects.addState));
    if (effects.removeReady) {
      this.#readySet(effects.removeReady.queue).delete(readyKey(effects.removeReady));
    }
    if (effects.addReady) this.#readySet(effects.addReady.queue).add(readyKey(effects.addReady));
    if (effects.removeDue) this.#due.delete(dueKey(effects.removeDue));
    if (effects.addDue) this.#due.add(dueKey(effects.addDue));
    if (effects.dropLease && effects.removeState) this.#leases.delete(effects.removeState.id);
    for (const { queue, state, delta } of effects.gauges) {
      const gauge = this.#gauges.get(queue) ?? zeroStates();
      gauge[state] += delta;
      this.#gauges.set(queue, gauge);
    }
    for (const total of effects.totals) this.#totals[total]++;
    this.#retrying += effects.retrying;
    if (effects.batch) {
      const counts = this.#batchCounts.get(effects.batch.id) ?? zeroBatchCounts();
      for (const { kind, delta } of effects.batch.deltas) counts[kind] += delta;
      this.#batchCounts.set(effects.batch.id, counts);
    }
    if (effects.addName) {
      const { name, createdAt, id } = effects.addName;
      this.#names.add([name, -createdAt, id]);
    }
    for (const { bucket, ms } of effects.durations) {
      this.#durations.counts[bucket]++;
      this.#durations.sumMs += ms;
    }
    for (const hit of effects.buckets) {
      let buckets = this.#buckets.get(hit.resolution);
      if (!buckets) this.#buckets.set(hit.resolution, buckets = new Map());
      let bucket = buckets.get(hit.at);
      if (!bucket) buckets.set(hit.at, bucket = { succeeded: 0, failed: 0 });
      bucket[hit.kind]++;
    }
  }

  /** Copies of the records of `ids`, skipping index entries whose record is missing. */
  #records(ids: string[]): JobRecord[] {
    return ids.flatMap((id) => {
      const record = this.#jobs.get(id);
      return record ? [clone(record)] : [];
    });
  }

  #stateSet(state: State): SortedSet {
    let set = this.#byState.get(state);
    if (!set) this.#byState.set(state, set = new SortedSet());
    return set;
  }

  #readySet(queue: string): SortedSet {
    let set = this.#ready.get(queue);
    if (!set) this.#ready.set(queue, set = new SortedSet());
    return set;
  }

  get(id: string): Promise<JobRecord | null> {
    this.#open();
    const record = this.#jobs.get(id);
    return Promise.resolve(record ? clone(record) : null);
  }

  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    this.#open();
    return Promise.resolve(ids.map((id) => {
      const record = this.#jobs.get(id);
      return record ? clone(record) : null;
    }));
  }

  events(id: string): Promise<JobEvent[]> {
    this.#open();
    return Promise.resolve(clone(this.#events.get(id) ?? []));
  }

  list(query: ListQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 50;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const keys = query.state !== undefined
      ? this.#stateSet(query.state).range({ after, limit, reverse: true })
      : this.#readySet(query.queue).range({ after, limit });
    const jobs = this.#records(keys.map((key) => String(key[key.length - 1])));
    const page: Page = { jobs };
    if (keys.length === limit) page.cursor = encodeCursor(keys[keys.length - 1]);
    return Promise.resolve(page);
  }

  counts(): Promise<Counts> {
    this.#open();
    const states = zeroStates();
    const queues: Counts["queues"] = {};
    for (const [queue, gauge] of this.#gauges) {
      queues[queue] = { ...gauge };
      for (const [state, n] of Object.entries(gauge)) states[state as State] += n;
    }
    const durations = { counts: [...this.#durations.counts], sumMs: this.#durations.sumMs };
    return Promise.resolve({
      states,
      queues,
      totals: { ...this.#totals },
      durations,
      retrying: this.#retrying,
    });
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    this.#open();
    const points: TimelinePoint[] = [];
    const step = RESOLUTIONS[resolution].ms;
    for (let at = bucketStart(resolution, from); at <= to; at += step) {
      const bucket = this.#buckets.get(resolution)?.get(at);
      points.push({ at, succeeded: bucket?.succeeded ?? 0, failed: bucket?.failed ?? 0 });
    }
    return Promise.resolve(points);
  }

  due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]> {
    this.#open();
    if (query.state === "Scheduled") {
      const keys = this.#due.range({ limit: query.limit, until: [query.before, "\uffff"] });
      return Promise.resolve(this.#records(keys.map((key) => String(key[1]))));
    }
    const expired: string[] = [];
    for (const [id, lease] of this.#leases) {
      if (expired.length >= query.limit) break;
      if (lease.until <= query.before) expired.push(id);
    }
    return Promise.resolve(this.#records(expired));
  }

  search(query: SearchQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 50;
    const prefix = query.namePrefix;
    const after = query.cursor === undefined ? [prefix] : decodeCursor(query.cursor);
    const keys = this.#names.range({ after, limit, until: [`${prefix}\uffff`] })
      .filter((key) => String(key[0]).startsWith(prefix));
    const page: Page = { jobs: this.#records(keys.map((key) => String(key[2]))) };
    if (keys.length === limit) page.cursor = encodeCursor(keys[keys.length - 1]);
    return Promise.resolve(page);
  }

  pausedQueues(): Promise<string[]> {
    this.#open();
    return Promise.resolve([...this.#paused].sort());
  }

  pauseQueue(queue: string, paused: boolean): Promise<void> {
    this.#open();
    if (paused) this.#paused.add(queue);
    else this.#paused.delete(queue);
    return Promise.resolve();
  }

  lease(id: string): Promise<Lease | null> {
    this.#open();
    const lease = this.#leases.get(id);
    return Promise.resolve(lease ? { ...lease } : null);
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    this.#open();
    this.#servers.set(beat.server.id, {
      info: clone(beat.server),
      expiresAt: beat.server.lastSeen + beat.ttlMs,
    });
    const lost: string[] = [];
    for (const id of beat.leases) {
      const lease = this.#leases.get(id);
      if (lease && lease.serverId === beat.server.id) lease.until = beat.leaseUntil;
      else lost.push(id);
    }
    return Promise.resolve({ lost });
  }

  servers(): Promise<ServerInfo[]> {
    this.#open();
    const now = Date.now();
    return Promise.resolve(
      [...this.#servers.values()].filter((s) => s.expiresAt > now).map((s) => clone(s.info)),
    );
  }

  removeServer(id: string): Promise<void> {
    this.#open();
    this.#servers.delete(id);
    return Promise.resolve();
  }

  readonly recurring: RecordStore = this.#store(new Map());
  readonly batches: RecordStore = this.#store(new Map());

  #store(records: Map<string, RecurringRecord>): RecordStore {
    return {
      get: (id) => {
        this.#open();
        const record = records.get(id);
        return Promise.resolve(record ? clone(record) : null);
      },
      list: () => {
        this.#open();
        const all = [...records.values()].sort((a, b) => a.id < b.id ? -1 : 1);
        return Promise.resolve(all.map((r) => clone(r)));
      },
      put: (record, expect) => {
        this.#open();
        if ((records.get(record.id)?.version ?? 0) !== expect) return Promise.resolve(false);
        records.set(record.id, clone(record));
        return Promise.resolve(true);
      },
      delete: (id, expect) => {
        this.#open();
        const current = records.get(id);
        if (!current || current.version !== expect) return Promise.resolve(false);
        records.delete(id);
        return Promise.resolve(true);
      },
    };
  }

  batchCounts(id: string): Promise<BatchCounts> {
    this.#open();
    return Promise.resolve({
      ...(this.#batchCounts.get(id) ?? zeroBatchCounts()),
    });
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    this.#open();
    const leases = new Map(this.#leases);
    this.#jobs.clear();
    this.#byState.clear();
    this.#ready.clear();
    this.#due.clear();
    this.#leases.clear();
    this.#gauges.clear();
    this.#totals = zeroTotals();
    this.#buckets.clear();
    this.#names.clear();
    this.#retrying = 0;
    this.#batchCounts.clear();
    this.#durations = zeroDurations();
    const skipped: string[] = [];
    for (const [id, events] of this.#events) {
      const derived = derive(id, clone(events));
      if (!derived) {
        skipped.push(id);
        continue;
      }
      const { record, lease } = derived;
      this.#jobs.set(id, record);
      this.#apply(effectsOf(null, { id, expect: 0, events, record }));
      // A heartbeat may have extended the lease past the one recorded at claim time.
      const kept = leases.get(id);
      if (lease) this.#leases.set(id, kept?.serverId === lease.serverId ? kept : lease);
    }
    this.prune(Date.now());
    return Promise.resolve({ jobs: this.#events.size - skipped.length, skipped });
  }

  prune(now: number): Promise<void> {
    for (const [resolution, buckets] of this.#buckets) {
      for (const at of buckets.keys()) {
        if (at < now - RESOLUTIONS[resolution].keepMs) buckets.delete(at);
      }
    }
    return Promise.resolve();
  }

  /** Test hook: direct access to the internals, to corrupt projections on purpose. */
  get internals(): {
    jobs: Map<string, JobRecord>;
    totals: Counts["totals"];
    byState: Map<State, SortedSet>;
  } {
    return { jobs: this.#jobs, totals: this.#totals, byState: this.#byState };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw new StorageUnavailableError(this.address, "the storage was closed");
  }
}
