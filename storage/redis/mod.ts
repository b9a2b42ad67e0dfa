/**
 * @module
 * The Redis backend: every group of transitions is one call of the append script
 * (`lua/append.ts`), with each job's log in a Redis list and projections in hashes and sorted
 * sets (layout in `keys.ts`). One lean RESP connection (`connection.ts`) carries everything;
 * wake-ups (pub/sub on `{<prefix>}:wake`) come over a second one (`subscriber.ts`). On a Redis
 * Cluster the connection is the cluster-aware form (`cluster.ts`): the master owning the
 * prefix's hash slot carries everything.
 */

import type { StatPoint, StatQuery } from "../stats.ts";
import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import { byId } from "../record_store.ts";
import type {
  AppendResult,
  BatchCounts,
  Change,
  ClaimBuilder,
  ClaimQuery,
  ClaimResult,
  Counts,
  Derive,
  FinishedQuery,
  Heartbeat,
  LeasePage,
  ListQuery,
  Notifier,
  Page,
  RebuildResult,
  RecordStore,
  RecurringRecord,
  Removal,
  RemoveResult,
  Resolution,
  SearchQuery,
  ServerInfo,
  Storage,
  TimelinePoint,
} from "../storage.ts";
import { InvalidOptionError } from "../errors.ts";
import { closedStorage, message, unavailable } from "../unavailable.ts";
import { append } from "./append.ts";
import { Claims } from "./claim.ts";
import { ClusterConnection, keySlot } from "./cluster.ts";
import { ConnectionError, type RedisConnection, RespConnection } from "./connection.ts";
import { command, fields, type RedisDb, script } from "./context.ts";
import { globEscape, keyPrefix, keysOf } from "./keys.ts";
import { prune, rebuild, scan, unlink } from "./maintenance.ts";
import { type Reply, ReplyError } from "./protocol.ts";
import * as reads from "./reads.ts";
import { finished, MAX_REMOVALS, remove } from "./removal.ts";
import { Subscriber, type SubscriberOptions } from "./subscriber.ts";
import { RedisFeed } from "./feed.ts";
import { parseRedisUrl } from "./url.ts";

/** Longest wait for a connection, and for an answer. */
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 30_000;

/** Options of the Redis backend. */
export interface RedisStorageOptions {
  /** Key prefix (default `"taskflow"`); a `?prefix=` in the URL takes precedence. */
  prefix?: string;
}

/**
 * Storage on a Redis server (6.2 or later) or a Redis Cluster. Every key of a storage carries
 * its prefix as a hash tag, so on a cluster a storage lives on the one master owning its slot;
 * several prefixes spread over the masters.
 */
export class RedisStorage implements Storage {
  readonly limits = { args: 512 * 1024, result: 512 * 1024, maxRemovals: MAX_REMOVALS };
  /**
   * Calls run in order on one pipelined connection: a client's second group goes out behind
   * the first, so Redis runs one while the next is built (an fsync-bound backend gains nothing).
   */
  readonly appendPipeline = 2;
  readonly orderedCalls = true;
  readonly notifier: Notifier;
  /** Appends in commit order: the `events` stream. */
  readonly feed: RedisFeed;
  /** The address without credentials, e.g. `redis://127.0.0.1:6379/0`. */
  readonly address: string;
  /** The key prefix (without its trailing colon). */
  readonly prefix: string;
  /** What every key of this storage starts with: the prefix as a hash tag, `{<prefix>}:`. */
  readonly keyPrefix: string;
  #db: RedisDb;
  #options: SubscriberOptions;
  #subscriber?: Subscriber;
  #listeners = new Set<() => void>();
  #closed = false;
  /** The next ready jobs each list of queues' last claim saw, and the claims in flight. */
  #claims = new Claims();

  private constructor(
    conn: RedisConnection,
    options: SubscriberOptions,
    names: { address: string; prefix: string },
  ) {
    this.#options = options;
    this.address = names.address;
    this.prefix = names.prefix;
    this.keyPrefix = keyPrefix(names.prefix);
    this.#db = { conn, keys: keysOf(names.prefix) };
    this.feed = new RedisFeed(this.#db, (work) => this.#run(work), options);
    this.notifier = {
      listen: (wake) => {
        this.#listeners.add(wake);
        this.#subscribe();
        return () => this.#listeners.delete(wake);
      },
    };
  }

  /**
   * Connects to `redis://[user:pass@]host[:port][/db][?prefix=name]` (or `rediss://` for TLS),
   * or to a cluster: `redis+cluster://host:port,host:port/?prefix=name` (`rediss+cluster://`).
   * Fails with `StorageUnavailableError` when the server does not answer.
   */
  static async open(url: string, options: RedisStorageOptions = {}): Promise<RedisStorage> {
    const { connection, address, prefix, nodes } = parseRedisUrl(url, options.prefix);
    const resp = {
      ...connection,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      timeoutMs: COMMAND_TIMEOUT_MS,
    };
    let storage: RedisStorage;
    if (nodes) {
      const cluster = new ClusterConnection(nodes, keySlot(keyPrefix(prefix)), resp);
      // Wake-ups are PUBLISHed, which a cluster delivers on every node; the subscriber follows
      // the owner so that it lives as long as the storage's own node does.
      const subscriber = { ...resp, locate: () => cluster.owner() };
      storage = new RedisStorage(cluster, subscriber, { address, prefix });
    } else {
      storage = new RedisStorage(new RespConnection(resp), resp, { address, prefix });
    }
    try {
      await storage.#db.conn.connect();
      // A server that wants a password answers its first command with NOAUTH: ask now.
      await storage.#db.conn.call(["PING"]);
    } catch (error) {
      storage.#db.conn.close();
      throw storage.#rejected(error) ?? storage.#unavailable(error);
    }
    return storage;
  }

  /**
   * Sends one command on the storage's connection and resolves with its reply (`T` names the
   * reply's shape; tests and tools read keys with it).
   */
  command<T = Reply>(...args: (string | number)[]): Promise<T> {
    return this.#run(() => command(this.#db, ...args) as Promise<T>);
  }

  /** Deletes every key under this storage's prefix (tests and benchmarks clean up with it). */
  deleteAllKeys(): Promise<number> {
    return this.#run(async () =>
      await unlink(this.#db, await scan(this.#db, `${globEscape(this.keyPrefix)}*`))
    );
  }

  /** Subscribes to wake-ups on a second connection (a subscribed connection sends nothing else). */
  #subscribe(): void {
    if (this.#subscriber || this.#closed) return;
    this.#subscriber = new Subscriber(
      { ...this.#options, timeoutMs: Infinity },
      this.#db.keys.wake,
      (message) => {
        // A single new job comes with its record: the next claim need not read it first.
        if (message.startsWith("{")) this.#claims.offer(message);
        for (const listener of this.#listeners) listener();
      },
    );
  }

  /** Runs `work`, turning client errors into `StorageUnavailableError`. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedStorage(this.address);
    try {
      return await work();
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /**
   * An error reply while connecting (a database index out of range, a wrong password, NOAUTH)
   * as a configuration error: waiting would not make the server accept the same URL.
   */
  #rejected(error: unknown): Error | undefined {
    const rejected = error instanceof ConnectionError && error.code === "rejected";
    if (!rejected && !(error instanceof ReplyError)) return undefined;
    const why = rejected ? error.message : `the server rejected PING: ${message(error)}`;
    return new InvalidOptionError("storage", this.address, why);
  }

  /** The typed error for a failed call; a lost connection is named as such. */
  #unavailable(error: unknown): Error {
    const down = error instanceof ConnectionError
      ? `the connection is down (${error.message})`
      : undefined;
    return unavailable(this.address, error, down);
  }

  append(changes: readonly Change[]): Promise<AppendResult[]> {
    return this.#run(async () => {
      const { results } = await append(this.#db, changes);
      if (this.feed.listening) {
        this.feed.wake(changes.flatMap((c, i) => results[i].ok ? c.commits.map((m) => m.id) : []));
      }
      return results;
    });
  }

  /**
   * Claims with one Lua call once warm: the previous call returned the records of the next ready
   * jobs, lib builds their claim commits, and the call applies those still at the head of the
   * queues (compare-and-set on each) and returns the next candidates (see `claim.ts`).
   */
  claim(query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
    return this.#run(() => this.#claims.claim(this.#db, query, build));
  }

  get(id: string): Promise<JobRecord | null> {
    return this.#run(() => reads.get(this.#db, id));
  }

  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    return this.#run(() => reads.getMany(this.#db, ids));
  }

  uniqueHolder(key: string): Promise<string | null> {
    return this.#run(async () =>
      await command(this.#db, "HGET", this.#db.keys.unique, key) as string | null
    );
  }

  events(id: string): Promise<JobEvent[]> {
    return this.#run(() => reads.events(this.#db, id));
  }

  list(query: ListQuery): Promise<Page> {
    return this.#run(() => reads.list(this.#db, query));
  }

  finished(query: FinishedQuery): Promise<Page> {
    return this.#run(() => finished(this.#db, query));
  }

  remove(removals: readonly Removal[]): Promise<RemoveResult> {
    return this.#run(() => remove(this.#db, removals));
  }

  counts(): Promise<Counts> {
    return this.#run(() => reads.counts(this.#db));
  }

  search(query: SearchQuery): Promise<Page> {
    return this.#run(() => reads.search(this.#db, query));
  }

  pausedQueues(): Promise<string[]> {
    return this.#run(async () =>
      (await command(this.#db, "SMEMBERS", this.#db.keys.paused) as string[]).sort()
    );
  }

  pauseQueue(queue: string, paused: boolean): Promise<void> {
    return this.#run(async () => {
      await command(this.#db, paused ? "SADD" : "SREM", this.#db.keys.paused, queue);
    });
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    return this.#run(() => reads.timeline(this.#db, { resolution, from, to }));
  }

  stats(query: StatQuery): Promise<StatPoint[]> {
    return this.#run(() => reads.stats(this.#db, query));
  }

  due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]> {
    return this.#run(() => reads.due(this.#db, query));
  }

  lease(id: string): Promise<Lease | null> {
    return this.#run(() => reads.lease(this.#db, id));
  }

  leases(query: { cursor?: string; limit?: number }): Promise<LeasePage> {
    return this.#run(() => reads.leases(this.#db, query));
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    return this.#run(async () => {
      const k = this.#db.keys;
      const lost = await script(this.#db, "heartbeat", [
        k.servers,
        k.serverExpiry,
        k.lease,
        k.leases,
        beat.server.id,
        JSON.stringify(beat.server),
        beat.ttlMs,
        beat.leaseUntil,
        ...beat.leases,
      ]) as string[];
      return { lost };
    });
  }

  servers(): Promise<ServerInfo[]> {
    return this.#run(() => reads.servers(this.#db));
  }

  removeServer(id: string): Promise<void> {
    return this.#run(async () => {
      const k = this.#db.keys;
      await this.#db.conn.callMany([
        ["MULTI"],
        ["HDEL", k.servers, id],
        ["ZREM", k.serverExpiry, id],
        ["EXEC"],
      ]);
    });
  }

  readonly recurring: RecordStore = this.#store(() => this.#db.keys.recurring);
  readonly batches: RecordStore = this.#store(() => this.#db.keys.batches);
  readonly flows: RecordStore = this.#store(() => this.#db.keys.flows);
  readonly settings: RecordStore = this.#store(() => this.#db.keys.settings);

  #store(hash: () => string): RecordStore {
    return {
      get: (id) =>
        this.#run(async () => {
          const json = await command(this.#db, "HGET", hash(), id) as string | null;
          return json === null ? null : parsedStoredRecord(id, json);
        }),
      list: () =>
        this.#run(async () => {
          const all = Object.entries(fields(await command(this.#db, "HGETALL", hash())));
          return byId(all.map(([id, json]) => parsedStoredRecord(id, json)));
        }),
      put: (record, expect) =>
        this.#run(async () => {
          const args = [hash(), record.id, expect, JSON.stringify(record)];
          return await script(this.#db, "recurring", args) === 1;
        }),
      delete: (id, expect) =>
        this.#run(async () => await script(this.#db, "recurring", [hash(), id, expect, ""]) === 1),
    };
  }

  batchCounts(id: string): Promise<BatchCounts> {
    return this.#run(() => reads.batchCounts(this.#db, id));
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    return this.#run(() => rebuild(this.#db, derive));
  }

  prune(now: number): Promise<void> {
    return this.#run(() => prune(this.#db, now));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#listeners.clear();
    this.#subscriber?.close();
    this.feed.close();
    this.#db.conn.close();
    return Promise.resolve();
  }
}

/**
 * A stored record's JSON; one that does not parse comes back as an empty record of version 0, so
 * the caller's shape check reports it and a compare-and-set on version 0 can replace it.
 */
function parsedStoredRecord(id: string, json: string): RecurringRecord {
  try {
    return JSON.parse(json) as RecurringRecord;
  } catch {
    return { id, version: 0 } as RecurringRecord;
  }
}
