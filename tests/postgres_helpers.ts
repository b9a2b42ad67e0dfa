/**
 * @module
 * PostgreSQL test support: a connectivity probe run once at module top level, a fresh storage
 * per test in a schema of its own, and dropping that schema afterwards.
 */

import { PostgresStorage } from "../storage/postgres/mod.ts";

/** The database the PostgreSQL tests use (each test makes and drops a schema in it). */
export const POSTGRES_URL = Deno.env.get("TASKFLOW_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** True when CI demands the PostgreSQL tests run (`TASKFLOW_TEST_POSTGRES=required`). */
export const POSTGRES_REQUIRED = Deno.env.get("TASKFLOW_TEST_POSTGRES") === "required";

/** Why the PostgreSQL tests cannot run here, or undefined when the server accepts connections. */
export async function postgresUnreachable(url = POSTGRES_URL): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  const target = `${hostname}:${port || 5432}`;
  try {
    const conn = await Deno.connect({ hostname, port: Number(port || 5432) });
    conn.close();
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${target} is unreachable (${(error as Error).message})`;
  }
}

/**
 * Registers the cases through `register` when PostgreSQL answers; otherwise prints the reason
 * and registers one ignored test naming it — unless `TASKFLOW_TEST_POSTGRES=required`, where
 * the cases run anyway and fail.
 */
export async function whenPostgres(suite: string, register: () => void): Promise<void> {
  const reason = await postgresUnreachable();
  if (!reason || POSTGRES_REQUIRED) {
    register();
    return;
  }
  console.log(
    `skipping ${suite}: ${reason} (set TASKFLOW_TEST_POSTGRES=required to fail instead)`,
  );
  Deno.test({ name: `${suite}: skipped, ${reason}`, ignore: true, fn() {} });
}

/** A schema name no other test uses. */
export function testSchema(label = "t"): string {
  return `tftest_${label}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** A fresh storage in a schema of its own, and the cleanup that drops the schema. */
export async function openTestPostgres(
  label = "t",
  options: { feedWindow?: number } = {},
): Promise<
  { storage: PostgresStorage; schema: string; url: string; cleanup: () => Promise<void> }
> {
  const schema = testSchema(label);
  const url = `${POSTGRES_URL}?schema=${schema}`;
  const storage = await PostgresStorage.open(url, options);
  return {
    storage,
    schema,
    url,
    cleanup: async () => {
      await storage.close();
      await dropSchema(schema);
    },
  };
}

/** Drops `schema` on a connection of its own. */
export async function dropSchema(schema: string, url = POSTGRES_URL): Promise<void> {
  const admin = await PostgresStorage.open(`${url}?schema=${schema}`, { poolSize: 1 });
  try {
    await admin.dropSchema();
  } finally {
    await admin.close();
  }
}
