/**
 * @module
 * The statistics reads of the client (`jobStats`, `waitTimes`, `statTotals`) and the quantile
 * arithmetic under them, over the memory backend (every backend stores the same counters: see
 * stats_contract.ts).
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import { InvalidOptionError, quantile, TaskFlow } from "../lib/mod.ts";
import { claimCommit, TestClock } from "./helpers.ts";

/** Runs one attempt of a new job `name` in `queue`: it waits `waitMs`, runs `ms`, ends `end`. */
async function attempt(
  tf: TaskFlow,
  clock: TestClock,
  name: string,
  { waitMs = 0, ms, end = "Succeeded", queue = "default" }: {
    waitMs?: number;
    ms: number;
    end?: "Succeeded" | "Failed";
    queue?: string;
  },
): Promise<void> {
  const id = await tf.enqueue(name, {}, { queue });
  clock.advance(waitMs);
  const claim = claimCommit((await tf.get(id))!, clock.t);
  await tf.storage.append([{ commits: [claim] }]);
  clock.advance(ms);
  const state = { type: "state" as const, at: clock.t, state: end, data: { durationMs: ms } };
  await tf.storage.append([{ commits: [appendCommit(claim.record, [state])] }]);
}

async function withClient(fn: (tf: TaskFlow, clock: TestClock) => Promise<void>): Promise<void> {
  // A whole hour, so that the hour windows start with this test's first attempt.
  const clock = new TestClock(Math.floor(Date.now() / 3_600_000) * 3_600_000);
  const tf = await TaskFlow.open("memory:", { now: clock.now });
  try {
    await fn(tf, clock);
  } finally {
    await tf.close();
  }
}

Deno.test("stats: quantiles interpolate within the bucket, the unbounded one counts as its bound", () => {
  const h = { bounds: [10, 20, 40], counts: [0, 10, 0, 0], sumMs: 0 };
  assert.equal(quantile(0.5, h), 15);
  assert.equal(quantile(1, h), 20);
  assert.equal(quantile(0.5, { ...h, counts: [0, 0, 0, 0] }), undefined);
  assert.equal(quantile(0.99, { ...h, counts: [9, 0, 0, 1] }), 40);
  assert.equal(quantile(0.5, { ...h, counts: [4, 0, 4, 0] }), 10);
});

Deno.test("stats: jobStats counts attempts per name over 1h, 24h, 7d and all time", () =>
  withClient(async (tf, clock) => {
    for (let i = 0; i < 18; i++) await attempt(tf, clock, "mail.send", { ms: 40 });
    for (let i = 0; i < 2; i++) await attempt(tf, clock, "mail.send", { ms: 700, end: "Failed" });
    await attempt(tf, clock, "report.build", { ms: 3 });
    // Two hours later: the last hour holds only this attempt, the last day all of them.
    clock.advance(2 * 3_600_000);
    await attempt(tf, clock, "mail.send", { ms: 4_000 });

    const hour = await tf.jobStats({ window: "1h", name: "mail.send" });
    assert.equal(hour.length, 1);
    assert.equal(hour[0].succeeded, 1);
    assert.equal(hour[0].p50Ms, 2_500 + (5_000 - 2_500) * 0.5);
    const day = await tf.jobStats({ window: "24h" });
    assert.deepEqual(day.map((s) => s.name), ["mail.send", "report.build"]);
    const mail = day[0];
    assert.equal(mail.succeeded, 19);
    assert.equal(mail.failed, 2);
    assert.equal(mail.failureRate, 2 / 21);
    assert.ok(mail.p50Ms! > 25 && mail.p50Ms! <= 50, `p50 ${mail.p50Ms}`);
    assert.ok(mail.p95Ms! > 500 && mail.p95Ms! <= 1_000, `p95 ${mail.p95Ms}`);
    assert.ok(mail.p99Ms! > 2_500 && mail.p99Ms! <= 5_000, `p99 ${mail.p99Ms}`);
    assert.deepEqual(
      (await tf.jobStats({ window: "7d" })).map((s) => s.succeeded + s.failed),
      [21, 1],
    );
    const all = await tf.jobStats({ window: "all", name: "mail.send" });
    assert.equal(all[0].durations.sumMs, 18 * 40 + 2 * 700 + 4_000);
    assert.deepEqual(await tf.jobStats({ name: "never.ran" }), []);
    await assert.rejects(tf.jobStats({ window: "2h" as "1h" }), InvalidOptionError);
    await assert.rejects(tf.jobStats({ name: "" }), InvalidOptionError);
    await assert.rejects(tf.jobStats({ windw: "1h" } as never), InvalidOptionError);
  }));

Deno.test("stats: waitTimes gives p50/p95 per minute, zero minutes included, per queue", () =>
  withClient(async (tf, clock) => {
    const start = clock.t;
    for (let i = 0; i < 18; i++) await attempt(tf, clock, "a", { waitMs: 100, ms: 1 });
    for (let i = 0; i < 2; i++) {
      await attempt(tf, clock, "a", { waitMs: 20_000, ms: 1, queue: "slow" });
    }
    clock.advance(120_000);
    const minutes = await tf.waitTimes({ from: start, to: clock.t });
    assert.equal(minutes.length, 3);
    assert.equal(minutes[0].started, 20);
    assert.ok(minutes[0].p50Ms! > 50 && minutes[0].p50Ms! <= 100);
    assert.equal(minutes[0].p95Ms, 20_000); // rank 19 of 20: halfway through the 10–30 s bucket
    assert.deepEqual(minutes.slice(1).map((m) => m.started), [0, 0]);
    assert.equal(minutes[1].p50Ms, undefined);
    const slow = await tf.waitTimes({ from: start, to: start }, { queue: "slow" });
    assert.equal(slow[0].started, 2);
    await assert.rejects(tf.waitTimes({ from: 5, to: 1 }), InvalidOptionError);
    await assert.rejects(tf.waitTimes({ from: 0, to: 1 }, { queue: "bad queue!" }));
  }));

Deno.test("stats: statTotals holds all-time outcomes, durations and waits", () =>
  withClient(async (tf, clock) => {
    await attempt(tf, clock, "a", { waitMs: 30, ms: 7 });
    await attempt(tf, clock, "a", { ms: 7, end: "Failed" });
    const { jobs, waits } = await tf.statTotals();
    assert.deepEqual(jobs.a.outcomes, { succeeded: 1, failed: 1 });
    assert.equal(jobs.a.durations.counts[1], 2);
    assert.equal(jobs.a.durations.sumMs, 14);
    assert.equal(waits.default.counts.reduce((n, c) => n + c, 0), 2);
    assert.equal(waits.default.sumMs, 30);
  }));
