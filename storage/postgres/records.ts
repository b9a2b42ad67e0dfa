/**
 * @module
 * Record stores on PostgreSQL (recurring definitions, batches, flows, settings): one `records`
 * table keyed by kind and id, written by compare-and-set on the version column.
 */

import { byId } from "../record_store.ts";
import type { RecordStore, RecurringRecord } from "../storage.ts";
import type { PgDb } from "./db.ts";

/** The record store of `kind`; `run` maps errors as the storage does. */
export function recordStore(
  db: PgDb,
  kind: string,
  run: <T>(work: () => Promise<T>) => Promise<T>,
): RecordStore {
  const table = `${db.s}.records`;
  return {
    get: (id) =>
      run(async () => {
        const { rows } = await db.q.query(
          `select version, body from ${table} where kind = $1 and id = $2`,
          [kind, id],
        );
        return rows.length ? storedRecord(id, rows[0]) : null;
      }),
    list: () =>
      run(async () => {
        const { rows } = await db.q.query(
          `select id, version, body from ${table} where kind = $1`,
          [kind],
        );
        return byId(rows.map((row) => storedRecord(row.id, row)));
      }),
    put: (record, expect) =>
      run(async () => {
        const values = [kind, record.id, record.version, JSON.stringify(record)];
        const { rowCount } = expect === 0
          ? await db.q.query(
            `insert into ${table} (kind, id, version, body) values ($1, $2, $3, $4)
             on conflict do nothing`,
            values,
          )
          : await db.q.query(
            `update ${table} set version = $3, body = $4
             where kind = $1 and id = $2 and version = $5`,
            [...values, expect],
          );
        return rowCount === 1;
      }),
    delete: (id, expect) =>
      run(async () => {
        const { rowCount } = await db.q.query(
          `delete from ${table} where kind = $1 and id = $2 and version = $3`,
          [kind, id, expect],
        );
        return rowCount === 1;
      }),
  };
}

/**
 * A stored record's JSON; one that does not parse comes back as an empty record at its stored
 * version, so the caller's shape check reports it and a compare-and-set can replace it.
 */
function storedRecord(id: string, row: { version: number; body: string }): RecurringRecord {
  try {
    return JSON.parse(row.body) as RecurringRecord;
  } catch {
    return { id, version: row.version } as RecurringRecord;
  }
}
