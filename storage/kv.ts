/**
 * @module
 * The Deno KV backend: a local SQLite file, `:memory:`, Deno Deploy's KV or KV Connect.
 * Writes are fsync-bound (~1k commits/s on disk), so every write path takes many commits and
 * packs them into as few atomic operations as KV's limits allow.
 */

import {
  CorruptRecordError,
  InvalidOptionError,
  PayloadTooLargeError,
  StorageUnavailableError,
} from "./errors.ts";
import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import type { Lease } from "../lib/projection.ts";
import type { State } from "../lib/states.ts";
import {
  bucketStart,
  checkChange,
  type Effects,
  effectsOf,
  zeroBatchCounts,
  zeroDurations,
  zeroStates,
  zeroTotals,
} from "./effects.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Change,
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

// Limits of one atomic operation, measured here; we stay a little under each.
const MAX_CHECKS = 100;
const MAX_MUTATIONS = 950;
const MAX_BYTES = 700 * 1024;
const MAX_VALUE_CHARS = 60 * 1024;
const GET_MANY = 10; // kv.getMany takes at most 10 keys
const MAX_QUEUE_DELAY = 30 * 86_400_000; // kv.enqueue's longest delay
const U64 = 1n << 64n;
const WAKE = { taskflow: "wake" } as const;
const LOCK_RETRIES = 200; // ~5 s of waiting for another process's write lock

/** Options of the KV backend. */
export interface KvOptions {
  /** First element of every key (default `"taskflow"`), so an app can share its KV database. */
  prefix?: string;
  /**
   * Enqueue one KV queue message per write that makes jobs ready or scheduled, as a worker
   * wake-up (default false; `openStorage` turns it on for Deno's default database, off Deploy).
   * A local file wakes other processes through `<file>.wake/` instead: KV delivers another
   * process's messages only by a 60 s poll, and undelivered messages pile up for workers to
   * drain later.
   */
  queueWakeups?: boolean;
}

type Key = Deno.KvKey;

/** Most entries kept for the writes that follow (the map is emptied beyond). */
const MAX_KNOWN = 10_000;

/** What a writer puts in `<file>.wake/tick`: any write wakes the watchers. */
const TICK = new Uint8Array([0x31]);

/** Storage on a Deno KV database. */
export class KvStorage implements Storage {
  readonly limits = { args: 30 * 1024, result: 16 * 1024 };
  readonly notifier: Notifier;
  readonly address: string;
  readonly kv: Deno.Kv;
  #p: string;
  #queueWakeups: boolean;
  #listeners = new Set<() => void>();
  #listening = false;
  #closed = false;
  /** `<file>.wake`, the directory of cross-process wake-ups (local files only). */
  #wakeDir?: string;
  #watcher?: Deno.FsWatcher;
  #touching = false;
  #touchAgain = false;
  /**
   * Records with their versionstamps, kept for the write that usually follows (see
   * #currentRecords): ready-queue listings (claims), due listings (promotions, reaps) and this
   * instance's own claims (outcomes).
   */
  #known = new Map<string, Deno.KvEntry<JobRecord>>();

  /** Wraps an open `Deno.Kv`; `address` names it in messages. */
  constructor(kv: Deno.Kv, address: string, options: KvOptions = {}) {
    this.kv = kv;
    this.address = address;
    this.#p = options.prefix ?? "taskflow";
    this.#queueWakeups = options.queueWakeups ?? false;
    this.notifier = {
      listen: (wake) => {
        this.#listeners.add(wake);
        if (this.#queueWakeups) this.#listen();
        this.#watchFile();
        return () => this.#listeners.delete(wake);
      },
    };
  }

  /** Opens the database at `path` (absent: Deno's default database, the project's KV on Deploy). */
  static async open(
    path: string | undefined,
    address: string,
    options?: KvOptions,
  ): Promise<KvStorage> {
    try {
      const storage = new KvStorage(await Deno.openKv(path), address, options);
      if (path && path !== ":memory:" && !/^https?:/.test(path)) {
        const wakeDir = `${path}.wake`;
        try {
          await Deno.mkdir(wakeDir, { recursive: true });
          storage.#wakeDir = wakeDir;
        } catch {
          // read-only place: workers in other processes find new jobs by polling
        }
      }
      return storage;
    } catch (error) {
      throw new StorageUnavailableError(address, (error as Error).message, error);
    }
  }

  #key(...parts: Deno.KvKeyPart[]): Key {
    return [this.#p, ...parts];
  }

  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    // The handler only signals: a job runs in the worker's bounded pool, never in here, since
    // listenQueue has no concurrency limit and redelivers messages whose handler runs long.
    this.kv.listenQueue((message) => {
      if ((message as typeof WAKE)?.taskflow === "wake") this.#wake();
    }).catch(() => {/* ends when the database is closed */});
  }

  /**
   * Cross-process wake-ups for a local file. KV queue messages from another process arrive only
   * by a 60 s fallback poll and kv.watch misses other processes' writes, so a writer touches
   * `<file>.wake/tick` after each commit that makes jobs ready or scheduled, and workers watch
   * that directory (polling stays the truth). Never the database's own directory: Deno.watchFs
   * opens every file it reports as modified, and closing any descriptor of a file drops all of
   * the process's POSIX locks on it, so watching the SQLite files released SQLite's locks and
   * lost commits and corrupted the file when several processes wrote (chaos runs, README).
   */
  #watchFile(): void {
    if (!this.#wakeDir || this.#watcher) return;
    const dir = this.#wakeDir;
    try {
      this.#watcher = Deno.watchFs(dir, { recursive: false });
    } catch {
      return; // no read permission or no inotify: polling alone
    }
    const watcher = this.#watcher;
    (async () => {
      for await (const event of watcher) {
        if (event.kind === "modify" || event.kind === "create") this.#wake();
      }
    })().catch(() => {/* ends when closed */});
  }

  /** Tells workers in other processes that jobs became ready or scheduled (coalesced). */
  #touch(): void {
    if (!this.#wakeDir || this.#closed) return;
    if (this.#touching) {
      this.#touchAgain = true;
      return;
    }
    this.#touching = true;
    const tick = `${this.#wakeDir}/tick`;
    (async () => {
      do {
        this.#touchAgain = false;
        await Deno.writeFile(tick, TICK);
      } while (this.#touchAgain && !this.#closed);
    })().catch(() => {
      this.#wakeDir = undefined; // cannot write there: other processes rely on polling
    }).finally(() => this.#touching = false);
  }

  #wake(): void {
    for (const listener of this.#listeners) listener();
  }

  async append(changes: readonly Change[]): Promise<AppendResult[]> {
    this.#open();
    // A malformed commit is refused before anything is written.
    changes.forEach(checkChange);
    const results: AppendResult[] = new Array(changes.length);
    // A job touched twice in one call: the later change waits for a later round.
    let pending = changes.map((change, index) => ({ change, index }));
    while (pending.length) {
      const seen = new Set<string>();
      const round: typeof pending = [];
      const later: typeof pending = [];
      for (const item of pending) {
        const ids = item.change.commits.map((c) => c.id);
        if (ids.some((id) => seen.has(id))) later.push(item);
        else {
          ids.forEach((id) => seen.add(id));
          round.push(item);
        }
      }
      await this.#appendRound(round, results);
      pending = later;
    }
    return results;
  }

  async #appendRound(
    round: { change: Change; index: number }[],
    results: AppendResult[],
  ): Promise<void> {
    const current = await this.#currentRecords(round.flatMap(({ change }) => change.commits));
    let batch: { change: Change; index: number }[] = [];
    const WAKEUPS = 2; // at most one immediate and one delayed queue message per atomic
    let checks = 0, mutations = WAKEUPS, bytes = 0;
    const flush = async () => {
      if (batch.length) await this.#commitBatch(batch, current, results);
      batch = [];
      checks = bytes = 0;
      mutations = WAKEUPS;
    };
    for (const item of round) {
      const conflicts = item.change.commits
        .filter((c) => (current.get(c.id)?.value?.version ?? 0) !== c.expect)
        .map((c) => c.id);
      if (conflicts.length) {
        results[item.index] = { ok: false, conflicts };
        continue;
      }
      const size = this.#measure(item.change);
      if (
        checks + size.checks > MAX_CHECKS || mutations + size.mutations > MAX_MUTATIONS ||
        bytes + size.bytes > MAX_BYTES
      ) await flush();
      batch.push(item);
      checks += size.checks;
      mutations += size.mutations;
      bytes += size.bytes;
    }
    await flush();
  }

  #measure(change: Change): { checks: number; mutations: number; bytes: number } {
    let mutations = 0, bytes = 0;
    for (const commit of change.commits) {
      const recordChars = JSON.stringify(commit.record).length;
      if (recordChars > MAX_VALUE_CHARS) {
        throw new PayloadTooLargeError(`job ${commit.id} record`, recordChars, MAX_VALUE_CHARS);
      }
      bytes += 2 * (recordChars + JSON.stringify(commit.events).length) + 512;
      mutations += commit.events.length + 16;
    }
    return { checks: change.commits.length, mutations, bytes };
  }

  /** Commits a batch; on a failed check, drops the changes that conflicted and tries again. */
  async #commitBatch(
    batch: { change: Change; index: number }[],
    current: Map<string, Deno.KvEntryMaybe<JobRecord>>,
    results: AppendResult[],
  ): Promise<void> {
    while (batch.length) {
      const atomic = this.kv.atomic();
      // Counters one batch moves many times are summed once per key.
      const sums = new Sums();
      let earliestDue = Infinity, ready = false;
      for (const { change } of batch) {
        for (const commit of change.commits) {
          const entry = current.get(commit.id)!;
          atomic.check({ key: entry.key, versionstamp: entry.versionstamp });
          atomic.set(entry.key, commit.record);
          for (const event of commit.events) {
            atomic.set(this.#key("ev", commit.id, event.seq), event);
          }
          const effects = effectsOf(entry.value, commit);
          this.#moveIndexes(atomic, effects);
          this.#count(sums, effects);
          if (commit.lease) atomic.set(this.#key("lease", commit.id), commit.lease);
          if (commit.record.state === "Enqueued") ready = true;
          if (commit.record.state === "Scheduled") {
            earliestDue = Math.min(earliestDue, commit.record.runAt ?? 0);
          }
        }
      }
      for (const { key, delta } of sums.values()) {
        if (delta !== 0) atomic.sum(key, u64(delta));
      }
      if (this.#queueWakeups && ready) atomic.enqueue(WAKE);
      if (this.#queueWakeups && earliestDue < Infinity) {
        const delay = Math.max(0, Math.min(earliestDue - Date.now(), MAX_QUEUE_DELAY));
        atomic.enqueue(WAKE, { delay });
      }
      const outcome = await this.#commit(atomic);
      if (outcome.ok) {
        for (const { index } of batch) results[index] = { ok: true };
        this.#remember(batch, outcome.versionstamp);
        if (ready || earliestDue <= Date.now()) this.#wake();
        if (ready || earliestDue < Infinity) this.#touch();
        return;
      }
      // Someone else wrote one of these jobs since we read it: find which, and retry the rest.
      const fresh = await this.#readRecords(
        batch.flatMap(({ change }) => change.commits.map((c) => c.id)),
      );
      const survivors: typeof batch = [];
      for (const item of batch) {
        const conflicts = item.change.commits
          .filter((c) => (fresh.get(c.id)?.value?.version ?? 0) !== c.expect)
          .map((c) => c.id);
        if (conflicts.length) results[item.index] = { ok: false, conflicts };
        else survivors.push(item);
      }
      for (const [id, entry] of fresh) current.set(id, entry);
      batch = survivors;
    }
  }

  /**
   * Keeps the records this commit left in Processing, at the commit's versionstamp: the outcome
   * of a running job is written by this same instance, which then need not read the record again
   * (a stale entry fails its check and is read afresh).
   */
  #remember(batch: { change: Change }[], versionstamp: string): void {
    for (const { change } of batch) {
      for (const { id, record } of change.commits) {
        if (record.state !== "Processing") continue;
        this.#keep(id, { key: this.#key("job", id), value: record, versionstamp });
      }
    }
  }

  /** Keeps an entry in #known (emptied first when it has grown past its bound). */
  #keep(id: string, entry: Deno.KvEntry<JobRecord>): void {
    if (this.#known.size >= MAX_KNOWN) this.#known.clear();
    this.#known.set(id, entry);
  }

  async #commit(atomic: Deno.AtomicOperation): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    for (let attempt = 1;; attempt++) {
      try {
        return await atomic.commit();
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        if (/too large/i.test(message)) {
          throw new PayloadTooLargeError("an atomic write to Deno KV", MAX_BYTES, MAX_BYTES);
        }
        // Another process holds SQLite's write lock; KV does not wait for it, so we do.
        if (/database is locked|busy/i.test(message) && attempt < LOCK_RETRIES) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 * attempt, 50)));
          continue;
        }
        throw new StorageUnavailableError(this.address, message, error);
      }
    }
  }

  /** The index entries, lease and name entry a transition moves. */
  #moveIndexes(atomic: Deno.AtomicOperation, effects: Effects): void {
    const { removeState, addState, removeReady, addReady, removeDue, addDue } = effects;
    if (removeState) {
      atomic.delete(this.#key("state", removeState.state, removeState.at, removeState.id));
    }
    if (addState) atomic.set(this.#key("state", addState.state, addState.at, addState.id), null);
    if (removeReady) {
      atomic.delete(
        this.#key("ready", removeReady.queue, removeReady.rank, removeReady.at, removeReady.id),
      );
    }
    if (addReady) {
      atomic.set(this.#key("ready", addReady.queue, addReady.rank, addReady.at, addReady.id), null);
    }
    if (removeDue) atomic.delete(this.#key("due", removeDue.runAt, removeDue.id));
    if (addDue) atomic.set(this.#key("due", addDue.runAt, addDue.id), null);
    if (effects.dropLease && removeState) atomic.delete(this.#key("lease", removeState.id));
    if (effects.addName) {
      const { name, createdAt, id } = effects.addName;
      atomic.set(this.#key("name", name, -createdAt, id), null);
    }
  }

  /** Adds a transition's counter deltas (gauges, totals, batch counts, buckets, durations). */
  #count(sums: Sums, effects: Effects): void {
    for (const { queue, state, delta } of effects.gauges) {
      sums.add(this.#key("gauge", queue, state), delta);
    }
    for (const total of effects.totals) sums.add(this.#key("total", total), 1);
    if (effects.batch) {
      for (const { kind, delta } of effects.batch.deltas) {
        sums.add(this.#key("batchcount", effects.batch.id, kind), delta);
      }
    }
    if (effects.retrying !== 0) sums.add(this.#key("retrying"), effects.retrying);
    for (const hit of effects.buckets) {
      sums.add(this.#key("bucket", hit.resolution, hit.at, hit.kind), 1);
    }
    for (const { bucket, ms } of effects.durations) {
      sums.add(this.#key("duration", bucket), 1);
      sums.add(this.#key("duration_ms"), Math.max(0, Math.round(ms)));
    }
  }

  /**
   * The stored entries the commits expect, with their versionstamps. A claim follows the listing
   * of its ready queue, a promotion the listing of due jobs, an outcome this instance's claim:
   * entries still at the expected version are taken from #known instead of being read again (a
   * stale one fails its check and is read afresh by #commitBatch).
   */
  async #currentRecords(
    commits: readonly Commit[],
  ): Promise<Map<string, Deno.KvEntryMaybe<JobRecord>>> {
    const current = new Map<string, Deno.KvEntryMaybe<JobRecord>>();
    const unread: string[] = [];
    for (const { id, expect } of commits) {
      const listed = this.#known.get(id);
      this.#known.delete(id);
      if (listed && listed.value.version === expect) current.set(id, listed);
      else unread.push(id);
    }
    if (unread.length) {
      for (const [id, entry] of await this.#readRecords(unread)) current.set(id, entry);
    }
    return current;
  }

  async #readRecords(ids: readonly string[]): Promise<Map<string, Deno.KvEntryMaybe<JobRecord>>> {
    const keys = [...new Set(ids)].map((id) => this.#key("job", id));
    const entries = await this.#getMany<JobRecord>(keys);
    return new Map(entries.map((entry) => [entry.key[2] as string, entry]));
  }

  async #getMany<T>(keys: Key[]): Promise<Deno.KvEntryMaybe<T>[]> {
    const chunks: Promise<Deno.KvEntryMaybe<T>[]>[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY) {
      chunks.push(this.kv.getMany<T[]>(keys.slice(i, i + GET_MANY)));
    }
    return (await Promise.all(chunks)).flat();
  }

  async get(id: string): Promise<JobRecord | null> {
    this.#open();
    return checked(id, (await this.kv.get<JobRecord>(this.#key("job", id))).value);
  }

  async getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    this.#open();
    const entries = await this.#getMany<JobRecord>(ids.map((id) => this.#key("job", id)));
    return entries.map((entry, i) => checked(ids[i], entry.value));
  }

  /**
   * Records for a listing: an unreadable one is left out (get(id) reports it), not fatal. For a
   * ready queue or of due jobs they are also kept in #known for the write that follows.
   */
  async #listed(ids: readonly string[], remember = false): Promise<JobRecord[]> {
    const entries = await this.#getMany<JobRecord>(ids.map((id) => this.#key("job", id)));
    return entries.flatMap((entry, i) => {
      try {
        const record = checked(ids[i], entry.value);
        if (!record) return [];
        if (remember) this.#keep(ids[i], entry as Deno.KvEntry<JobRecord>);
        return record;
      } catch {
        return [];
      }
    });
  }

  async events(id: string): Promise<JobEvent[]> {
    this.#open();
    const events: JobEvent[] = [];
    for await (const entry of this.kv.list<JobEvent>({ prefix: this.#key("ev", id) })) {
      events.push(entry.value);
    }
    return events;
  }

  async list(query: ListQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 50;
    const selector = query.state !== undefined
      ? { prefix: this.#key("state", query.state) }
      : { prefix: this.#key("ready", query.queue) };
    const iterator = this.kv.list(selector, {
      limit,
      cursor: query.cursor,
      reverse: query.state !== undefined,
    });
    const ids: string[] = [];
    try {
      for await (const entry of iterator) ids.push(entry.key[entry.key.length - 1] as string);
    } catch (error) {
      if (query.cursor === undefined) throw error;
      throw new InvalidOptionError("cursor", query.cursor, "is not a cursor this storage returned");
    }
    const records = await this.#listed(ids, query.state === undefined);
    const page: Page = { jobs: records };
    if (ids.length === limit) page.cursor = iterator.cursor;
    return page;
  }

  async counts(): Promise<Counts> {
    this.#open();
    // Independent reads, sent together (the live dashboard asks every second).
    const list = (part: string) =>
      Array.fromAsync(this.kv.list<Deno.KvU64>({ prefix: this.#key(part) }));
    const [gauges, totalEntries, durationEntries, [sumMs, retryingSum]] = await Promise.all([
      list("gauge"),
      list("total"),
      list("duration"),
      this.kv.getMany<Deno.KvU64[]>([this.#key("duration_ms"), this.#key("retrying")]),
    ]);
    const states = zeroStates();
    const queues: Counts["queues"] = {};
    for (const entry of gauges) {
      const [, , queue, state] = entry.key as [string, string, string, State];
      const n = Number(BigInt.asIntN(64, entry.value.value));
      (queues[queue] ??= zeroStates())[state] = n;
      states[state] += n;
    }
    const totals = zeroTotals();
    for (const entry of totalEntries) {
      totals[entry.key[2] as keyof Counts["totals"]] = Number(entry.value.value);
    }
    const durations = zeroDurations();
    for (const entry of durationEntries) {
      durations.counts[entry.key[2] as number] = Number(entry.value.value);
    }
    durations.sumMs = Number(sumMs.value?.value ?? 0n);
    const retrying = Number(BigInt.asIntN(64, retryingSum.value?.value ?? 0n));
    return { states, queues, totals, durations, retrying };
  }

  async timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    this.#open();
    const start = bucketStart(resolution, from);
    const byAt = new Map<number, TimelinePoint>();
    for (let at = start; at <= to; at += RESOLUTIONS[resolution].ms) {
      byAt.set(at, { at, succeeded: 0, failed: 0 });
    }
    const entries = this.kv.list<Deno.KvU64>({
      start: this.#key("bucket", resolution, start),
      end: this.#key("bucket", resolution, to + 1),
    });
    for await (const entry of entries) {
      const point = byAt.get(entry.key[3] as number);
      if (point) point[entry.key[4] as "succeeded" | "failed"] = Number(entry.value.value);
    }
    return [...byAt.values()];
  }

  async due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]> {
    this.#open();
    const ids: string[] = [];
    if (query.state === "Scheduled") {
      const entries = this.kv.list(
        { start: this.#key("due"), end: this.#key("due", query.before + 1) },
        { limit: query.limit },
      );
      for await (const entry of entries) ids.push(entry.key[3] as string);
    } else {
      for await (const entry of this.kv.list<Lease>({ prefix: this.#key("lease") })) {
        if (ids.length >= query.limit) break;
        if (entry.value.until <= query.before) ids.push(entry.key[2] as string);
      }
    }
    return await this.#listed(ids, true);
  }

  async search(query: SearchQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 50;
    const prefix = query.namePrefix;
    const iterator = this.kv.list(
      { start: this.#key("name", prefix), end: this.#key("name", `${prefix}\uffff`) },
      { limit, cursor: query.cursor },
    );
    const ids: string[] = [];
    try {
      for await (const entry of iterator) ids.push(entry.key[4] as string);
    } catch (error) {
      if (query.cursor === undefined) throw error;
      throw new InvalidOptionError("cursor", query.cursor, "is not a cursor this storage returned");
    }
    const page: Page = {
      jobs: await this.#listed(ids),
    };
    if (ids.length === limit) page.cursor = iterator.cursor;
    return page;
  }

  async pausedQueues(): Promise<string[]> {
    this.#open();
    const queues: string[] = [];
    for await (const entry of this.kv.list({ prefix: this.#key("paused") })) {
      queues.push(entry.key[2] as string);
    }
    return queues;
  }

  async pauseQueue(queue: string, paused: boolean): Promise<void> {
    this.#open();
    if (paused) await this.kv.set(this.#key("paused", queue), true);
    else await this.kv.delete(this.#key("paused", queue));
  }

  async lease(id: string): Promise<Lease | null> {
    this.#open();
    return (await this.kv.get<Lease>(this.#key("lease", id))).value;
  }

  async heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    this.#open();
    const lost: string[] = [];
    // The server record and up to 99 leases go in one atomic write; more leases take more.
    const chunk = MAX_CHECKS - 1;
    for (let i = 0; i === 0 || i < beat.leases.length; i += chunk) {
      lost.push(...await this.#beatChunk(beat.leases.slice(i, i + chunk), beat, i === 0));
    }
    return { lost };
  }

  async #beatChunk(ids: string[], beat: Heartbeat, withServer: boolean): Promise<string[]> {
    for (let attempt = 1;; attempt++) {
      const entries = await this.#getMany<Lease>(ids.map((id) => this.#key("lease", id)));
      const atomic = this.kv.atomic();
      if (withServer) {
        const record = { ...beat.server, expiresAt: beat.server.lastSeen + beat.ttlMs };
        atomic.set(this.#key("server", beat.server.id), record, { expireIn: beat.ttlMs });
      }
      const lost: string[] = [];
      for (const entry of entries) {
        if (entry.value?.serverId !== beat.server.id) {
          lost.push(entry.key[2] as string);
          continue;
        }
        atomic.check(entry).set(entry.key, { serverId: beat.server.id, until: beat.leaseUntil });
      }
      // A check fails only when a job finished or moved meanwhile: read again and retry.
      if ((await this.#commit(atomic)).ok) return lost;
      if (attempt >= 50) {
        throw new StorageUnavailableError(this.address, "leases kept changing during a heartbeat");
      }
    }
  }

  async #commitOrThrow(atomic: Deno.AtomicOperation): Promise<void> {
    const outcome = await this.#commit(atomic);
    if (!outcome.ok) {
      throw new StorageUnavailableError(this.address, "an unchecked write was refused");
    }
  }

  async servers(): Promise<ServerInfo[]> {
    this.#open();
    const now = Date.now();
    const servers: ServerInfo[] = [];
    type Stored = ServerInfo & { expiresAt: number };
    for await (const entry of this.kv.list<Stored>({ prefix: this.#key("server") })) {
      const { expiresAt, ...info } = entry.value;
      if (expiresAt > now) servers.push(info);
    }
    return servers;
  }

  async removeServer(id: string): Promise<void> {
    this.#open();
    await this.kv.delete(this.#key("server", id));
  }

  readonly recurring: RecordStore = this.#store("recurring");
  readonly batches: RecordStore = this.#store("batch");

  #store(room: string): RecordStore {
    return {
      get: async (id) => {
        this.#open();
        return (await this.kv.get<RecurringRecord>(this.#key(room, id))).value;
      },
      list: async () => {
        this.#open();
        const all: RecurringRecord[] = [];
        for await (const entry of this.kv.list<RecurringRecord>({ prefix: this.#key(room) })) {
          all.push(entry.value);
        }
        return all;
      },
      put: async (record, expect) => {
        this.#open();
        const entry = await this.kv.get<RecurringRecord>(this.#key(room, record.id));
        if ((entry.value?.version ?? 0) !== expect) return false;
        return (await this.#commit(this.kv.atomic().check(entry).set(entry.key, record))).ok;
      },
      delete: async (id, expect) => {
        this.#open();
        const entry = await this.kv.get<RecurringRecord>(this.#key(room, id));
        if (!entry.value || entry.value.version !== expect) return false;
        return (await this.#commit(this.kv.atomic().check(entry).delete(entry.key))).ok;
      },
    };
  }

  async batchCounts(id: string): Promise<BatchCounts> {
    this.#open();
    const counts = zeroBatchCounts();
    for await (const entry of this.kv.list<Deno.KvU64>({ prefix: this.#key("batchcount", id) })) {
      counts[entry.key[3] as keyof BatchCounts] = Number(BigInt.asIntN(64, entry.value.value));
    }
    return counts;
  }

  async rebuild(derive: Derive): Promise<RebuildResult> {
    this.#open();
    const leases = new Map<string, Lease>();
    for await (const entry of this.kv.list<Lease>({ prefix: this.#key("lease") })) {
      leases.set(entry.key[2] as string, entry.value);
    }
    const rooms = [
      "job",
      "state",
      "ready",
      "due",
      "lease",
      "gauge",
      "total",
      "bucket",
      "name",
      "duration",
    ];
    for (const room of [...rooms, "duration_ms", "retrying", "batchcount"]) {
      await this.#deletePrefix(this.#key(room));
    }
    // Counters are summed in memory and written once each: a rebuild is one writer, offline.
    const sums = new Sums();
    const sink = new BufferedWriter(this.kv, (a) => this.#commitOrThrow(a));
    let jobs = 0;
    const skipped: string[] = [];
    const rebuildJob = async (id: string, events: JobEvent[]) => {
      const derived = derive(id, events);
      if (!derived) {
        skipped.push(id);
        return;
      }
      const { record, lease } = derived;
      const writes: Array<(a: Deno.AtomicOperation) => void> = [];
      writes.push((a) => a.set(this.#key("job", id), record));
      const effects = effectsOf(null, { id, expect: 0, events, record });
      const now = Date.now();
      this.#count(sums, {
        ...effects,
        buckets: effects.buckets.filter((b) => b.at >= now - RESOLUTIONS[b.resolution].keepMs),
      });
      writes.push((a) => this.#moveIndexes(a, effects));
      if (lease) {
        const kept = leases.get(id);
        const value = kept?.serverId === lease.serverId ? kept : lease;
        writes.push((a) => a.set(this.#key("lease", id), value));
      }
      await sink.add(writes, 2 * JSON.stringify(record).length);
      jobs++;
    };
    let currentId: string | undefined;
    let events: JobEvent[] = [];
    for await (const entry of this.kv.list<JobEvent>({ prefix: this.#key("ev") })) {
      const id = entry.key[2] as string;
      if (id !== currentId) {
        if (currentId !== undefined) await rebuildJob(currentId, events);
        currentId = id;
        events = [];
      }
      events.push(entry.value);
    }
    if (currentId !== undefined) await rebuildJob(currentId, events);
    for (const { key, delta } of sums.values()) {
      await sink.add([(a) => a.set(key, new Deno.KvU64(u64(delta)))]);
    }
    await sink.flush();
    return { jobs, skipped };
  }

  async #deletePrefix(prefix: Key): Promise<void> {
    const sink = new BufferedWriter(this.kv, (a) => this.#commitOrThrow(a));
    for await (const entry of this.kv.list({ prefix })) {
      await sink.add([(a) => a.delete(entry.key)]);
    }
    await sink.flush();
  }

  async prune(now: number): Promise<void> {
    this.#open();
    const sink = new BufferedWriter(this.kv, (a) => this.#commitOrThrow(a));
    for (const resolution of Object.keys(RESOLUTIONS) as Resolution[]) {
      const entries = this.kv.list({
        start: this.#key("bucket", resolution),
        end: this.#key("bucket", resolution, now - RESOLUTIONS[resolution].keepMs),
      });
      for await (const entry of entries) await sink.add([(a) => a.delete(entry.key)]);
    }
    await sink.flush();
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#listeners.clear();
      this.#watcher?.close();
      this.kv.close();
    }
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw new StorageUnavailableError(this.address, "the storage was closed");
  }
}

/** Packs unchecked writes into atomics of a bounded number of mutations (rebuild, pruning). */
class BufferedWriter {
  #ops: Array<(a: Deno.AtomicOperation) => void> = [];
  #bytes = 0;
  constructor(
    private kv: Deno.Kv,
    private commit: (atomic: Deno.AtomicOperation) => Promise<void>,
  ) {}

  /** Adds writes (each at most a few mutations) of about `bytes` in all. */
  async add(ops: Array<(a: Deno.AtomicOperation) => void>, bytes = 100): Promise<void> {
    if (this.#bytes + bytes > MAX_BYTES) await this.flush();
    this.#ops.push(...ops);
    this.#bytes += bytes;
    if (this.#ops.length >= 60) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#ops.length) return;
    const atomic = this.kv.atomic();
    for (const op of this.#ops) op(atomic);
    this.#ops = [];
    this.#bytes = 0;
    await this.commit(atomic);
  }
}

/** Counter deltas added up per key, so that each key is written once. */
class Sums {
  #deltas = new Map<string, { key: Key; delta: number }>();

  add(key: Key, delta: number): void {
    const name = JSON.stringify(key);
    const entry = this.#deltas.get(name);
    if (entry) entry.delta += delta;
    else this.#deltas.set(name, { key, delta });
  }

  values(): IterableIterator<{ key: Key; delta: number }> {
    return this.#deltas.values();
  }
}

/** A delta as a KV u64 (sums wrap modulo 2^64, so a negative delta subtracts). */
function u64(delta: number): bigint {
  return (U64 + BigInt(delta)) % U64;
}

function checked(id: string, value: unknown): JobRecord | null {
  if (value === null || value === undefined) return null;
  const record = value as JobRecord;
  if (typeof record !== "object" || record.id !== id || typeof record.state !== "string") {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  return record;
}
