/**
 * @module
 * `deno task migrate [postgres://user@host/db[?schema=name]]` (or `TASKFLOW_STORAGE`): applies the
 * PostgreSQL schema's pending migrations, as opening the storage does, and says which. Safe to
 * run while workers open the same schema (one advisory lock orders them).
 */

import { pg } from "./db.ts";
import { migrate, SCHEMA_VERSION } from "./schema.ts";
import { parsePostgresUrl } from "./url.ts";

if (import.meta.main) {
  const url = Deno.args[0] ?? Deno.env.get("TASKFLOW_STORAGE");
  if (!url || !/^postgres(ql)?:\/\//i.test(url)) {
    console.error(
      "usage: deno task migrate postgres://user@host:5432/db[?schema=name] " +
        "(or set TASKFLOW_STORAGE to such a URL)",
    );
    Deno.exit(2);
  }
  const { connection, schema, address } = parsePostgresUrl(url);
  const client = new pg.Client(connection);
  try {
    await client.connect();
    const applied = await migrate(client, schema);
    console.log(
      applied.length
        ? `${address}: applied migration${applied.length > 1 ? "s" : ""} ${
          applied.join(", ")
        }; schema ${schema} is at version ${SCHEMA_VERSION}`
        : `${address}: schema ${schema} is up to date (version ${SCHEMA_VERSION})`,
    );
  } catch (error) {
    console.error(`${address}: migration failed: ${(error as Error).message}`);
    Deno.exitCode = 1;
  } finally {
    await client.end().catch(() => {});
  }
}
