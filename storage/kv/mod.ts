/**
 * @module
 * The Deno KV backend: a local SQLite file, `:memory:`, Deno Deploy's KV or KV Connect.
 * Writes are fsync-bound, so every write path takes many commits and packs them into as few
 * atomic operations as KV's limits allow.
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import { badCursor, encodeCursor, unwrapKvCursor } from "../cursor.ts";
import { zeroBatchCounts } from "../effects.ts";
import { StorageUnavailableError } from "../errors.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Change,
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
  type Removal,
  type RemoveResult,
  type Resolution,
  type SearchQuery,
  type ServerInfo,
  type Storage,
  type TimelinePoint,
} from "../storage.ts";
import type { StatPoint, StatQuery } from "../stats.ts";
import { checkedRecord } from "../stored_record.ts";
import { closedStorage, unavailable } from "../unavailable.ts";
import { counts, stats, timeline } from "./counters.ts";
import { KnownRecords } from "./known.ts";
import { type KvDb, logOf, prune, rebuild } from "./maintenance.ts";
import type { Key } from "./projections.ts";
import { MAX_REMOVALS, remove } from "./removal.ts";
import { KvWakeups } from "./wakeups.ts";
import { isRow, storedRecord } from "./rows.ts";
import { getMany, KvWriter } from "./writer.ts";
import { KvFeed } from "./feed.ts";
import { heartbeat, leaseOfJob, leasePage, listedLeases, recordStore, servers } from "./servers.ts";
import { FeedWakeups } from "./feed_wakeups.ts";

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
  /** Event feed entries kept (default `KV_FEED_WINDOW`, 10,000 appends). */
  feedWindow?: number;
}

/** Storage on a Deno KV database. */
export class KvStorage implements Storage {
  readonly limits = { args: 30 * 1024, result: 16 * 1024, maxRemovals: MAX_REMOVALS };
  readonly notifier: Notifier;
  /** Appends in commit order; a handler's own writes may join an outcome's commit. */
  readonly feed: KvFeed;
  readonly atomicExtras = true;
  readonly address: string;
  readonly kv: Deno.Kv;
  #p: string;
  #closed = false;
  #wakeups: KvWakeups;
  #feedWakeups = new FeedWakeups();
  /** Records kept from ready and due listings for the claims and promotions that follow. */
  #known = new KnownRecords();
  #writer: KvWriter;
  #db: KvDb;

  /** Wraps an open `Deno.Kv`; `address` names it in messages. */
  constructor(kv: Deno.Kv, address: string, options: KvOptions = {}) {
    this.kv = kv;
    this.address = address;
    this.#p = options.prefix ?? "taskflow";
    this.#wakeups = new KvWakeups(kv, options.queueWakeups ?? false);
    this.notifier = { listen: (wake) => this.#wakeups.listen(wake) };
    const key = this.#key.bind(this);
    this.feed = new KvFeed(kv, key, { window: options.feedWindow, wakeups: this.#feedWakeups });
    const parts = { wakeups: this.#wakeups, known: this.#known, feed: this.feed };
    this.#writer = new KvWriter(kv, address, key, parts);
    this.#db = { kv, key, writer: this.#writer, known: this.#known };
  }

  /** Opens the database at `path` (absent: Deno's default database, the project's KV on Deploy). */
  static async open(
    path: string | undefined,
    address: string,
    options?: KvOptions,
  ): Promise<KvStorage> {
    // Deno ships KV behind a flag; without it the call below is "not a function".
    if (typeof Deno.openKv !== "function") {
      throw new StorageUnavailableError(
        address,
        'Deno KV is not enabled: run deno with --unstable-kv, or add "unstable": ["kv"] to ' +
          "deno.json (or use memory: or a redis:// URL)",
      );
    }
    try {
      const storage = new KvStorage(await Deno.openKv(path), address, options);
      if (path && path !== ":memory:" && !/^https?:/.test(path)) {
        await storage.#wakeups.useDirectory(path);
        await storage.#feedWakeups.useDirectory(path);
      }
      return storage;
    } catch (error) {
      throw unavailable(address, error);
    }
  }

  #key(...parts: Deno.KvKeyPart[]): Key {
    return [this.#p, ...parts];
  }

  append(changes: readonly Change[]): Promise<AppendResult[]> {
    this.#open();
    return this.#writer.append(changes);
  }

  async get(id: string): Promise<JobRecord | null> {
    this.#open();
    return checkedRecord(id, storedRecord(id, (await this.kv.get(this.#key("job", id))).value));
  }

  async getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    this.#open();
    const entries = await getMany<unknown>(this.kv, ids.map((id) => this.#key("job", id)));
    return entries.map((entry, i) => checkedRecord(ids[i], storedRecord(ids[i], entry.value)));
  }

  /**
   * Records for a listing: an unreadable one is left out (get(id) reports it), not fatal. For a
   * ready queue, of due or of finished jobs they are also kept in #known for the write that
   * follows.
   */
  async #listed(ids: readonly string[], remember = false): Promise<JobRecord[]> {
    const entries = await this.#rows(ids);
    return entries.flatMap((entry, i) => {
      try {
        const record = checkedRecord(ids[i], storedRecord(ids[i], entry.value));
        if (!record) return [];
        if (remember && isRow(entry.value)) {
          const { key, versionstamp, value: row } = entry;
          this.#known.keep(ids[i], { key, versionstamp, row, record });
        }
        return record;
      } catch {
        return [];
      }
    });
  }

  /**
   * The rows of `ids`. Jobs listed together (a ready queue's head, a due page) were mostly
   * created one after another, and ids sort by creation: one range read usually finds them all,
   * where getMany takes a read per ten keys. What the range misses is read by key.
   */
  async #rows(ids: readonly string[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
    const keys = ids.map((id) => this.#key("job", id));
    if (ids.length <= 10) return await getMany<unknown>(this.kv, keys);
    const sorted = [...ids].sort();
    const wanted = new Set(ids);
    const found = new Map<string, Deno.KvEntryMaybe<unknown>>();
    // Twice the ids at most: a range spread over other jobs' rows is not read to its end.
    const range = this.kv.list({
      start: this.#key("job", sorted[0]),
      end: this.#key("job", `${sorted[sorted.length - 1]}\0`),
    }, { limit: 2 * ids.length });
    for await (const entry of range) {
      const id = entry.key[2] as string;
      if (wanted.has(id)) found.set(id, entry);
    }
    const missing = keys.filter((_, i) => !found.has(ids[i]));
    for (const entry of await getMany<unknown>(this.kv, missing)) {
      found.set(entry.key[2] as string, entry);
    }
    return ids.map((id) => found.get(id)!);
  }

  async uniqueHolder(key: string): Promise<string | null> {
    this.#open();
    return (await this.kv.get<string>(this.#key("unique", key))).value;
  }

  async events(id: string): Promise<JobEvent[]> {
    this.#open();
    const { value } = await this.kv.get(this.#key("job", id));
    return isRow(value) ? await logOf(this.#db, id, value) : [];
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
      throw badCursor(query.cursor);
    }
    const records = await this.#listed(ids, query.state === undefined);
    const page: Page = { jobs: records };
    if (ids.length === limit) page.cursor = iterator.cursor;
    return page;
  }

  async finished(query: FinishedQuery): Promise<Page> {
    this.#open();
    const limit = query.limit ?? 100;
    const cursor = unwrapKvCursor(query.cursor);
    const iterator = this.kv.list({
      start: this.#key("state", query.state),
      end: this.#key("state", query.state, Math.floor(query.before) + 1),
    }, { limit, cursor });
    const ids: string[] = [];
    // The jobs this instance finished (or listed) are not read again: see `KnownRecords`.
    const known = new Map<string, JobRecord>();
    let newest: number | undefined;
    try {
      for await (const { key } of iterator) {
        const id = key[key.length - 1] as string;
        newest = key[key.length - 2] as number;
        ids.push(id);
        const record = this.#known.finished(id, query.state, newest)?.record;
        if (record) known.set(id, record);
      }
    } catch (error) {
      if (query.cursor === undefined) throw error;
      throw badCursor(query.cursor);
    }
    if (newest !== undefined) this.#known.listed(newest);
    // Kept for the removal that usually follows (retention's scan).
    const read = await this.#listed(ids.filter((id) => !known.has(id)), true);
    const byId = new Map(read.map((record) => [record.id, record]));
    const jobs = ids.flatMap((id) => known.get(id) ?? byId.get(id) ?? []);
    const page: Page = { jobs };
    if (ids.length === limit) page.cursor = encodeCursor([iterator.cursor]);
    return page;
  }

  remove(removals: readonly Removal[]): Promise<RemoveResult> {
    this.#open();
    return remove(this.#db, removals);
  }

  counts(): Promise<Counts> {
    this.#open();
    return counts(this.kv, this.#key.bind(this));
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    this.#open();
    return timeline(this.kv, this.#key.bind(this), { resolution, from, to });
  }

  stats(query: StatQuery): Promise<StatPoint[]> {
    this.#open();
    return stats(this.kv, this.#key.bind(this), query);
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
      const listing = this.kv.list<Lease | null>({ prefix: this.#key("state", "Processing") });
      for (const lease of await listedLeases(this.#db, listing)) {
        if (ids.length >= query.limit) break;
        if (lease.until <= query.before) ids.push(lease.id);
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
      throw badCursor(query.cursor);
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

  lease(id: string): Promise<Lease | null> {
    this.#open();
    return leaseOfJob(this.#db, id);
  }

  leases(query: { cursor?: string; limit?: number }): Promise<LeasePage> {
    this.#open();
    return leasePage(this.#db, query);
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    this.#open();
    return heartbeat(this.#db, this.address, beat);
  }

  servers(): Promise<ServerInfo[]> {
    this.#open();
    return servers(this.#db);
  }

  async removeServer(id: string): Promise<void> {
    this.#open();
    await this.kv.delete(this.#key("server", id));
  }

  readonly recurring: RecordStore = this.#store("recurring");
  readonly batches: RecordStore = this.#store("batch");
  readonly flows: RecordStore = this.#store("flow");
  readonly settings: RecordStore = this.#store("setting");

  #store(room: string): RecordStore {
    return recordStore(room, () => {
      this.#open();
      return this.#db;
    });
  }

  async batchCounts(id: string): Promise<BatchCounts> {
    this.#open();
    const counts = zeroBatchCounts();
    for await (const entry of this.kv.list<Deno.KvU64>({ prefix: this.#key("batchcount", id) })) {
      counts[entry.key[3] as keyof BatchCounts] = Number(BigInt.asIntN(64, entry.value.value));
    }
    return counts;
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    this.#open();
    return rebuild(this.#db, derive);
  }

  prune(now: number): Promise<void> {
    this.#open();
    return prune(this.#db, now);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#wakeups.close();
      this.#feedWakeups.close();
      this.kv.close();
    }
    return Promise.resolve();
  }

  #open(): void {
    if (this.#closed) throw closedStorage(this.address);
  }
}
