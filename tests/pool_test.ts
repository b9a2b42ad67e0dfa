/**
 * @module
 * The bounded pool of the worker (`lib/worker/pool.ts`): the bound, waiting for a free slot,
 * and waking the waiters without a slot (what a stopping worker does).
 */

import assert from "node:assert/strict";
import { Pool } from "../lib/worker/pool.ts";

/** Resolves on the next macrotask, after every pending microtask. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("pool: the bound holds; whenFree waits for a slot or a wake-up; idle sees through wake-ups", async () => {
  const pool = new Pool(2);
  const gates = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  const runs = gates.map((gate) => pool.run(() => gate.promise));
  assert.equal(pool.free, 0);

  let freed = false;
  const waiting = pool.whenFree().then(() => freed = true);
  await turn();
  assert.equal(freed, false, "no slot is free yet");
  gates[0].resolve();
  await waiting;
  assert.equal(pool.free, 1);

  const task = pool.run(() => Promise.reject(new Error("boom")));
  await assert.rejects(task, /boom/, "a failing task rejects and still frees its slot");
  assert.equal(pool.free, 1);

  let woken = false;
  let idle = false;
  const full = pool.run(() => new Promise((resolve) => setTimeout(resolve, 20)));
  const waiter = pool.whenFree().then(() => woken = true);
  const drained = pool.idle().then(() => idle = true);
  pool.wake();
  await waiter;
  assert.ok(woken, "wake() lets a waiter look again without a free slot");
  assert.equal(pool.free, 0);
  await turn();
  assert.equal(idle, false, "idle() waits on through a wake-up while slots are busy");
  gates[1].resolve();
  await Promise.all([...runs, full, drained]);
  assert.ok(idle);
  assert.equal(pool.busy, 0);
  assert.equal(pool.peak, 2);
});

Deno.test("pool: whenFree's onFree runs as the slot frees, before the waiter resumes; not when a slot is free", async () => {
  const pool = new Pool(1);
  const order: string[] = [];
  assert.equal(pool.free, 1);
  await pool.whenFree(() => order.push("not called: a slot was free"));
  assert.equal(order.length, 0);
  const gate = Promise.withResolvers<void>();
  const task = pool.run(() => gate.promise);
  const waiting = pool.whenFree(() => order.push(`onFree, ${pool.free} free`))
    .then(() => order.push("resumed"));
  await turn();
  assert.equal(order.length, 0);
  gate.resolve();
  await Promise.all([task, waiting]);
  assert.deepEqual(order, ["onFree, 1 free", "resumed"]);
  const again = pool.run(() => new Promise((resolve) => setTimeout(resolve, 10)));
  const woken = pool.whenFree(() => order.push("onFree on wake-up"));
  pool.wake();
  await woken;
  assert.deepEqual(order.at(-1), "onFree on wake-up");
  await again;
});

Deno.test("pool: whenFree(onFree, reserved) waits for a slot beyond the reserved ones (claims in flight)", async () => {
  const pool = new Pool(3);
  const gate = Promise.withResolvers<void>();
  const task = pool.run(() => gate.promise);
  // Two slots are free, and a claim in flight has asked for both.
  let resumed = false;
  const waiting = pool.whenFree(undefined, 2).then(() => resumed = true);
  await turn();
  assert.equal(resumed, false, "the free slots are all reserved");
  gate.resolve();
  await Promise.all([task, waiting]);
  assert.equal(pool.free, 3, "the busy slot freed: one beyond the reserved two");
  await pool.whenFree(undefined, 2);
});

Deno.test("pool: places ahead open only once handlers are timed short; a task ahead starts as a slot frees, never more than size at once", async () => {
  const pool = new Pool(2);
  pool.ahead = 1;
  assert.equal(pool.ahead, 0, "no handler timed yet: nothing is claimed ahead");
  for (let i = 0; i < 20; i++) await pool.run(() => Promise.resolve());
  pool.ahead = 1;
  assert.equal(pool.ahead, 1, "twenty short handlers: one place ahead");
  assert.equal(pool.free, 3);
  const gates = [0, 1, 2].map(() => Promise.withResolvers<void>());
  let running = 0, most = 0;
  const started: number[] = [];
  const runs = gates.map((gate, i) =>
    pool.run(async () => {
      started.push(i);
      most = Math.max(most, ++running);
      await gate.promise;
      running--;
    })
  );
  assert.deepEqual(started, [0, 1], "the third waits for a slot");
  assert.equal(pool.queued, 1);
  assert.equal(pool.free, 0);
  let idle = false;
  const drained = pool.idle().then(() => idle = true);
  gates[0].resolve();
  await runs[0];
  assert.deepEqual(started, [0, 1, 2], "it took the slot the first freed");
  assert.equal(pool.queued, 0);
  gates[1].resolve();
  await turn();
  assert.equal(idle, false, "idle() waits for the task that started ahead");
  gates[2].resolve();
  await Promise.all([...runs, drained]);
  assert.equal(most, 2, "never more than two handlers at once");
  assert.equal(pool.peak, 2);
});

Deno.test("pool: a long handler closes the places ahead; dropQueued forgets the tasks not started", async () => {
  const pool = new Pool(1);
  for (let i = 0; i < 20; i++) await pool.run(() => Promise.resolve());
  pool.ahead = 2;
  const gate = Promise.withResolvers<void>();
  const first = pool.run(() => gate.promise);
  let ranSecond = false;
  void pool.run(() => {
    ranSecond = true;
    return Promise.resolve();
  });
  assert.equal(pool.queued, 1);
  pool.dropQueued();
  assert.equal(pool.queued, 0);
  gate.resolve();
  await first;
  await turn();
  assert.equal(ranSecond, false, "a dropped task never runs");
  await pool.idle();

  // Handlers of 100 ms: places ahead would only make jobs wait.
  for (let i = 0; i < 20; i++) await pool.run(() => new Promise((r) => setTimeout(r, 100)));
  pool.ahead = 2;
  assert.equal(pool.ahead, 0);
});
