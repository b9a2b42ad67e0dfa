/**
 * @module
 * Steady state (short soak): jobs flow through a worker with `succeeded` kept 1 s, in rounds on
 * an injected clock; the store's size (entries, not bytes: deterministic) must stay flat once
 * pruning keeps up, and counters must equal index sizes. `deno task bench --only "retention soak"`
 * is the long version, in bytes.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import type { Storage } from "../storage/storage.ts";
import { allIds, assertConsistent, eventually, TestClock } from "./helpers.ts";
import { deletePrefix, REDIS_URL, scanPrefix, whenRedis } from "./redis_helpers.ts";

const job = defineJob("soak.noop", (args: { i: number; to: string }) => ({ ok: args.i }));

const ROUNDS = 50;
/** Clock time between rounds; with 1 s kept, the jobs of the last two rounds are retained. */
const ROUND_MS = 400;
const KEEP_MS = 1_000;

/**
 * Entries the storage holds: Redis keys weighted by their members (a hash's fields, a sorted
 * set's members, a list's entries), KV entries, or for memory the jobs with a
 * record or a log plus the entries of the state indexes (what its public API shows).
 */
async function entries(storage: Storage, ids: string[]): Promise<number> {
  if (storage instanceof RedisStorage) {
    let total = 0;
    for (const key of await scanPrefix(storage)) {
      // The events feed is capped (~10,000 entries, one per append call, not per job): in a
      // short run its filling is warm-up, not growth. The bench's soak counts its bytes.
      if (key === `${storage.keyPrefix}feed`) continue;
      const type = await storage.command<string>("TYPE", key);
      const size: Record<string, string> = {
        hash: "HLEN",
        zset: "ZCARD",
        list: "LLEN",
        set: "SCARD",
      };
      total += size[type] ? await storage.command<number>(size[type], key) : 1;
    }
    return total;
  }
  if (storage instanceof KvStorage) {
    // The feed is capped as on Redis (a byte window, one entry per append call): left out.
    const all = await Array.fromAsync(storage.kv.list({ prefix: [] }));
    return all.filter((entry) => !entry.key.includes("feed")).length;
  }
  let total = (await allIds(storage, false)).size;
  for (let i = 0; i < ids.length; i += 500) {
    const slice = ids.slice(i, i + 500);
    const records = await storage.getMany(slice);
    const logs = await Promise.all(slice.map((id) => storage.events(id)));
    total += records.filter(Boolean).length + logs.filter((log) => log.length).length;
  }
  return total;
}

/**
 * `jobs` no-op jobs in {@link ROUNDS} rounds: each round's jobs run to Succeeded, the clock moves
 * {@link ROUND_MS}, and the worker's pruner removes what expired. Returns the store's entries
 * after the first fifth and at the end.
 */
async function soak(storage: Storage, jobs: number): Promise<{ fifth: number; end: number }> {
  const clock = new TestClock();
  const tf = new TaskFlow(storage);
  const worker = createWorker({
    storage,
    jobs: [job],
    concurrency: 50,
    pollIntervalMs: 20,
    now: clock.now,
    retention: { succeeded: { maxAgeMs: KEEP_MS } },
    pruneIntervalMs: 20,
    logger: () => {},
  });
  await worker.start();
  const perRound = jobs / ROUNDS;
  const ids: string[] = [];
  let fifth = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      ids.push(
        ...await tf.enqueueMany(Array.from({ length: perRound }, (_, j) => {
          const i = round * perRound + j;
          return { job, args: { i, to: `user${i}@example.com` } };
        })),
      );
      await eventually(async () => {
        const { states, totals } = await tf.counts();
        assert.equal(states.Succeeded + totals.pruned, ids.length);
      }, 20_000);
      clock.advance(ROUND_MS);
      // Expired now: the rounds that finished at least KEEP_MS of clock time ago.
      const since = (round + 1) * ROUND_MS - KEEP_MS;
      const expired = since < 0 ? 0 : (Math.floor(since / ROUND_MS) + 1) * perRound;
      await eventually(async () => {
        assert.equal((await tf.counts()).totals.pruned, expired);
      }, 20_000);
      if (round + 1 === ROUNDS / 5) fifth = await entries(storage, ids);
    }
  } finally {
    await worker.stop();
  }
  const end = await entries(storage, ids);
  await assertConsistent(storage);
  assert.deepEqual((await doctor(storage)).findings, []);
  const { states, totals } = await tf.counts();
  assert.equal(states.Succeeded, 2 * perRound, "the last two rounds are kept");
  assert.equal(totals.succeeded, jobs, "the all-time totals keep every job");
  assert.equal(await tf.get(ids[0]), null, "the first job is gone");
  return { fifth, end };
}

function check({ fifth, end }: { fifth: number; end: number }): void {
  assert.ok(fifth > 0);
  assert.ok(end <= 1.2 * fifth, `the store grew from ${fifth} entries to ${end}`);
}

Deno.test("soak (short): 20,000 jobs in memory with succeeded kept 1 s; the store stays flat", async () => {
  const storage = new MemoryStorage();
  try {
    check(await soak(storage, 20_000));
  } finally {
    await storage.close();
  }
});

Deno.test("soak (short): 5,000 jobs on a KV file with succeeded kept 1 s; the store stays flat", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-soak-" });
  const path = `${dir}/soak.sqlite`;
  const storage = await KvStorage.open(path, `kv:${path}`);
  try {
    check(await soak(storage, 5_000));
  } finally {
    await storage.close();
    await Deno.remove(dir, { recursive: true });
  }
});

await whenRedis("soak on Redis", () => {
  Deno.test("soak (short): 5,000 jobs on Redis with succeeded kept 1 s; the store stays flat", async () => {
    const prefix = `tfsoak-${crypto.randomUUID().slice(0, 8)}`;
    const storage = await RedisStorage.open(`${REDIS_URL}?prefix=${prefix}`);
    try {
      check(await soak(storage, 5_000));
    } finally {
      await storage.close();
      await deletePrefix(prefix);
    }
  });
});
