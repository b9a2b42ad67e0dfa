/**
 * @module
 * PostgreSQL schema migrations: applied once on open even when several processes open a fresh
 * schema at once, and by `deno task migrate`, which says what it did.
 */

import assert from "node:assert/strict";
import { PostgresStorage } from "../storage/postgres/mod.ts";
import { SCHEMA_VERSION } from "../storage/postgres/schema.ts";
import { dropSchema, POSTGRES_URL, testSchema, whenPostgres } from "./postgres_helpers.ts";

const root = new URL("..", import.meta.url).pathname;

/** Runs `deno task migrate <url>`; its exit code and output. */
async function migrateTask(url: string): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "migrate", url],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: decode(output.stdout) + decode(output.stderr) };
}

await whenPostgres("postgres migrations", () => {
  Deno.test({
    name: "migrations: processes opening a fresh schema at once apply each migration once",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const schema = testSchema("migrate");
      const url = `${POSTGRES_URL}?schema=${schema}`;
      try {
        const script = `import { PostgresStorage } from "${root}storage/postgres/mod.ts";
          const s = await PostgresStorage.open(${JSON.stringify(url)}); await s.close();`;
        const children = Array.from({ length: 4 }, () =>
          new Deno.Command(Deno.execPath(), {
            args: ["eval", script],
            stdout: "null",
            stderr: "piped",
          }).output());
        const opened = await Promise.all([
          ...children,
          PostgresStorage.open(url).then((s) => s.close()),
        ]);
        for (const result of opened.slice(0, 4) as Deno.CommandOutput[]) {
          assert.ok(result.success, new TextDecoder().decode(result.stderr));
        }
        const storage = await PostgresStorage.open(url);
        try {
          const { rows } = await storage.query(
            `select version from "${schema}".migrations order by version`,
          );
          assert.deepEqual(
            rows.map((r) => r.version),
            Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
          );
          assert.equal((await storage.counts()).totals.created, 0);
        } finally {
          await storage.close();
        }
      } finally {
        await dropSchema(schema);
      }
    },
  });

  Deno.test({
    name: "migrations: deno task migrate applies them, then reports the schema up to date",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const schema = testSchema("migtask");
      const url = `${POSTGRES_URL}?schema=${schema}`;
      try {
        const first = await migrateTask(url);
        assert.equal(first.code, 0, first.out);
        assert.match(first.out, new RegExp(`applied migration 1; schema ${schema} is at version`));
        const again = await migrateTask(url);
        assert.equal(again.code, 0, again.out);
        assert.match(again.out, new RegExp(`schema ${schema} is up to date \\(version 1\\)`));
        const wrong = await migrateTask("redis://127.0.0.1:6379");
        assert.equal(wrong.code, 2);
        assert.match(wrong.out, /usage: deno task migrate postgres:\/\//);
      } finally {
        await dropSchema(schema);
      }
    },
  });
});
