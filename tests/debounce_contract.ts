/**
 * @module
 * The contract cases of debounced jobs: one Scheduled job per key, rescheduled by compare-and-set
 * with the last arguments by every enqueue of the key (storage cases, run by
 * `runStorageContract`), and run once by a worker (worker cases, run by `runWorkerSuite`).
 */

import assert from "node:assert/strict";
import type { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import { defineJob } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { rebuild } from "../lib/rebuild.ts";
import { appendCommit } from "../lib/changes.ts";
import { assertConsistent, eventually, type TestClock } from "./helpers.ts";
import type { Harness } from "./worker_suite.ts";

type Case = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function due(tf: TaskFlow, before: number): Promise<string[]> {
  return (await tf.storage.due({ state: "Scheduled", before, limit: 100 })).map((r) => r.id);
}

/** Registers the storage cases with the contract suite's `test`. */
export function debounceCases(test: Case): void {
  test(
    "debounce: enqueues of a key reschedule one job with the last arguments",
    async (tf, clock) => {
      const options = { debounce: { key: "reindex:7", delayMs: 500 } };
      const start = clock.t;
      const id = await tf.enqueue("search.reindex", { n: 0 }, options);
      assert.equal((await tf.get(id))!.runAt, start + 500);
      for (let n = 1; n < 10; n++) {
        clock.advance(100);
        assert.equal(await tf.enqueue("search.reindex", { n }, options), id);
      }
      const record = (await tf.get(id))!;
      assert.equal(record.state, "Scheduled");
      assert.deepEqual(record.args, { n: 9 });
      assert.equal(record.runAt, clock.t + 500);
      assert.equal(record.debounced, 9);
      const events = await tf.events(id);
      assert.equal(events.filter((e) => e.type === "debounced").length, 9);
      assert.deepEqual(fold(id, events), record);
      assert.deepEqual(await due(tf, clock.t + 499), []);
      assert.deepEqual(await due(tf, clock.t + 500), [id]);
      assert.equal((await tf.counts()).totals.created, 1);
      await assertConsistent(tf.storage);
      assert.deepEqual((await doctor(tf.storage)).findings, []);
      await rebuild(tf.storage);
      assert.deepEqual(await tf.get(id), record);
      assert.deepEqual(await due(tf, clock.t + 499), []);
      assert.equal(await tf.storage.uniqueHolder("reindex:7"), id);
    },
  );

  test("debounce: maxWaitMs bounds how far enqueues postpone the job", async (tf, clock) => {
    const job = defineJob("digest", () => {}, {
      debounce: {
        key: (args: { user: number }) => `digest:${args.user}`,
        delayMs: 500,
        maxWaitMs: 1_000,
      },
    });
    const start = clock.t;
    const id = await tf.enqueue(job, { user: 1, n: 0 });
    clock.advance(400);
    await tf.enqueue(job, { user: 1, n: 1 });
    assert.equal((await tf.get(id))!.runAt, start + 900);
    clock.advance(400);
    await tf.enqueue(job, { user: 1, n: 2 });
    assert.equal((await tf.get(id))!.runAt, start + 1_000);
    assert.notEqual(await tf.enqueue(job, { user: 2, n: 0 }), id);
    // Once it left Scheduled, the next enqueue makes a new job.
    const promote = appendCommit((await tf.get(id))!, [
      { type: "state", at: clock.t, state: "Enqueued", reason: "due" },
    ]);
    assert.deepEqual(await tf.storage.append([{ commits: [promote] }]), [{ ok: true }]);
    const next = await tf.enqueue(job, { user: 1, n: 3 });
    assert.notEqual(next, id);
    assert.deepEqual((await tf.get(next))!.args, { user: 1, n: 3 });
    assert.equal(await tf.storage.uniqueHolder("digest:1"), next);
  });

  test("debounce: enqueueMany keeps one job per key with the last arguments", async (tf, clock) => {
    const options = { debounce: { key: "k", delayMs: 1_000 } };
    const ids = await tf.enqueueMany([
      { job: "a.job", args: { n: 1 }, options },
      { job: "plain", args: {} },
      { job: "a.job", args: { n: 2 }, options },
    ]);
    assert.equal(ids[2], ids[0]);
    const record = (await tf.get(ids[0]))!;
    assert.deepEqual(record.args, { n: 2 });
    assert.equal(record.runAt, clock.t + 1_000);
    assert.deepEqual((await tf.events(ids[0])).map((e) => e.type), [
      "created",
      "state",
      "debounced",
    ]);
    await assertConsistent(tf.storage);
  });
}

/** Registers the worker cases with the worker suite's `test`. */
export function debounceWorkerCases(
  test: (title: string, fn: (h: Harness) => Promise<void>) => void,
): void {
  test("debounce: 100 enqueues over 2 s with delayMs 500 run once, with the last arguments", async (h) => {
    const runs: number[] = [];
    const job = defineJob("debounced", (args: { n: number }) => {
      runs.push(args.n);
    }, { debounce: { key: "one", delayMs: 500 } });
    await h.worker([job]);
    const id = await h.tf.enqueue(job, { n: 0 });
    for (let n = 1; n < 100; n++) {
      h.clock.advance(20);
      assert.equal(await h.tf.enqueue(job, { n }), id);
    }
    h.clock.advance(499);
    await sleep(150);
    assert.deepEqual(runs, []);
    h.clock.advance(1);
    await h.waitFor(id, "Succeeded");
    assert.deepEqual(runs, [99]);
    assert.equal((await h.tf.counts()).totals.created, 1);
  });

  test("debounce: with maxWaitMs 1,000 the job runs within 1 s of the first enqueue", async (h) => {
    const runs: number[] = [];
    const job = defineJob("capped", (args: { n: number }) => {
      runs.push(args.n);
    }, { debounce: { key: "capped", delayMs: 500, maxWaitMs: 1_000 } });
    await h.worker([job]);
    const start = h.clock.t;
    const id = await h.tf.enqueue(job, { n: 0 });
    const ids = new Set([id]);
    for (let n = 1; n < 100; n++) {
      h.clock.advance(20);
      // Past its due time the job waits for the worker's next poll, not for more enqueues.
      if (h.clock.t - start > 1_000) await h.waitFor(id, "Succeeded");
      ids.add(await h.tf.enqueue(job, { n }));
    }
    await h.waitFor(id, "Succeeded");
    const promoted = (await h.tf.events(id)).find((e) =>
      e.type === "state" && e.state === "Enqueued"
    );
    assert.ok(
      promoted && promoted.at - start <= 1_000 + 20,
      `promoted ${promoted?.at! - start} ms after the first enqueue`,
    );
    // The enqueues after it ran made one more job, which runs 500 ms after the last.
    assert.equal(ids.size, 2);
    h.clock.advance(500);
    await eventually(() => assert.deepEqual(runs, [runs[0], 99]));
    assert.ok(runs[0] >= 49 && runs[0] <= 50, `ran with the arguments of enqueue ${runs[0]}`);
  });
}
