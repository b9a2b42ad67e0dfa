/**
 * @module
 * The client's read calls the dashboard uses (servers, timeline, getMany, lease, batches,
 * address): they return what storage holds and reject bad input with a typed error.
 */

import assert from "node:assert/strict";
import { InvalidNameError, InvalidOptionError, TaskFlow } from "../lib/mod.ts";
import { TestClock } from "./helpers.ts";

async function withClient(fn: (tf: TaskFlow, clock: TestClock) => Promise<void>): Promise<void> {
  const clock = new TestClock();
  const tf = await TaskFlow.open("memory:", { now: clock.now });
  try {
    await fn(tf, clock);
  } finally {
    await tf.close();
  }
}

Deno.test("client reads: address is the storage's address", () =>
  withClient((tf) => {
    assert.equal(tf.address, tf.storage.address);
    assert.match(tf.address, /memory/);
    return Promise.resolve();
  }));

Deno.test("client reads: servers lists the servers with a live heartbeat", () =>
  withClient(async (tf) => {
    assert.deepEqual(await tf.servers(), []);
    const server = {
      id: "srv-1",
      hostname: "h",
      pid: 1,
      queues: ["default"],
      concurrency: 2,
      startedAt: Date.now(),
      lastSeen: Date.now(),
      inFlight: 0,
    };
    await tf.storage.heartbeat({ server, ttlMs: 60_000, leases: [], leaseUntil: 0 });
    assert.deepEqual((await tf.servers()).map((s) => s.id), ["srv-1"]);
  }));

Deno.test("client reads: getMany keeps the order of ids, null where there is no job", () =>
  withClient(async (tf) => {
    const a = await tf.enqueue("a.job", {}), b = await tf.enqueue("b.job", {});
    const records = await tf.getMany([b, "missing", a]);
    assert.deepEqual(records.map((r) => r?.name ?? null), ["b.job", null, "a.job"]);
    assert.deepEqual(await tf.getMany([]), []);
    await assert.rejects(tf.getMany(["", a]), InvalidNameError);
    await assert.rejects(tf.getMany("abc" as unknown as string[]), InvalidOptionError);
  }));

Deno.test("client reads: lease is null for a job that is not running", () =>
  withClient(async (tf) => {
    const id = await tf.enqueue("a.job", {});
    assert.equal(await tf.lease(id), null);
    await assert.rejects(tf.lease("bad id"), InvalidNameError);
  }));

Deno.test("client reads: timeline checks its resolution and range", () =>
  withClient(async (tf) => {
    const now = Date.now();
    const points = await tf.timeline("minute", { from: now - 3_600_000, to: now });
    assert.ok(Array.isArray(points));
    await assert.rejects(
      tf.timeline("day" as "hour", { from: 0, to: now }),
      (e: unknown) => e instanceof InvalidOptionError && /minute, hour/.test(e.message),
    );
    await assert.rejects(tf.timeline("hour", { from: NaN, to: now }), InvalidOptionError);
  }));

Deno.test("client reads: batches lists the newest first, at most limit", () =>
  withClient(async (tf, clock) => {
    assert.deepEqual(await tf.batches(), []);
    const first = await tf.batch([{ job: "a.job", args: {} }], { id: "b-1" });
    clock.advance(1_000);
    const second = await tf.batch([{ job: "a.job", args: {} }, { job: "a.job", args: {} }], {
      id: "b-2",
    });
    const all = await tf.batches();
    assert.deepEqual(all.map((s) => s.batch.id), [second.id, first.id]);
    assert.deepEqual(all.map((s) => s.batch.total), [2, 1]);
    assert.deepEqual((await tf.batches({ limit: 1 })).map((s) => s.batch.id), [second.id]);
    await assert.rejects(tf.batches({ limit: 0 }), InvalidOptionError);
  }));
