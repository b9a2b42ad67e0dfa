/**
 * @module
 * The memory backend: reference semantics for tests and single-process use. Values are cloned
 * on the way in and out, so it behaves like a serialized store.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import type { State } from "../../lib/states.ts";
import { badCursor, decodeCursor, encodeCursor } from "../cursor.ts";
import { checkChange, effectsOf, historyOf, removable, zeroBatchCounts } from "../effects.ts";
import { byId, canDelete, canPut } from "../record_store.ts";
import { closedStorage } from "../unavailable.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Cap,
  type Change,
  type ClaimBuilder,
  type ClaimQuery,
  type ClaimResult,
  type Commit,
  type Counts,
  type Derive,
  type FinishedQuery,
  type Heartbeat,
  type LeasePage,
  type ListQuery,
  type Notifier,
  type Page,
  type RebuildResult,
  type RecordStore,
  type RecurringRecord,
  type Removal,
  type RemoveResult,
  type Resolution,
  type SearchQuery,
  type ServerInfo,
  type Storage,
  type TimelinePoint,
} from "../storage.ts";
import type { StatPoint, StatQuery } from "../stats.ts";
import { clone } from "./clone.ts";
import { guardsRefuse, MemoryIndexes } from "./indexes.ts";
import { MemoryFeed } from "./feed.ts";
import { type FeedRef, refsOf } from "../feed.ts";
import type { SortedSet } from "./sorted.ts";

/** In-process storage; everything is lost when the process exits. */
export class MemoryStorage implements Storage {
  readonly address = "memory:";
  readonly limits = { args: 512 * 1024, result: 512 * 1024, maxRemovals: 1_000 };
  readonly notifier: Notifier;
  /** Appends in commit order (one entry per append call); `feedWindow` entries are kept. */
  readonly feed: MemoryFeed;

  #jobs = new Map<string, JobRecord>();
  #events = new Map<string, JobEvent[]>();
  #ix = new MemoryIndexes();
  /** The pruned base: what removed jobs' logs added to the history (see `historyOf`). */
  #pruned = new MemoryIndexes();
  #servers = new Map<string, { info: ServerInfo; expiresAt: number }>();
  #paused = new Set<string>();
  #listeners = new Set<() => void>();
  #closed = false;

  constructor(options: { feedWindow?: number } = {}) {
    this.feed = new MemoryFeed(options.feedWindow);
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
    const refs: FeedRef[] = [];
    const results = changes.map((change): AppendResult => {
      let conflicts: string[] | undefined;
      for (const c of change.commits) {
        const version = this.#jobs.get(c.id)?.version ?? 0;
        if (version !== c.expect || !this.#ix.canClaim(c)) (conflicts ??= []).push(c.id);
      }
      if (conflicts) return { ok: false, conflicts };
      const refused = guardsRefuse(change, this.#ix, this.#settings);
      if (refused) return refused;
      const put = change.setting?.record;
      if (put) this.#settings.set(put.id, clone(put));
      for (const commit of change.commits) {
        const before = this.#jobs.get(commit.id) ?? null;
        this.#jobs.set(commit.id, clone(commit.record));
        const log = this.#events.get(commit.id) ?? [];
        log.push(...clone(commit.events));
        this.#events.set(commit.id, log);
        this.#ix.apply(effectsOf(before, commit));
        if (commit.lease) this.#ix.leases.set(commit.id, { ...commit.lease });
        if (commit.unique) this.#ix.unique.set(commit.unique.key, commit.id);
        wake ||= commit.record.state === "Enqueued" || commit.record.state === "Scheduled";
      }
      refs.push(...refsOf(change.commits));
      return { ok: true };
    });
    this.feed.add(refs);
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
    const caps = new Map<Commit, Cap>();
    for (const queue of query.queues) {
      const max = query.caps?.[queue];
      const room = max === undefined ? Infinity : max - this.#ix.processing(queue);
      const limit = Math.min(query.limit - commits.length, room);
      if (limit <= 0) continue;
      for (const key of this.#ix.readySet(queue).range({ limit })) {
        const record = this.#jobs.get(String(key[key.length - 1]));
        const commit = record && build(record);
        if (commit) commits.push(commit);
        // Only a claim takes a slot (an expired job's deletion does not).
        if (commit?.record.state === "Processing" && max !== undefined) {
          caps.set(commit, { queue, max });
        }
      }
    }
    if (!commits.length) return { claimed: [], contended: false };
    const results = await this.append(
      commits.map((commit) => ({ commits: [commit], cap: caps.get(commit) })),
    );
    const claimed = commits.filter((_, i) => results[i].ok);
    return { claimed, contended: claimed.length < commits.length };
  }

  /** A copy of the record of `id`, or null. */
  #copy(id: string): JobRecord | null {
    const record = this.#jobs.get(id);
    return record ? clone(record) : null;
  }

  /** Copies of the records of `ids`, skipping index entries whose record is missing. */
  #records(ids: string[]): JobRecord[] {
    return ids.flatMap((id) => this.#copy(id) ?? []);
  }

  get(id: string): Promise<JobRecord | null> {
    this.#open();
    return Promise.resolve(this.#copy(id));
  }

  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    this.#open();
    return Promise.resolve(ids.map((id) => this.#copy(id)));
  }

  events(id: string): Promise<JobEvent[]> {
    this.#open();
    return Promise.resolve(clone(this.#events.get(id) ?? []));
  }

  uniqueHolder(key: string): Promise<string | null> {
    this.#open();
    return Promise.resolve(this.#ix.unique.get(key) ?? null);
  }

  list(query: ListQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 50;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const keys = query.state !== undefined
      ? this.#ix.stateSet(query.state).range({ after, limit, reverse: true })
      : this.#ix.readySet(query.queue).range({ after, limit });
    const jobs = this.#records(keys.map((key) => String(key[key.length - 1])));
    const page: Page = { jobs };
    if (keys.length === limit) page.cursor = encodeCursor(keys[keys.length - 1]);
    return Promise.resolve(page);
  }

  // Async so that a bad cursor rejects like every other backend's.
  // deno-lint-ignore require-await
  async finished(query: FinishedQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 100;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const keys = this.#ix.stateSet(query.state).range({
      after,
      limit,
      until: [query.before, "\uffff"],
    });
    const page: Page = { jobs: this.#records(keys.map((key) => String(key[key.length - 1]))) };
    if (keys.length === limit) page.cursor = encodeCursor(keys[keys.length - 1]);
    return page;
  }

  remove(removals: readonly Removal[]): Promise<RemoveResult> {
    this.#open();
    let checked: ReturnType<typeof removable>;
    try {
      checked = removable(
        removals,
        removals.map(({ id }) => this.#jobs.get(id) ?? null),
        this.limits.maxRemovals,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    for (const record of checked.records) {
      this.#pruned.history(historyOf(record, this.#events.get(record.id) ?? []));
      this.#ix.remove(record);
      this.#jobs.delete(record.id);
      this.#events.delete(record.id);
    }
    return Promise.resolve({ removed: checked.records.map((r) => r.id), refused: checked.refused });
  }

  counts(): Promise<Counts> {
    this.#open();
    return Promise.resolve(this.#ix.counts());
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    this.#open();
    return Promise.resolve(this.#ix.timeline(resolution, from, to));
  }

  stats(query: StatQuery): Promise<StatPoint[]> {
    this.#open();
    return Promise.resolve(this.#ix.stats(query));
  }

  due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]> {
    this.#open();
    if (query.state === "Scheduled") {
      const keys = this.#ix.due.range({ limit: query.limit, until: [query.before, "\uffff"] });
      return Promise.resolve(this.#records(keys.map((key) => String(key[1]))));
    }
    const expired: string[] = [];
    for (const [id, lease] of this.#ix.leases) {
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
    const keys = this.#ix.names.range({ after, limit, until: [`${prefix}\uffff`] })
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
    const lease = this.#ix.leases.get(id);
    return Promise.resolve(lease ? { ...lease } : null);
  }

  // Async so that a bad cursor rejects like every other backend's.
  // deno-lint-ignore require-await
  async leases(query: { cursor?: string; limit?: number }): Promise<LeasePage> {
    this.#open();
    const limit = query.limit ?? 500;
    let after = "";
    if (query.cursor !== undefined) {
      const key = decodeCursor(query.cursor);
      if (key.length !== 1 || typeof key[0] !== "string") throw badCursor(query.cursor);
      after = key[0];
    }
    // Id order, so that paging resumes after the last id whatever was added or removed.
    const ids = [...this.#ix.leases.keys()].filter((id) => id > after).sort().slice(0, limit);
    const page: LeasePage = {
      leases: ids.map((id) => ({ id, ...this.#ix.leases.get(id)! })),
    };
    if (ids.length === limit) page.cursor = encodeCursor([ids[ids.length - 1]]);
    return page;
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    this.#open();
    this.#servers.set(beat.server.id, {
      info: clone(beat.server),
      // The process's clock, the only one memory storage has; lastSeen is the beater's.
      expiresAt: Date.now() + beat.ttlMs,
    });
    const lost: string[] = [];
    for (const id of beat.leases) {
      const lease = this.#ix.leases.get(id);
      if (lease && lease.serverId === beat.server.id) {
        lease.until = Math.max(beat.leaseUntil, lease.until + 1);
      } else lost.push(id);
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
  readonly flows: RecordStore = this.#store(new Map());
  #settings = new Map<string, RecurringRecord>();
  readonly settings: RecordStore = this.#store(this.#settings);

  #store(records: Map<string, RecurringRecord>): RecordStore {
    return {
      get: (id) => {
        this.#open();
        const record = records.get(id);
        return Promise.resolve(record ? clone(record) : null);
      },
      list: () => {
        this.#open();
        return Promise.resolve(byId([...records.values()]).map((r) => clone(r)));
      },
      put: (record, expect) => {
        this.#open();
        if (!canPut(records.get(record.id), expect)) return Promise.resolve(false);
        records.set(record.id, clone(record));
        return Promise.resolve(true);
      },
      delete: (id, expect) => {
        this.#open();
        if (!canDelete(records.get(id), expect)) return Promise.resolve(false);
        records.delete(id);
        return Promise.resolve(true);
      },
    };
  }

  batchCounts(id: string): Promise<BatchCounts> {
    this.#open();
    return Promise.resolve({
      ...(this.#ix.batchCounts.get(id) ?? zeroBatchCounts()),
    });
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    this.#open();
    const leases = this.#ix.leases;
    // Removed jobs left no log to count them from: the history starts from their pruned base,
    // and their count is kept as it was.
    const pruned = this.#ix.totals.pruned;
    this.#jobs.clear();
    this.#ix = MemoryIndexes.from(this.#pruned);
    this.#ix.totals.pruned = pruned;
    const skipped: string[] = [];
    for (const [id, events] of this.#events) {
      const derived = derive(id, clone(events));
      if (!derived) {
        skipped.push(id);
        continue;
      }
      const { record, lease } = derived;
      this.#jobs.set(id, record);
      this.#ix.apply(effectsOf(null, { id, expect: 0, events, record }));
      this.#ix.rebuildClaim(record, (holder) => this.#jobs.get(holder));
      // A heartbeat may have extended the lease past the one recorded at claim time.
      const kept = leases.get(id);
      if (lease) this.#ix.leases.set(id, kept?.serverId === lease.serverId ? kept : lease);
    }
    this.prune(Date.now());
    return Promise.resolve({ jobs: this.#events.size - skipped.length, skipped });
  }

  prune(now: number): Promise<void> {
    for (const ix of [this.#ix, this.#pruned]) ix.pruneBuckets(now);
    return Promise.resolve();
  }

  /** Test hook: direct access to the internals, to corrupt projections or list every entry. */
  get internals(): {
    jobs: Map<string, JobRecord>;
    events: Map<string, JobEvent[]>;
    totals: Counts["totals"];
    byState: Map<State, SortedSet>;
    indexes: MemoryIndexes;
  } {
    return {
      jobs: this.#jobs,
      events: this.#events,
      totals: this.#ix.totals,
      byState: this.#ix.byState,
      indexes: this.#ix,
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.feed.close();
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw closedStorage(this.address);
  }
}
