/**
 * @module
 * The PostgreSQL backend: an append-only `events` table is the log; the `jobs` table, counters
 * (spread over slots, summed on read), time and statistics buckets, unique keys and the feed are
 * projections written in the same transaction by one call of the `append` function (`schema.ts`).
 * Claims take batches with `FOR UPDATE SKIP LOCKED`; wake-ups come over LISTEN/NOTIFY. Jobs can be
 * created inside the caller's own transaction ({@link PostgresStorage.inTransaction}).
 */

import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import { InvalidOptionError } from "../errors.ts";
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
  Removal,
  RemoveResult,
  Resolution,
  SearchQuery,
  ServerInfo,
  Storage,
  TimelinePoint,
} from "../storage.ts";
import type { StatPoint, StatQuery } from "../stats.ts";
import { closedStorage, message, unavailable } from "../unavailable.ts";
import { append } from "./append.ts";
import { claim } from "./claim.ts";
import { pg, type PgDb, type Queryable } from "./db.ts";
import { PG_FEED_WINDOW, PostgresFeed } from "./feed.ts";
import { pruneBuckets, rebuild } from "./maintenance.ts";
import * as reads from "./reads.ts";
import { recordStore } from "./records.ts";
import { MAX_REMOVALS, remove } from "./removal.ts";
import { channelOf, migrate } from "./schema.ts";
import { parsePostgresUrl } from "./url.ts";
import { Listener } from "./wakeups.ts";

/** Longest wait for a connection. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Appends between two trims of the feed's window (per process). */
const TRIM_EVERY = 1_000;
/** Append calls in flight at once from one client (each on a pooled connection of its own). */
const APPEND_PIPELINE = 2;

/** Options of the PostgreSQL backend. */
export interface PostgresStorageOptions {
  /** Schema holding the tables (default `"taskflow"`); a `?schema=` in the URL wins. */
  schema?: string;
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** Feed entries kept (default 100,000). */
  feedWindow?: number;
}

/** What a storage and its transactional views share. */
interface Shared {
  pool: pg.Pool;
  config: pg.ClientConfig;
  schema: string;
  address: string;
  feedWindow: number;
  appends: number;
  listeners: Set<() => void>;
  listener?: Listener;
  closed: boolean;
}

/** Storage on a PostgreSQL server (13 or later), in one schema of one database. */
export class PostgresStorage implements Storage {
  readonly limits = { args: 512 * 1024, result: 512 * 1024, maxRemovals: MAX_REMOVALS };
  /**
   * Calls on the pool run on connections of their own, so a second group is written while the
   * first commits (its fsync) and the server uses a second core; a user's transaction is one
   * connection.
   */
  readonly appendPipeline: number;
  readonly notifier: Notifier;
  /** Appends in commit order: the `feed` table. */
  readonly feed: PostgresFeed;
  /** The address without credentials, e.g. `postgres://127.0.0.1:5432/app`. */
  readonly address: string;
  /** The schema holding the tables. */
  readonly schema: string;
  /** Recurring job definitions. */
  readonly recurring: RecordStore;
  /** Batch records. */
  readonly batches: RecordStore;
  /** Flow records. */
  readonly flows: RecordStore;
  /** Settings records. */
  readonly settings: RecordStore;
  #shared: Shared;
  #db: PgDb;

  private constructor(shared: Shared, q: Queryable, inTransaction: boolean) {
    this.#shared = shared;
    this.address = shared.address;
    this.schema = shared.schema;
    this.appendPipeline = inTransaction ? 1 : APPEND_PIPELINE;
    this.#db = {
      pool: shared.pool,
      q,
      inTransaction,
      s: `"${shared.schema}"`,
      schema: shared.schema,
    };
    const run = <T>(work: () => Promise<T>) => this.#run(work);
    this.feed = new PostgresFeed(this.#db, run);
    this.recurring = recordStore(this.#db, "recurring", run);
    this.batches = recordStore(this.#db, "batches", run);
    this.flows = recordStore(this.#db, "flows", run);
    this.settings = recordStore(this.#db, "settings", run);
    this.notifier = {
      listen: (wake) => {
        shared.listeners.add(wake);
        shared.listener ??= new Listener(shared.config, channelOf(shared.schema), () => {
          for (const listener of shared.listeners) listener();
        });
        return () => shared.listeners.delete(wake);
      },
    };
  }

  /**
   * Connects to `postgres://[user:pass@]host[:port]/db[?schema=name]`, creates the schema and
   * applies its migrations. Fails with `StorageUnavailableError` when the server does not answer.
   */
  static async open(url: string, options: PostgresStorageOptions = {}): Promise<PostgresStorage> {
    const { connection, address, schema } = parsePostgresUrl(url, options.schema);
    const config: pg.ClientConfig = {
      ...connection,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      application_name: "taskflow",
    };
    const pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 });
    // A connection's error (the server went away, pg_terminate_backend) surfaces on its next
    // query instead. Every client keeps a listener for its whole life: a FATAL arriving while it
    // is handed out, between the pool's listener and the borrower's, would otherwise be uncaught
    // and end the process.
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    const shared: Shared = {
      pool,
      config,
      schema,
      address,
      feedWindow: options.feedWindow ?? PG_FEED_WINDOW,
      appends: 0,
      listeners: new Set(),
      closed: false,
    };
    const storage = new PostgresStorage(shared, pool, false);
    try {
      await migrate(pool, schema);
    } catch (error) {
      await pool.end().catch(() => {});
      throw unavailable(address, error, `cannot open the schema ${schema}: ${message(error)}`);
    }
    return storage;
  }

  /**
   * A view of this storage whose writes and reads go through `transaction`, a `pg` client
   * (`Client` or `PoolClient`) on which the caller ran BEGIN: jobs created through it exist if
   * and only if that transaction commits (their wake-ups are sent at its commit).
   */
  inTransaction(transaction: unknown): Storage {
    const q = transaction as Queryable;
    if (typeof q !== "object" || q === null || typeof q.query !== "function") {
      throw new InvalidOptionError(
        "transaction",
        transaction,
        "must be a pg Client or PoolClient inside BEGIN (storage postgres)",
      );
    }
    return new PostgresStorage(this.#shared, q, true);
  }

  /** Drops the schema with every table of it (tests and benchmarks clean up with it). */
  dropSchema(): Promise<void> {
    return this.#run(async () => {
      await this.#db.q.query(`drop schema if exists ${this.#db.s} cascade`);
    });
  }

  /** Runs one SQL statement on the storage's pool (tests and tools read tables with it). */
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }> {
    return this.#run(() => this.#db.q.query(text, values));
  }

  /** Runs `work`, turning driver errors into `StorageUnavailableError`. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#shared.closed) throw closedStorage(this.address);
    try {
      return await work();
    } catch (error) {
      throw unavailable(this.address, error);
    }
  }

  append(changes: readonly Change[]): Promise<AppendResult[]> {
    return this.#run(async () => {
      const results = await append(this.#db, changes);
      if (!this.#db.inTransaction) {
        this.feed.wake(changes.flatMap((c, i) => results[i].ok ? c.commits.map((m) => m.id) : []));
        if (++this.#shared.appends % TRIM_EVERY === 0) {
          await this.feed.trim(this.#shared.feedWindow);
        }
      }
      return results;
    });
  }

  claim(query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
    return this.#run(() => claim(this.#db, query, build));
  }

  get(id: string): Promise<JobRecord | null> {
    return this.#run(async () => (await reads.getMany(this.#db, [id]))[0]);
  }

  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    return this.#run(() => reads.getMany(this.#db, ids));
  }

  events(id: string): Promise<JobEvent[]> {
    return this.#run(() => reads.events(this.#db, id));
  }

  uniqueHolder(key: string): Promise<string | null> {
    return this.#run(async () => {
      const { rows } = await this.#db.q.query(
        `select holder from ${this.#db.s}.uniques where key = $1`,
        [key],
      );
      return rows[0]?.holder ?? null;
    });
  }

  list(query: ListQuery): Promise<Page> {
    return this.#run(() => reads.list(this.#db, query));
  }

  finished(query: FinishedQuery): Promise<Page> {
    return this.#run(() => reads.finished(this.#db, query));
  }

  remove(removals: readonly Removal[]): Promise<RemoveResult> {
    return this.#run(() => remove(this.#db, removals));
  }

  counts(): Promise<Counts> {
    return this.#run(() => reads.counts(this.#db));
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    return this.#run(() => reads.timeline(this.#db, resolution, from, to));
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

  search(query: SearchQuery): Promise<Page> {
    return this.#run(() => reads.search(this.#db, query));
  }

  pausedQueues(): Promise<string[]> {
    return this.#run(async () => {
      const { rows } = await this.#db.q.query(`select queue from ${this.#db.s}.paused order by 1`);
      return rows.map((row) => row.queue);
    });
  }

  pauseQueue(queue: string, paused: boolean): Promise<void> {
    return this.#run(async () => {
      await this.#db.q.query(
        paused
          ? `insert into ${this.#db.s}.paused (queue) values ($1) on conflict do nothing`
          : `delete from ${this.#db.s}.paused where queue = $1`,
        [queue],
      );
    });
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    return this.#run(async () => {
      const s = this.#db.s;
      const { server } = beat;
      await this.#db.q.query(
        `insert into ${s}.servers (id, info, expires_at) values ($1, $2, ${reads.NOW_MS} + $3)
         on conflict (id) do update set info = excluded.info, expires_at = excluded.expires_at`,
        [server.id, JSON.stringify(server), Math.round(beat.ttlMs)],
      );
      if (!beat.leases.length) return { lost: [] };
      // Rows locked in id order, as the append function locks them. A row another transaction
      // holds (its outcome being written) is skipped, not waited for: it is still ours, and
      // the next beat extends it if it stays Processing.
      const { rows } = await this.#db.q.query(
        `with mine as (
           select id from ${s}.jobs where id = any($1::text[]) and lease_server = $2
         ), held as (
           select id from ${s}.jobs where id in (select id from mine) and lease_server = $2
           order by id for update skip locked
         ), beat as (
           update ${s}.jobs j set lease_until = greatest($3::bigint, j.lease_until + 1)
           from held where j.id = held.id returning j.id
         )
         select id from mine`,
        [beat.leases, server.id, beat.leaseUntil],
      );
      const kept = new Set(rows.map((row) => row.id));
      return { lost: beat.leases.filter((id) => !kept.has(id)) };
    });
  }

  servers(): Promise<ServerInfo[]> {
    return this.#run(() => reads.servers(this.#db));
  }

  removeServer(id: string): Promise<void> {
    return this.#run(async () => {
      await this.#db.q.query(`delete from ${this.#db.s}.servers where id = $1`, [id]);
    });
  }

  batchCounts(id: string): Promise<BatchCounts> {
    return this.#run(() => reads.batchCounts(this.#db, id));
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    return this.#run(() => rebuild(this.#db, derive));
  }

  prune(now: number): Promise<void> {
    return this.#run(async () => {
      await pruneBuckets(this.#db.q, this.#db.s, now);
      await this.feed.trim(this.#shared.feedWindow);
    });
  }

  async close(): Promise<void> {
    // A transactional view borrows the storage's pool: closing it closes nothing.
    if (this.#db.inTransaction || this.#shared.closed) return;
    this.#shared.closed = true;
    this.#shared.listeners.clear();
    this.#shared.listener?.close();
    this.feed.close();
    await this.#shared.pool.end().catch(() => {});
  }
}
