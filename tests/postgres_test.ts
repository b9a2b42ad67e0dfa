/**
 * @module
 * The storage contract against PostgreSQL, each test in a schema of its own.
 */

import type { PostgresStorage } from "../storage/postgres/mod.ts";
import type { Storage } from "../storage/storage.ts";
import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";
import { runStorageContract } from "./storage_contract.ts";

/** Damages projections behind the storage's back, as kv_test.ts and redis_test.ts do. */
async function corrupt(storage: Storage, ids: string[]): Promise<void> {
  const pg = storage as PostgresStorage;
  const s = `"${pg.schema}"`;
  await pg.query(`delete from ${s}.jobs where id = $1`, [ids[0]]);
  await pg.query(`update ${s}.counters set n = 999 where name = 't:succeeded'`);
  await pg.query(`insert into ${s}.counters (name, slot, n) values ('t:succeeded', 99, 999)`);
  await pg.query(`update ${s}.jobs set state = 'Failed', version = 99 where id = $1`, [ids[1]]);
}

/** Every row of every projection table, as text: `remove` must leave none of a job behind. */
async function footprint(storage: PostgresStorage): Promise<string[]> {
  const s = `"${storage.schema}"`;
  const out: string[] = [];
  const tables = {
    jobs: "id",
    events: "id || ' ' || seq",
    uniques: "key || ' ' || holder",
    counters: "name",
    buckets: "resolution || ' ' || at || ' ' || kind",
  };
  for (const [table, row] of Object.entries(tables)) {
    const { rows } = await storage.query(
      `select distinct ${row} as r from ${s}.${table} ${
        table === "counters" ? "where n <> 0" : ""
      }`,
    );
    for (const { r } of rows) out.push(`${table} ${r}`);
  }
  return out.sort();
}

await whenPostgres("postgres contract", () =>
  runStorageContract("postgres", async () => {
    const { storage, cleanup } = await openTestPostgres("contract");
    return { storage, cleanup, corrupt, footprint: () => footprint(storage) };
  }));
