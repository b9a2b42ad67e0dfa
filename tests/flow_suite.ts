/**
 * @module
 * Queue limits enforced by workers (issue 21), run against every backend with three workers
 * on one store: {@link runFlowSuite}.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { LIMITS_REFRESH_MS } from "../lib/queues/limits_cache.ts";
import { createWorker, type Worker } from "../lib/worker/worker.ts";
import type { Storage } from "../storage/storage.ts";
import { assertConsistent, eventually } from "./helpers.ts";

/** Three handles on one fresh, empty store (three connections where the backend has them). */
export interface FlowBackend {
  storages: [Storage, Storage, Storage];
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The most intervals open at once, from `[start, end]` pairs (an end before a start at a tie). */
export function mostAtOnce(spans: readonly (readonly [number, number])[]): number {
  const marks = spans.flatMap(([start, end]) => [[start, 1], [end, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0, most = 0;
  for (const [, step] of marks) most = Math.max(most, open += step);
  return most;
}

/** The most of `times` in any window of `ms` (a start at exactly `t + ms` is in the next one). */
export function mostInWindow(times: readonly number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** Registers the flow-control cases for backend `name`. */
export function runFlowSuite(name: string, open: () => Promise<FlowBackend>): void {
  const test = (title: string, fn: (b: FlowBackend, tf: TaskFlow) => Promise<void>) =>
    Deno.test({
      name: `${name} flow: ${title}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const backend = await open();
        const tf = new TaskFlow(backend.storages[0]);
        try {
          await fn(backend, tf);
        } finally {
          await backend.cleanup();
        }
      },
    });

  /** Starts one worker per handle, each running up to `concurrency` jobs. */
  async function workers(
    backend: FlowBackend,
    jobs: Parameters<typeof createWorker>[0]["jobs"],
    concurrency: number,
  ): Promise<Worker[]> {
    const started = backend.storages.map((storage) =>
      createWorker({ storage, jobs, concurrency, heartbeatMs: 200, pollIntervalMs: 50 })
    );
    for (const worker of started) await worker.start();
    return started;
  }

  test("global concurrency 3 over 60 jobs of 50 ms on three workers: at most 3 run at once", async (
    backend,
    tf,
  ) => {
    const spans: [number, number][] = [];
    const job = defineJob("flow.capped", async () => {
      const start = performance.now();
      await sleep(50);
      spans.push([start, performance.now()]);
    });
    await tf.queues.configure("default", { concurrency: 3 });
    await tf.enqueueMany(Array.from({ length: 60 }, (_, i) => ({ job, args: i })));
    const running = await workers(backend, [job], 5);
    try {
      await eventually(
        async () => assert.equal((await tf.counts()).states.Succeeded, 60),
        30_000,
      );
    } finally {
      await Promise.all(running.map((w) => w.stop()));
    }
    assert.equal(spans.length, 60);
    assert.equal(mostAtOnce(spans), 3, "the limit is reached and never passed");
    await assertConsistent(tf.storage);
  });

  test(
    "a job held back by a concurrency, rate or partition limit stays Enqueued and writes no event per poll",
    async (
      backend,
      tf,
    ) => {
      const gate = Promise.withResolvers<void>();
      const job = defineJob("flow.held", () => gate.promise);
      await tf.queues.configure("capped", { concurrency: 1 });
      await tf.queues.configure("rated", { rateLimit: { max: 1, perMs: 600_000 } });
      await tf.queues.configure("parted", { partition: { concurrency: 1 } });
      const first = await Promise.all([
        tf.enqueue(job, 0, { queue: "capped" }),
        tf.enqueue(job, 0, { queue: "rated" }),
        tf.enqueue(job, 0, { queue: "parted", partition: "acme" }),
      ]);
      const held = await Promise.all([
        tf.enqueue(job, 1, { queue: "capped" }),
        tf.enqueue(job, 1, { queue: "rated" }),
        tf.enqueue(job, 1, { queue: "parted", partition: "acme" }),
      ]);
      const running = await Promise.all(backend.storages.map(async (storage) => {
        const worker = createWorker({
          storage,
          jobs: [job],
          concurrency: 5,
          queues: ["capped", "rated", "parted"],
          heartbeatMs: 200,
          pollIntervalMs: 50,
        });
        await worker.start();
        return worker;
      }));
      try {
        await eventually(async () => {
          const records = await tf.storage.getMany(first);
          assert.ok(records.every((r) => r?.state === "Processing"));
        }, 10_000);
        // Twenty poll intervals of every worker: a poll that finds the limit full writes nothing.
        await sleep(1_000);
        for (const record of await tf.storage.getMany(held)) {
          assert.equal(record?.state, "Enqueued", `${record?.queue}: held back`);
          assert.equal(record?.version, 2, `${record?.queue}: created and Enqueued, nothing since`);
          assert.equal((await tf.events(record!.id)).length, 2);
        }
      } finally {
        gate.resolve();
        await Promise.all(running.map((w) => w.stop()));
      }
    },
  );

  test("rate limit 20/s over 60 jobs on three workers: no second holds more than 20 starts", async (
    backend,
    tf,
  ) => {
    const job = defineJob("flow.rated", () => sleep(5));
    await tf.queues.configure("default", { rateLimit: { max: 20, perMs: 1_000 } });
    const ids = await tf.enqueueMany(Array.from({ length: 60 }, (_, i) => ({ job, args: i })));
    const running = await workers(backend, [job], 10);
    try {
      await eventually(
        async () => assert.equal((await tf.counts()).states.Succeeded, 60),
        30_000,
      );
    } finally {
      await Promise.all(running.map((w) => w.stop()));
    }
    // A start is the claim's time, the one the window counted (on the claiming worker's clock).
    const starts = (await tf.storage.getMany(ids)).map((record) => record!.startedAt!);
    assert.equal(mostInWindow(starts, 1_000), 20, "the limit is reached and never passed");
    await assertConsistent(tf.storage);
  });

  test("a limit set while workers run is obeyed after their refresh of the limits", async (
    backend,
    tf,
  ) => {
    const spans: [number, number][] = [];
    const job = defineJob("flow.later", async () => {
      const start = performance.now();
      await sleep(30);
      spans.push([start, performance.now()]);
    });
    const running = await workers(backend, [job], 5);
    try {
      await tf.queues.configure("default", { concurrency: 2 });
      await sleep(LIMITS_REFRESH_MS + 500);
      await tf.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ job, args: i })));
      await eventually(
        async () => assert.equal((await tf.counts()).states.Succeeded, 30),
        30_000,
      );
    } finally {
      await Promise.all(running.map((w) => w.stop()));
    }
    assert.equal(mostAtOnce(spans), 2, "the new limit is reached and never passed");
  });

  test(
    "an expired job met by a claim goes Enqueued → Deleted and takes no slot and no rate start",
    async (backend, tf) => {
      const spans: [number, number][] = [];
      const job = defineJob("flow.expiring", async () => {
        const start = performance.now();
        await sleep(2);
        spans.push([start, performance.now()]);
      });
      // Behind the first 100 of each queue, where the expiry sweep does not look.
      await tf.queues.configure("capped", { concurrency: 2 });
      await tf.queues.configure("rated", { rateLimit: { max: 105, perMs: 600_000 } });
      const expiring: string[] = [];
      for (const queue of ["capped", "rated"]) {
        const options = { queue };
        await tf.enqueueMany(Array.from({ length: 101 }, (_, i) => ({ job, args: i, options })));
        expiring.push(
          ...await tf.enqueueMany(Array.from({ length: 4 }, (_, i) => ({
            job,
            args: i,
            options: { queue, expiresAt: new Date(Date.now() + 300) },
          }))),
        );
        await tf.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ job, args: i, options })));
      }
      await sleep(400);
      const running = await Promise.all(backend.storages.map(async (storage) => {
        const worker = createWorker({
          storage,
          jobs: [job],
          concurrency: 5,
          queues: ["capped", "rated"],
          heartbeatMs: 60_000,
          pollIntervalMs: 50,
        });
        await worker.start();
        return worker;
      }));
      try {
        await eventually(
          async () => assert.equal((await tf.counts()).states.Succeeded, 210),
          30_000,
        );
      } finally {
        await Promise.all(running.map((w) => w.stop()));
      }
      for (const id of expiring) {
        const states = (await tf.events(id)).flatMap((e) => e.type === "state" ? [e] : []);
        assert.deepEqual(states.map((e) => e.state), ["Enqueued", "Deleted"], id);
        assert.equal(states[1].reason, "expired");
      }
      // The rate window counted the 105 starts only: the expired jobs took none of its room.
      assert.equal((await tf.queues.use("rated"))?.startsInWindow, 105);
      await assertConsistent(tf.storage);
    },
  );

  test("a queue without limits is not held back by a limited one", async (backend, tf) => {
    const spans: [number, number][] = [];
    const job = defineJob("flow.free", async () => {
      const start = performance.now();
      await sleep(50);
      spans.push([start, performance.now()]);
    });
    await tf.queues.configure("slow", { concurrency: 1 });
    await tf.enqueueMany(
      Array.from({ length: 20 }, (_, i) => ({ job, args: i, options: { queue: "slow" } })),
    );
    const free = await tf.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ job, args: i })));
    const running = await Promise.all(backend.storages.map(async (storage) => {
      const worker = createWorker({
        storage,
        jobs: [job],
        concurrency: 4,
        queues: ["slow", "default"],
        heartbeatMs: 200,
        pollIntervalMs: 50,
      });
      await worker.start();
      return worker;
    }));
    try {
      for (const id of free) {
        await eventually(async () => assert.equal((await tf.get(id))!.state, "Succeeded"), 10_000);
      }
      const counts = await tf.counts();
      assert.ok(counts.queues.slow.Enqueued > 0, "the slow queue is still waiting");
      assert.ok(counts.queues.slow.Processing <= 1);
    } finally {
      await Promise.all(running.map((w) => w.stop()));
    }
  });

  test(
    "partition concurrency 1, 5 tenants × 10 jobs enqueued tenant after tenant: fair and apart",
    async (
      backend,
      tf,
    ) => {
      const spans = new Map<string, [number, number][]>();
      const job = defineJob("flow.tenant", async (tenant: string) => {
        const start = performance.now();
        await sleep(30);
        const own = spans.get(tenant) ?? [];
        spans.set(tenant, own);
        own.push([start, performance.now()]);
      });
      const tenants = ["t1", "t2", "t3", "t4", "t5"];
      await tf.queues.configure("default", { partition: { concurrency: 1 } });
      // Tenant after tenant: in enqueue order the last tenant would wait for all the others.
      await tf.enqueueMany(
        tenants.flatMap((tenant) =>
          Array.from({ length: 10 }, () => ({ job, args: tenant, options: { partition: tenant } }))
        ),
      );
      const running = await workers(backend, [job], 5);
      try {
        await eventually(
          async () => assert.equal((await tf.counts()).states.Succeeded, 50),
          30_000,
        );
      } finally {
        await Promise.all(running.map((w) => w.stop()));
      }
      for (const tenant of tenants) {
        assert.equal(spans.get(tenant)?.length, 10, tenant);
        assert.equal(mostAtOnce(spans.get(tenant)!), 1, `${tenant}'s jobs never overlap`);
      }
      assert.ok(mostAtOnce([...spans.values()].flat()) > 1, "tenants run in parallel");
      const firstOfLast = Math.min(...spans.get("t5")!.map(([start]) => start));
      const lastOfFirst = Math.max(...spans.get("t1")!.map(([start]) => start));
      assert.ok(firstOfLast < lastOfFirst, "the last tenant starts before the first one is done");
      await assertConsistent(tf.storage);
    },
  );

  test(
    "partition rate 5/s, 2 tenants × 10 jobs: no second holds more than 5 starts of a tenant",
    async (
      backend,
      tf,
    ) => {
      const job = defineJob("flow.tenant-rated", () => sleep(5));
      await tf.queues.configure("default", {
        partition: { rateLimit: { max: 5, perMs: 1_000 } },
      });
      const ids = await tf.enqueueMany(
        ["a", "b"].flatMap((tenant) =>
          Array.from({ length: 10 }, () => ({ job, args: 0, options: { partition: tenant } }))
        ),
      );
      const running = await workers(backend, [job], 10);
      try {
        await eventually(
          async () => assert.equal((await tf.counts()).states.Succeeded, 20),
          30_000,
        );
      } finally {
        await Promise.all(running.map((w) => w.stop()));
      }
      const records = (await tf.storage.getMany(ids)).map((record) => record!);
      for (const tenant of ["a", "b"]) {
        const starts = records.filter((r) => r.options.partition === tenant).map((r) =>
          r.startedAt!
        );
        assert.equal(mostInWindow(starts, 1_000), 5, `tenant ${tenant}: reached, never passed`);
      }
      const all = records.map((r) => r.startedAt!);
      assert.equal(mostInWindow(all, 1_000), 10, "each tenant has its own window");
      await assertConsistent(tf.storage);
    },
  );
}
