/**
 * @module
 * Transactional enqueue on PostgreSQL: `enqueue`, `enqueueMany` and `schedule` with the
 * caller's open `pg` transaction create jobs that exist if and only if it commits, also when
 * the process dies between the caller's write and COMMIT. Other storages refuse the option.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { InvalidOptionError, TransactionNotSupportedError } from "../storage/errors.ts";
import { pg } from "../storage/postgres/db.ts";
import type { PostgresStorage } from "../storage/postgres/mod.ts";
import { assertConsistent, eventually } from "./helpers.ts";
import { openTestPostgres, POSTGRES_URL, whenPostgres } from "./postgres_helpers.ts";

/** A TaskFlow on a fresh schema, a `pg` client and an orders table in that schema. */
async function setup(label: string) {
  const { storage, schema, url, cleanup } = await openTestPostgres(label);
  const tf = new TaskFlow(storage);
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  const orders = `"${schema}".orders`;
  await client.query(`create table ${orders} (id text primary key)`);
  return {
    tf,
    storage,
    client,
    orders,
    url,
    cleanup: async () => {
      await client.end();
      await tf.close();
      await cleanup();
    },
  };
}

/** Jobs, events and feed entries stored, and the orders rows. */
async function footprint(storage: PostgresStorage, orders: string) {
  const s = `"${storage.schema}"`;
  const count = async (sql: string) => Number((await storage.query(sql)).rows[0].n);
  return {
    jobs: await count(`select count(*) as n from ${s}.jobs`),
    events: await count(`select count(*) as n from ${s}.events`),
    feed: await count(`select count(*) as n from ${s}.feed`),
    orders: await count(`select count(*) as n from ${orders}`),
  };
}

const ship = defineJob("order.ship", (args: { order: string }) => ({ shipped: args.order }));

await whenPostgres("postgres transactional enqueue", () => {
  Deno.test({
    name: "transaction: a committed enqueue exists with the caller's row, wakes a worker and runs",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const t = await setup("txcommit");
      const worker = createWorker({ storage: t.storage, jobs: [ship], concurrency: 2 });
      try {
        await worker.start();
        await t.client.query("begin");
        await t.client.query(`insert into ${t.orders} (id) values ('o-1')`);
        const id = await t.tf.enqueue(ship, { order: "o-1" }, { transaction: t.client });
        // Inside the transaction the job is visible to it, and to nobody else yet.
        assert.equal((await t.tf.storage.inTransaction!(t.client).get(id))?.state, "Enqueued");
        assert.equal(await t.tf.get(id), null, "not visible before COMMIT");
        assert.equal((await t.tf.counts()).totals.created, 0);
        await t.client.query("commit");
        await eventually(async () => assert.equal((await t.tf.get(id))?.state, "Succeeded"));
        assert.deepEqual((await t.tf.get(id))?.result, { shipped: "o-1" });
        // The log: one row per commit (created and Enqueued, Processing, Succeeded).
        assert.deepEqual(await footprint(t.storage, t.orders), {
          jobs: 1,
          events: 3,
          feed: 3,
          orders: 1,
        });
        assert.equal((await t.tf.events(id)).length, 4);
        await assertConsistent(t.storage);
      } finally {
        await worker.stop();
        await t.cleanup();
      }
    },
  });

  Deno.test({
    name:
      "transaction: a rolled-back enqueueMany and schedule leave no job, event, feed entry or count",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const t = await setup("txrollback");
      try {
        await t.client.query("begin");
        await t.client.query(`insert into ${t.orders} (id) values ('o-2')`);
        const many = await t.tf.enqueueMany(
          [1, 2, 3].map((n) => ({ job: ship, args: { order: `o-2/${n}` } })),
          { transaction: t.client },
        );
        const later = await t.tf.schedule(ship, { order: "o-2/later" }, {
          delayMs: 60_000,
          transaction: t.client,
        });
        assert.equal(many.length, 3);
        await t.client.query("rollback");
        assert.deepEqual(await t.tf.storage.getMany([...many, later]), [null, null, null, null]);
        assert.deepEqual(await footprint(t.storage, t.orders), {
          jobs: 0,
          events: 0,
          feed: 0,
          orders: 0,
        });
        const counts = await t.tf.counts();
        assert.equal(counts.totals.created, 0);
        assert.equal(counts.states.Enqueued + counts.states.Scheduled, 0);
        // The same calls committed: all four exist.
        await t.client.query("begin");
        const ids = await t.tf.enqueueMany([{ job: ship, args: { order: "o-3" } }], {
          transaction: t.client,
        });
        const due = await t.tf.schedule(ship, { order: "o-3" }, {
          delayMs: 60_000,
          transaction: t.client,
        });
        await t.client.query("commit");
        assert.equal((await t.tf.get(ids[0]))?.state, "Enqueued");
        assert.equal((await t.tf.get(due))?.state, "Scheduled");
        await assertConsistent(t.storage);
      } finally {
        await t.cleanup();
      }
    },
  });

  Deno.test({
    name:
      "transaction: a process SIGKILLed between the caller's insert and COMMIT leaves neither the row nor the job",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const t = await setup("txcrash");
      try {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("./fixtures/pg_tx_writer.ts", import.meta.url).pathname,
            t.url,
            t.orders,
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          out += value;
        }
        const [, id, pid] = /^written (\S+) (\d+)/.exec(out) ?? [];
        assert.ok(id, `the writer printed ${JSON.stringify(out)}`);
        const open = await t.client.query(
          "select state from pg_stat_activity where pid = $1",
          [Number(pid)],
        );
        assert.equal(open.rows[0]?.state, "idle in transaction", "killed before COMMIT");
        child.kill("SIGKILL");
        await child.status;
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        // The server aborts the dead session's transaction once it notices the closed socket.
        await eventually(async () => {
          const { rows } = await t.client.query(
            "select count(*)::int as n from pg_stat_activity where pid = $1",
            [Number(pid)],
          );
          assert.equal(rows[0].n, 0);
        });
        assert.equal(await t.tf.get(id), null);
        assert.deepEqual(await footprint(t.storage, t.orders), {
          jobs: 0,
          events: 0,
          feed: 0,
          orders: 0,
        });
        assert.equal((await t.tf.counts()).totals.created, 0);
      } finally {
        await t.cleanup();
      }
    },
  });

  Deno.test({
    name: "transaction: a handle that is no pg client is a typed error naming it",
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const t = await setup("txbad");
      try {
        await assert.rejects(
          t.tf.enqueue(ship, { order: "x" }, { transaction: { begin: true } }),
          (error: unknown) => {
            assert.ok(error instanceof InvalidOptionError);
            assert.match(error.message, /invalid transaction .*pg Client or PoolClient/);
            return true;
          },
        );
        assert.equal((await t.tf.counts()).totals.created, 0);
      } finally {
        await t.cleanup();
      }
    },
  });
});

Deno.test("transaction: memory and KV storage refuse the option with TRANSACTION_NOT_SUPPORTED", async () => {
  for (const url of ["memory:", "kv::memory:"]) {
    const tf = await TaskFlow.open(url);
    try {
      for (
        const call of [
          () => tf.enqueue("x", {}, { transaction: {} }),
          () => tf.enqueueMany([{ job: "x", args: {} }], { transaction: {} }),
          () => tf.schedule("x", {}, { delayMs: 10, transaction: {} }),
        ]
      ) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof TransactionNotSupportedError);
          assert.equal(error.code, "TRANSACTION_NOT_SUPPORTED");
          assert.match(error.message, new RegExp(`storage ${url} cannot write in the caller's`));
          return true;
        });
      }
      assert.equal((await tf.counts()).totals.created, 0);
      // A transaction in an item's options is an error naming where it belongs.
      await assert.rejects(
        tf.enqueueMany([{ job: "x", args: {}, options: { transaction: {} } }]),
        /items\[0\]\.transaction .*it belongs to enqueue, schedule and enqueueMany/,
      );
    } finally {
      await tf.close();
    }
  }
});
