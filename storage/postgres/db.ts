/**
 * @module
 * What the parts of the PostgreSQL backend share: the one module that imports the driver
 * (`npm:pg`, chosen by measurement: see bench/RESULTS.md), the pool, the schema's table names,
 * counter names, and retrying a call that lost a race to a deadlock or a duplicate insert.
 */

// @ts-types="npm:@types/pg@8.23.1"
import pg from "npm:pg@8.23.1";

import type { StatHit } from "../stats.ts";

export { pg };
/** A client checked out of the pool. */
export type PoolClient = pg.PoolClient;

/** Anything that runs a query: the pool, a pooled client, a user's client inside BEGIN. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

/** One PostgreSQL storage's connections and schema. */
export interface PgDb {
  /** The pool (claims and maintenance take a client of their own from it). */
  pool: pg.Pool;
  /** Where plain statements go: the pool, or a user's open transaction. */
  q: Queryable;
  /** True when `q` is a user's transaction: nothing may be retried or committed here. */
  inTransaction: boolean;
  /** The schema name, quoted for SQL (`"taskflow"`). */
  s: string;
  /** The schema name. */
  schema: string;
}

/** Deadlock, serialization failure, duplicate key: another call won; the same call may go again. */
const RETRYABLE = new Set(["40P01", "40001", "23505"]);

/** Runs `work` again (a few times, with a short random pause) when it lost a race it can redo. */
export async function retrying<T>(db: PgDb, work: () => Promise<T>): Promise<T> {
  for (let tries = 0;; tries++) {
    try {
      return await work();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (db.inTransaction || tries >= 8 || !code || !RETRYABLE.has(code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (tries + 1)));
    }
  }
}

/** Runs `work` in a transaction on a client of its own (or inside the user's transaction). */
export async function transaction<T>(db: PgDb, work: (q: Queryable) => Promise<T>): Promise<T> {
  if (db.inTransaction) return await work(db.q);
  return await checkedOut(db, async (client) => {
    await client.query("begin");
    const result = await work(client);
    await client.query("commit");
    return result;
  });
}

/**
 * Runs `work` on a pooled client of its own; if it throws, the transaction it may have opened is
 * rolled back and the client is dropped, not pooled (its connection may be gone).
 */
export async function checkedOut<T>(
  db: PgDb,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  // A connection cut while checked out is reported by the failing query (every pooled client
  // has an error listener, see mod.ts).
  const client = await db.pool.connect();
  let failed: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    failed = error as Error;
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release(failed);
  }
}

/**
 * Counter names: gauges, totals, duration buckets, batch counts; `p:` + name for the pruned base.
 * `stat` names the `buckets` rows' resolution of statistics counters (`s:minute`, `s:hour`,
 * `s:total`; the kind is the field), apart from the time buckets' resolutions.
 */
export const counter = {
  gauge: (queue: string, state: string) => `g:${state}:${queue}`,
  total: (name: string) => `t:${name}`,
  duration: (bucket: number) => `d:${bucket}`,
  batch: (id: string, kind: string) => `b:${kind}:${id}`,
  pruned: (name: string) => `p:${name}`,
  stat: (resolution: string) => `s:${resolution}`,
};

/** Merges increments by name (one row per name in a statement: ON CONFLICT updates a row once). */
export class Increments {
  readonly counters = new Map<string, number>();
  readonly buckets = new Map<string, { resolution: string; at: number; kind: string; n: number }>();

  /** Adds `n` to counter `name`. */
  add(name: string, n: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  /** Adds a statistics hit (a bucket row of resolution `s:<resolution>`, `prefix` before it). */
  stat(hit: StatHit, prefix = ""): void {
    this.bucket(prefix + counter.stat(hit.resolution), hit.at, hit.field, hit.n);
  }

  /** Adds `n` to a time bucket. */
  bucket(resolution: string, at: number, kind: string, n = 1): void {
    const key = `${resolution} ${at} ${kind}`;
    const hit = this.buckets.get(key);
    if (hit) hit.n += n;
    else this.buckets.set(key, { resolution, at, kind, n });
  }

  /** The counters as `{ name, n }` rows (zeros left out). */
  counterRows(): { name: string; n: number }[] {
    return [...this.counters].flatMap(([name, n]) => n ? [{ name, n }] : []);
  }

  /** The buckets as rows. */
  bucketRows(): { resolution: string; at: number; kind: string; n: number }[] {
    return [...this.buckets.values()].filter((b) => b.n !== 0);
  }
}

/** Adds increments in one statement each for counters and buckets (sorted: no lock cycles). */
export async function addIncrements(q: Queryable, s: string, inc: Increments): Promise<void> {
  const counters = inc.counterRows(), buckets = inc.bucketRows();
  if (counters.length) {
    await q.query(
      `insert into ${s}.counters as t (name, slot, n)
         select name, pg_backend_pid() % 16, n from unnest($1::text[], $2::bigint[]) x(name, n)
         order by name
       on conflict (name, slot) do update set n = t.n + excluded.n`,
      [counters.map((c) => c.name), counters.map((c) => c.n)],
    );
  }
  if (buckets.length) {
    await q.query(
      `insert into ${s}.buckets as t (resolution, at, kind, slot, n)
         select r, a, k, pg_backend_pid() % 16, n
         from unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) x(r, a, k, n)
         order by 1, 2, 3
       on conflict (resolution, at, kind, slot) do update set n = t.n + excluded.n`,
      [
        buckets.map((b) => b.resolution),
        buckets.map((b) => b.at),
        buckets.map((b) => b.kind),
        buckets.map((b) => b.n),
      ],
    );
  }
}
