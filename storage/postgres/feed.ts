/**
 * @module
 * The PostgreSQL event feed: the `feed` table, one row per append call written in the call's
 * transaction with its transaction id. Rows are read in (xid, pos) order and only below the
 * oldest transaction still running (`pg_snapshot_xmin`), so a reader never passes a row that a
 * slower transaction will still commit. A cursor older than the kept window is refused.
 */

import { badCursor } from "../cursor.ts";
import { CursorExpiredError } from "../event_errors.ts";
import { decodeRefs, type EventFeed, type FeedEntry, type FeedQuery } from "../feed.ts";
import type { PgDb } from "./db.ts";

/** Entries kept by default (the newest). */
export const PG_FEED_WINDOW = 100_000;

const CURSOR = /^(\d{1,20})\.(\d{1,20})$/;

/** The feed of one PostgreSQL storage. */
export class PostgresFeed implements EventFeed {
  #db: PgDb;
  #run: <T>(work: () => Promise<T>) => Promise<T>;
  #listeners = new Set<(ids?: readonly string[]) => void>();

  /** The feed of `db`; `run` maps errors as the storage does. */
  constructor(db: PgDb, run: <T>(work: () => Promise<T>) => Promise<T>) {
    this.#db = db;
    this.#run = run;
  }

  read(query: FeedQuery): Promise<FeedEntry[]> {
    return this.#run(async () => {
      const s = this.#db.s;
      const limit = query.limit ?? 100;
      const after = query.after || undefined;
      const at = after === undefined ? undefined : CURSOR.exec(after);
      if (after !== undefined && !at) throw badCursor(after);
      if (after !== undefined) {
        // Rows up to `trimmed` were dropped: a cursor below it may have missed some.
        const { rows } = await this.#db.q.query(
          `select value from ${s}.meta where key = 'feed_trimmed'`,
        );
        const trimmed = rows[0]?.value as string | undefined;
        if (trimmed && expired(after, trimmed, query.inclusive ?? false)) {
          const first = await this.#db.q.query(
            `select xid::text, pos::text from ${s}.feed order by xid, pos limit 1`,
          );
          const oldest = first.rows[0];
          throw new CursorExpiredError(after, oldest ? `${oldest.xid}.${oldest.pos}` : trimmed);
        }
      }
      const op = query.inclusive ? ">=" : ">";
      const { rows } = await this.#db.q.query(
        `select xid::text, pos::text, refs from ${s}.feed
         where ($1::xid8 is null or (xid, pos) ${op} ($1::xid8, $2::bigint))
           and xid < pg_snapshot_xmin(pg_current_snapshot())
         order by xid, pos limit $3`,
        [at?.[1] ?? null, at?.[2] ?? null, limit],
      );
      return rows.map((row) => ({ cursor: `${row.xid}.${row.pos}`, refs: decodeRefs(row.refs) }));
    });
  }

  head(): Promise<string> {
    return this.#run(async () => {
      const { rows } = await this.#db.q.query(
        `select xid::text, pos::text from ${this.#db.s}.feed
         where xid < pg_snapshot_xmin(pg_current_snapshot()) order by xid desc, pos desc limit 1`,
      );
      return rows.length ? `${rows[0].xid}.${rows[0].pos}` : "";
    });
  }

  listen(wake: (ids?: readonly string[]) => void): () => void {
    this.#listeners.add(wake);
    return () => this.#listeners.delete(wake);
  }

  /** Wakes this process's listeners (`ids`: the jobs an append wrote; absent: unknown). */
  wake(ids?: readonly string[]): void {
    for (const listener of this.#listeners) listener(ids);
  }

  /** Keeps the newest `window` entries; a cursor into the dropped ones is refused from now on. */
  trim(window: number): Promise<void> {
    return this.#run(async () => {
      const s = this.#db.s;
      await this.#db.q.query(
        `with gone as (
           delete from ${s}.feed where pos in (
             select pos from ${s}.feed order by xid desc, pos desc offset $1)
           returning xid, pos),
         last as (select xid::text || '.' || pos::text as c from gone order by xid desc, pos desc limit 1)
         insert into ${s}.meta (key, value) select 'feed_trimmed', c from last
         on conflict (key) do update set value = excluded.value`,
        [window],
      );
    });
  }

  /** Stops waking listeners. */
  close(): void {
    this.#listeners.clear();
  }
}

/** True when entries after cursor `after` (or at it) include dropped ones (up to `trimmed`). */
function expired(after: string, trimmed: string, inclusive: boolean): boolean {
  const [ax, ap] = after.split(".").map(BigInt), [tx, tp] = trimmed.split(".").map(BigInt);
  return ax < tx || (ax === tx && (ap < tp || (inclusive && ap === tp)));
}
