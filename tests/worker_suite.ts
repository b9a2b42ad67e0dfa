/**
 * @module
 * End-to-end worker cases, run unchanged against every backend through {@link runWorkerSuite}.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { DiscardError, SnoozeError } from "../storage/errors.ts";
import { defineJob, type JobDefinition, type JobRecord } from "../lib/job.ts";
import { createWorker, type Worker, type WorkerOptions } from "../lib/worker/worker.ts";
import { memberId, STAGED } from "../lib/batch.ts";
import { createCommit } from "../lib/changes.ts";
import type { Storage } from "../storage/storage.ts";
import { assertConsistent, claimCommit, eventually, overriding, TestClock } from "./helpers.ts";
import { debounceWorkerCases } from "./debounce_contract.ts";
import { workflowWorkerCases } from "./workflow_contract.ts";
import { otelWorkerCases } from "./otel_contract.ts";

/** A fresh, empty storage and how to dispose of it. */
export interface WorkerBackend {
  storage: Storage;
  cleanup(): Promise<void>;
}

/** What each worker case gets: a client on the test's clock, and workers on its storage. */
export interface Harness {
  tf: TaskFlow;
  clock: TestClock;
  logs: string[];
  /** Starts a worker on the test's storage (stopped by the harness). */
  worker(jobs: JobDefinition<any, any>[], options?: Partial<WorkerOptions>): Promise<Worker>;
  waitFor(id: string, state: JobRecord["state"], timeoutMs?: number): Promise<JobRecord>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `storage` counting heartbeats per server: each worker beats, and reaps, once a round. */
function countBeats(storage: Storage): { storage: Storage; of(id: string): number } {
  const beats = new Map<string, number>();
  return {
    storage: overriding(storage, {
      heartbeat: (beat) => {
        beats.set(beat.server.id, (beats.get(beat.server.id) ?? 0) + 1);
        return storage.heartbeat(beat);
      },
    }),
    of: (id) => beats.get(id) ?? 0,
  };
}

/** Registers the worker cases for backend `name`. */
export function runWorkerSuite(name: string, open: () => Promise<WorkerBackend>): void {
  const test = (title: string, fn: (h: Harness) => Promise<void>) =>
    Deno.test({
      name: `${name} worker: ${title}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const backend = await open();
        const clock = new TestClock();
        const tf = new TaskFlow(backend.storage, { now: clock.now });
        const workers: Worker[] = [];
        const logs: string[] = [];
        const harness: Harness = {
          tf,
          clock,
          logs,
          async worker(jobs, options = {}) {
            const worker = createWorker({
              storage: backend.storage,
              jobs,
              now: clock.now,
              heartbeatMs: 100,
              pollIntervalMs: 50,
              logger: (level, message) => logs.push(`${level}: ${message}`),
              ...options,
            });
            workers.push(worker);
            await worker.start();
            return worker;
          },
          waitFor: (id, state, timeoutMs = 5_000) =>
            eventually(async () => {
              const record = await tf.get(id);
              assert.equal(
                record?.state,
                state,
                `job ${id} is ${record?.state}: ${record?.reason ?? ""}`,
              );
              return record!;
            }, timeoutMs),
        };
        try {
          await fn(harness);
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
          await backend.cleanup();
        }
      },
    });

  test("never runs more than `concurrency` handlers, and runs every job once", async (h) => {
    let running = 0, max = 0;
    const runs = new Map<number, number>();
    const job = defineJob("work", async (args: { i: number }) => {
      running++;
      max = Math.max(max, running);
      runs.set(args.i, (runs.get(args.i) ?? 0) + 1);
      await sleep(args.i % 5);
      running--;
      return args.i * 2;
    });
    const ids = await h.tf.enqueueMany(
      Array.from({ length: 300 }, (_, i) => ({ job, args: { i } })),
    );
    const worker = await h.worker([job], { concurrency: 7 });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 300), 20_000);
    assert.equal(max, 7, "the pool fills up but never overflows");
    assert.equal(worker.stats.peak, 7);
    assert.equal(runs.size, 300);
    assert.ok([...runs.values()].every((n) => n === 1));
    assert.equal((await h.tf.get(ids[10]))!.result, 20);
    await assertConsistent(h.tf.storage);
  });

  test("a queue limited to the worker's concurrency: no claim comes back short while jobs wait", async (h) => {
    // Counted, not timed: a claim that overtakes the outcomes freeing its slots finds the limit
    // full, comes back short (or refused as limited) and the worker sleeps a poll interval.
    const concurrency = 5, n = 100;
    await h.tf.queues.configure("default", { concurrency });
    const job = defineJob("capped", (args: { i: number }) => sleep(args.i % 3));
    await h.tf.enqueueMany(Array.from({ length: n }, (_, i) => ({ job, args: { i } })));
    const { storage } = h.tf;
    let left = n, short = 0, limited = 0;
    const counted = overriding(storage, {
      claim: storage.claim && (async (query, build) => {
        const result = await storage.claim!(query, build);
        left -= result.claimed.length;
        // Claims in flight take at most a pool's worth: past that, jobs were there to take.
        if (result.claimed.length < query.limit && left >= 2 * concurrency) short++;
        return result;
      }),
      append: async (changes) => {
        const results = await storage.append(changes);
        results.forEach((result, i) => {
          if (!result.ok && result.limited) limited++;
          else if (result.ok && changes[i].cap) left -= changes[i].commits.length;
        });
        return results;
      },
    });
    await h.worker([job], { concurrency, storage: counted });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, n), 20_000);
    assert.deepEqual({ short, limited }, { short: 0, limited: 0 });
  });

  test("handlers that await their progress while every slot is busy, behind a backlog, are not held up", async (h) => {
    // Claims overlap behind a backlog; a claim that fills every slot must not hold back what its
    // jobs write until a slot frees (here none would: each handler waits for its write).
    const job = defineJob("progressing", async (_args: { i: number }, ctx) => {
      await ctx.progress(50);
      await sleep(2);
    });
    await h.tf.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ job, args: { i } })));
    await h.worker([job], { concurrency: 1 });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 30), 20_000);
  });

  test("a stop in the middle of a stream of fast jobs settles at once and leaves none Processing", async (h) => {
    // The stop comes from a handler, at a set count: in the middle of the stream on every
    // backend, however fast it is.
    let worker: Worker | undefined, stopped: Promise<void> | undefined, done = 0, target = 0;
    const job = defineJob("quick", () => {
      if (++done === target) stopped = worker!.stop();
    });
    for (const [round, at] of [50, 400].entries()) {
      await h.tf.enqueueMany(Array.from({ length: 3_000 }, (_, i) => ({ job, args: { i } })));
      [done, target, stopped] = [0, at, undefined];
      worker = await h.worker([job], { concurrency: 20, shutdownTimeoutMs: 10_000 });
      await eventually(() => assert.ok(stopped), 10_000);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) =>
        timer = setTimeout(() => resolve("late"), 10_000)
      );
      const outcome = await Promise.race([stopped!.then(() => "stopped" as const), late]);
      clearTimeout(timer);
      assert.equal(outcome, "stopped", "stop() did not settle within 10 s (held outcomes?)");
      assert.equal(worker.inFlight, 0);
      const counts = (await h.tf.counts()).states;
      assert.equal(counts.Processing, 0, "every claimed job was finished or handed back");
      assert.equal(counts.Succeeded + counts.Enqueued, 3_000 * (round + 1));
      assert.ok(counts.Enqueued > 0, "the stop came before the last job");
    }
    await assertConsistent(h.tf.storage);
  });

  test("jobs claimed ahead of short handlers wait for a slot; a stop puts them back unstarted, no attempt spent", async (h) => {
    const quick = defineJob("quick", () => {});
    await h.tf.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ job: quick, args: { i } })));
    let running = 0, most = 0;
    const ran = new Map<number, number>();
    const gate = Promise.withResolvers<void>();
    const gated = defineJob("gated", async (args: { i: number }) => {
      most = Math.max(most, ++running);
      ran.set(args.i, (ran.get(args.i) ?? 0) + 1);
      await gate.promise;
      running--;
    });
    const worker = await h.worker([quick, gated], { concurrency: 4 });
    // Forty short handlers timed: the pool now takes a quarter of itself ahead.
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 40));
    const ids = await h.tf.enqueueMany(
      Array.from({ length: 10 }, (_, i) => ({ job: gated, args: { i } })),
    );
    // Only a one-call claim (Redis, PostgreSQL, memory) claims ahead.
    const ahead = h.tf.storage.claim ? 1 : 0;
    await eventually(async () => assert.equal((await h.tf.counts()).states.Processing, 4 + ahead));
    assert.equal(running, 4, "the job claimed ahead has not started");
    const stopped = worker.stop();
    await eventually(async () => assert.equal((await h.tf.counts()).states.Processing, 4));
    gate.resolve();
    await stopped;
    const records = (await h.tf.storage.getMany(ids)).map((r) => r!);
    const back = records.filter((r) => r.state === "Enqueued" && r.reason === "server shutdown");
    assert.equal(back.length, ahead, "the job claimed ahead went back");
    assert.equal(records.filter((r) => r.state === "Succeeded").length, 4);
    assert.equal(ran.size, 4, "it never ran");
    await h.worker([quick, gated], { concurrency: 4 });
    for (const record of back) {
      const again = await h.waitFor(record.id, "Succeeded");
      assert.equal(again.attempt, 1, "its attempt was not spent");
    }
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 50));
    assert.equal(most, 4, "never more than four handlers at once");
    assert.ok([...ran.values()].every((n) => n === 1), "each job ran once");
    await assertConsistent(h.tf.storage);
  });

  test("a job claimed ahead and deleted before a slot frees never runs; the worker lets it go", async (h) => {
    // Only a one-call claim (Redis, PostgreSQL, memory) claims ahead.
    if (!h.tf.storage.claim) return;
    const quick = defineJob("quick", () => {});
    await h.tf.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ job: quick, args: { i } })));
    const ran = new Set<number>();
    const gate = Promise.withResolvers<void>();
    const gated = defineJob("gated", async (args: { i: number }) => {
      ran.add(args.i);
      await gate.promise;
    });
    const beats = countBeats(h.tf.storage);
    const worker = await h.worker([quick, gated], { concurrency: 4, storage: beats.storage });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 40));
    const ids = await h.tf.enqueueMany(
      Array.from({ length: 10 }, (_, i) => ({ job: gated, args: { i } })),
    );
    await eventually(async () => assert.equal((await h.tf.counts()).states.Processing, 5));
    const records = (await h.tf.storage.getMany(ids)).map((r) => r!);
    const waiting = records.filter((r) =>
      r.state === "Processing" && !ran.has((r.args as { i: number }).i)
    );
    assert.equal(waiting.length, 1, "one job waits for a slot");
    await h.tf.delete(waiting[0].id);
    // A heartbeat begun after the delete reports the job lost to its worker.
    const seen = beats.of(worker.id);
    await eventually(() => assert.ok(beats.of(worker.id) >= seen + 2));
    gate.resolve();
    await eventually(async () => assert.equal((await h.tf.counts()).states.Succeeded, 49), 10_000);
    assert.equal(ran.has((waiting[0].args as { i: number }).i), false, "the deleted job never ran");
    assert.equal((await h.tf.get(waiting[0].id))!.state, "Deleted");
    await eventually(() => assert.equal(worker.inFlight, 0));
    await assertConsistent(h.tf.storage);
  });

  test("the handler gets args, id, attempt, signal, progress and log", async (h) => {
    let seen: unknown;
    const job = defineJob("ctx", async (args: { name: string }, ctx) => {
      seen = {
        args,
        id: ctx.jobId,
        attempt: ctx.attempt,
        aborted: ctx.signal.aborted,
        name: ctx.name,
      };
      await ctx.progress(50);
      await ctx.log(`hello ${args.name}`);
      await ctx.progress(100);
      return { greeting: `hi ${args.name}` };
    });
    const id = await h.tf.enqueue(job, { name: "Ada" });
    await h.worker([job]);
    const record = await h.waitFor(id, "Succeeded");
    assert.deepEqual(seen, { args: { name: "Ada" }, id, attempt: 1, aborted: false, name: "ctx" });
    assert.deepEqual(record.result, { greeting: "hi Ada" });
    assert.equal(record.progress, 100);
    const events = await h.tf.events(id);
    assert.deepEqual(
      events.map((e) => e.type === "state" ? e.state : e.type),
      ["created", "Enqueued", "Processing", "progress", "log", "progress", "Succeeded"],
    );
    assert.equal(
      events.find((e) => e.type === "log")?.type === "log" && events.find((e) => e.type === "log")!,
      events[4],
    );
  });

  test("a result too large or not JSON fails the job at once, naming the problem", async (h) => {
    const big = defineJob("big", () => "z".repeat(h.tf.storage.limits.result + 1));
    const odd = defineJob("odd", () => ({ when: new Date() }));
    const a = await h.tf.enqueue(big, {});
    const b = await h.tf.enqueue(odd, {});
    await h.worker([big, odd]);
    const ra = await h.waitFor(a, "Failed");
    assert.equal(ra.attempt, 1);
    assert.equal(ra.error?.code, "PAYLOAD_TOO_LARGE");
    assert.match(
      ra.reason!,
      /return value cannot be stored: result is \d+ bytes as JSON, over the limit/,
    );
    const rb = await h.waitFor(b, "Failed");
    assert.match(rb.error!.message, /result\.when is not plain JSON: a Date instance/);
  });

  test("failures retry on the backoff curve with the attempt recorded", async (h) => {
    let calls = 0;
    const flaky = defineJob("flaky", () => {
      calls++;
      if (calls < 3) throw new Error(`boom ${calls}`);
      return "ok";
    }, { attempts: 3, backoff: { type: "fixed", delayMs: 60_000 } });
    const id = await h.tf.enqueue(flaky, {});
    await h.worker([flaky]);
    const first = await h.waitFor(id, "Scheduled");
    assert.equal(first.retryOf, 1);
    assert.equal(first.runAt, first.stateAt + 60_000);
    assert.equal(first.error?.message, "boom 1");
    assert.match(first.reason!, /attempt 1 of 3 failed, retry in 60 s: boom 1/);
    await sleep(150);
    assert.equal((await h.tf.get(id))!.state, "Scheduled", "not due before its time");
    h.clock.advance(60_000);
    const second = await eventually(async () => {
      const r = (await h.tf.get(id))!;
      assert.equal(r.retryOf, 2);
      return r;
    });
    assert.equal(second.state, "Scheduled");
    h.clock.advance(60_000);
    const done = await h.waitFor(id, "Succeeded");
    assert.equal(done.attempt, 3);
    assert.equal(done.result, "ok");
  });

  test("snooze puts the job back to Scheduled without spending an attempt; the log says why", async (h) => {
    const attempts: number[] = [];
    const busy = defineJob("busy", (_args: unknown, ctx) => {
      attempts.push(ctx.attempt);
      if (attempts.length === 1) ctx.snooze(5_000);
      if (attempts.length === 2) throw new SnoozeError(90_000);
      return "done";
    }, { attempts: 1 });
    const id = await h.tf.enqueue(busy, {});
    await h.worker([busy]);
    const first = await h.waitFor(id, "Scheduled");
    assert.equal(first.reason, "snoozed for 5 s by the handler");
    assert.equal(first.runAt, first.stateAt + 5_000);
    assert.equal(first.attempt, 0, "the snoozed run gave its attempt back");
    assert.equal(first.retryOf, undefined);
    h.clock.advance(5_000);
    const second = await eventually(async () => {
      const r = (await h.tf.get(id))!;
      assert.equal(r.reason, "snoozed for 90 s by the handler");
      return r;
    });
    assert.equal(second.state, "Scheduled");
    assert.equal(second.runAt, second.stateAt + 90_000);
    h.clock.advance(90_000);
    const done = await h.waitFor(id, "Succeeded");
    assert.deepEqual(attempts, [1, 1, 1], "ctx.attempt stays 1; attempts: 1 is not used up");
    assert.equal(done.attempt, 1);
    assert.equal(done.result, "done");
    const reasons = (await h.tf.events(id)).flatMap((e) =>
      e.type === "state" && e.state === "Scheduled" ? [e.reason] : []
    );
    assert.deepEqual(reasons, [
      "snoozed for 5 s by the handler",
      "snoozed for 90 s by the handler",
    ]);
  });

  test("a bad snooze fails the attempt with a typed error naming the value", async (h) => {
    const bad = defineJob("bad.snooze", (ms: number, ctx) => ctx.snooze(ms), { attempts: 1 });
    const ids = [
      await h.tf.enqueue(bad, 0),
      await h.tf.enqueue(bad, -5),
      await h.tf.enqueue(bad, 4e11),
    ];
    await h.worker([bad]);
    for (const [i, id] of ids.entries()) {
      const failed = await h.waitFor(id, "Failed");
      assert.equal(failed.error?.code, "INVALID_OPTION");
      assert.match(
        failed.error!.message,
        new RegExp(`invalid snooze ${[0, -5, 4e11][i]}: must be`),
      );
    }
    assert.throws(() => new SnoozeError(Number.NaN), /invalid snooze NaN/);
  });

  test('expiry: a job not started by its expiry never runs and ends Deleted, "expired"', async (h) => {
    let runs = 0;
    const late = defineJob("late", () => ++runs, { queue: "later" });
    const lateAt = defineJob("late.at", () => ++runs, { queue: "later", expiresInMs: 1_000 });
    const stale = await h.tf.enqueue(late, {}, { expiresInMs: 1_000 });
    const byDefault = await h.tf.enqueue(lateAt, {});
    const at = await h.tf.enqueue(late, {}, { expiresAt: new Date(h.clock.now() + 1_000) });
    const due = await h.tf.schedule(late, {}, { delayMs: 5_000, expiresInMs: 2_000 });
    const fresh = await h.tf.enqueue(late, {}, { expiresInMs: 60_000 });
    assert.equal((await h.tf.get(stale))!.options.expiresAt, h.clock.now() + 1_000);
    h.clock.advance(1_000);
    await h.worker([late, lateAt], { queues: ["later"] });
    assert.equal((await h.waitFor(fresh, "Succeeded")).result, 1, "started in time: runs");
    for (const id of [stale, byDefault, at]) {
      assert.equal((await h.waitFor(id, "Deleted")).reason, "expired");
    }
    h.clock.advance(5_000);
    assert.equal((await h.waitFor(due, "Deleted")).reason, "expired");
    assert.equal(runs, 1, "no expired job ran");
  });

  test("expiry: an expired job of a paused queue is deleted by the sweep, never Processing", async (h) => {
    const job = defineJob("late.paused", () => "ran", { queue: "held" });
    await h.tf.pauseQueue("held");
    const id = await h.tf.enqueue(job, {}, { expiresInMs: 1_000 });
    const due = await h.tf.schedule(job, {}, { delayMs: 500, expiresInMs: 1_000 });
    const kept = await h.tf.enqueue(job, {}, { expiresInMs: 60_000 });
    h.clock.advance(1_000);
    await h.worker([job], { queues: ["held"] });
    for (const expired of [id, due]) {
      assert.equal((await h.waitFor(expired, "Deleted")).reason, "expired");
      const states = (await h.tf.events(expired)).flatMap((e) =>
        e.type === "state" ? [e.state] : []
      );
      assert.ok(!states.includes("Processing"), states.join(" → "));
    }
    assert.equal((await h.tf.get(kept))!.state, "Enqueued");
  });

  test("expiry: bad expiresInMs / expiresAt are typed errors naming the value", async (h) => {
    const job = defineJob("exp", () => {});
    const bad: [unknown, RegExp][] = [
      [{ expiresInMs: 0 }, /invalid options\.expiresInMs 0: must be a number of ms from 1/],
      [{ expiresInMs: "5" }, /invalid options\.expiresInMs "5"/],
      [{ expiresAt: h.clock.now() - 1 }, /invalid options\.expiresAt \d+: lies in the past/],
      [{ expiresAt: "soon" }, /invalid options\.expiresAt "soon": must be a valid Date/],
      [{ expiresAt: h.clock.now() + 5, expiresInMs: 5 }, /expiresAt or expiresInMs, not both/],
    ];
    for (const [options, message] of bad) {
      await assert.rejects(() => h.tf.enqueue(job, {}, options as never), (error: Error) => {
        assert.equal((error as { code?: string }).code, "INVALID_OPTION");
        assert.match(error.message, message);
        return true;
      });
    }
    assert.throws(
      () => defineJob("exp.bad", () => {}, { expiresInMs: -1 }),
      /invalid defaults\.expiresInMs -1/,
    );
  });

  test("default backoff is Hangfire's curve; exhausted attempts fail with the stack", async (h) => {
    const always = defineJob("always", () => {
      throw new TypeError("nope");
    }, { attempts: 2 });
    const id = await h.tf.enqueue(always, {});
    await h.worker([always], { random: () => 0.5 });
    const retry = await h.waitFor(id, "Scheduled");
    assert.equal(retry.runAt! - retry.stateAt, (0 + 15 + 15 * 1) * 1000);
    h.clock.advance(30_000);
    const failed = await h.waitFor(id, "Failed");
    assert.equal(failed.attempt, 2);
    assert.equal(failed.error?.name, "TypeError");
    assert.equal(failed.error?.message, "nope");
    assert.match(failed.error!.stack!, /TypeError: nope\n\s+at /);
    assert.match(failed.reason!, /attempt 2 of 2 failed: nope/);
  });

  test("DiscardError fails without retry; an unknown job name fails and the worker goes on", async (h) => {
    const discard = defineJob("discard", () => {
      throw new DiscardError("account closed");
    });
    const fine = defineJob("fine", () => "fine");
    const a = await h.tf.enqueue(discard, {});
    const b = await h.tf.enqueue("nobody.handles.this", {});
    await h.worker([discard, fine]);
    const ra = await h.waitFor(a, "Failed");
    assert.equal(ra.attempt, 1);
    assert.match(ra.reason!, /discarded by the handler: account closed/);
    const rb = await h.waitFor(b, "Failed");
    assert.equal(rb.error?.code, "UNKNOWN_JOB");
    assert.match(
      rb.error!.message,
      /no handler is registered for job name "nobody\.handles\.this" \(this worker knows: discard, fine\)/,
    );
    const c = await h.tf.enqueue(fine, {});
    assert.equal((await h.waitFor(c, "Succeeded")).result, "fine");
  });

  test("timeoutMs aborts the signal and fails the attempt with a timeout error", async (h) => {
    let abortedWith: unknown;
    const slow = defineJob("slow", (_: unknown, ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          abortedWith = ctx.signal.reason;
          reject(ctx.signal.reason);
        });
      }), { timeoutMs: 80, attempts: 1 });
    const id = await h.tf.enqueue(slow, {});
    await h.worker([slow]);
    const failed = await h.waitFor(id, "Failed");
    assert.equal(failed.error?.code, "JOB_TIMEOUT");
    assert.match(failed.error!.message, /job timed out after 80 ms/);
    assert.equal((abortedWith as Error).name, "JobTimeoutError");
  });

  test("deleting a Processing job aborts its signal and fences its result", async (h) => {
    let started = false, aborted = false;
    const job = defineJob("cancellable", async (_: unknown, ctx) => {
      started = true;
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
      aborted = true;
      return "finished anyway";
    });
    const id = await h.tf.enqueue(job, {});
    const worker = await h.worker([job], { heartbeatMs: 50 });
    await eventually(() => assert.ok(started));
    await h.tf.delete(id);
    await eventually(() => assert.ok(aborted), 2_000);
    await eventually(() => assert.equal(worker.stats.fenced, 1));
    const record = (await h.tf.get(id))!;
    assert.equal(record.state, "Deleted");
    assert.equal(record.result, undefined);
    assert.equal(worker.inFlight, 0);
  });

  test("shutdown waits for handlers, then requeues what is left", async (h) => {
    const quick = defineJob("quick", async () => {
      await sleep(30);
      return "done";
    });
    const stubborn = defineJob("stubborn", () => new Promise(() => {}));
    const polite = defineJob(
      "polite",
      (_: unknown, ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
        ),
    );
    const a = await h.tf.enqueue(quick, {});
    const b = await h.tf.enqueue(stubborn, {});
    const c = await h.tf.enqueue(polite, {});
    const worker = await h.worker([quick, stubborn, polite], { shutdownTimeoutMs: 200 });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Processing, 2));
    await eventually(async () => assert.equal((await h.tf.get(a))!.state, "Succeeded"));
    assert.equal((await h.tf.storage.servers()).length, 1);
    await worker.stop();
    for (const id of [b, c]) {
      const record = (await h.tf.get(id))!;
      assert.equal(record.state, "Enqueued");
      assert.equal(record.reason, "server shutdown");
    }
    assert.deepEqual(await h.tf.storage.servers(), []);
    await assertConsistent(h.tf.storage);
  });

  test("continuations follow their parent's outcome", async (h) => {
    const ok = defineJob("ok", () => "ok");
    const bad = defineJob("bad", () => {
      throw new DiscardError("bad");
    });
    const child = defineJob("child", (args: { n: number }) => args.n);
    const [p1, p2, p3] = await h.tf.enqueueMany([{ job: ok, args: {} }, { job: bad, args: {} }, {
      job: "ok",
      args: {},
      options: { queue: "parked" },
    }]);
    const c = {
      s1: await h.tf.continueWith(p1, child, { n: 1 }),
      f1: await h.tf.continueWith(p1, child, { n: 2 }, { on: "finished" }),
      s2: await h.tf.continueWith(p2, child, { n: 3 }),
      f2: await h.tf.continueWith(p2, child, { n: 4 }, { on: "finished" }),
      s3: await h.tf.continueWith(p3, child, { n: 5 }),
      f3: await h.tf.continueWith(p3, child, { n: 6 }, { on: "finished" }),
    };
    await h.worker([ok, bad, child]);
    await h.tf.delete(p3);
    await h.waitFor(c.s1, "Succeeded");
    await h.waitFor(c.f1, "Succeeded");
    assert.match(
      (await h.waitFor(c.s2, "Deleted")).reason!,
      /ended Failed; this continuation runs only after success/,
    );
    await h.waitFor(c.f2, "Succeeded");
    await h.waitFor(c.s3, "Deleted");
    assert.equal((await h.waitFor(c.f3, "Succeeded")).result, 6);
    await assertConsistent(h.tf.storage);
  });

  test("a continuation added while its parent runs neither fences the parent nor is lost", async (h) => {
    let runs = 0;
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => finish = resolve);
    const parent = defineJob("parent.slow", async (_: unknown, ctx) => {
      runs++;
      await ctx.progress(50); // the holder's own writes go on after the continuation lands
      await gate;
      return "parent done";
    });
    const child = defineJob("child.after", () => "child done");
    const id = await h.tf.enqueue(parent, {});
    const worker = await h.worker([parent, child]);
    await h.waitFor(id, "Processing");
    const childId = await h.tf.continueWith(id, child, {});
    finish();
    const done = await h.waitFor(id, "Succeeded");
    assert.equal(done.result, "parent done");
    assert.equal(done.attempt, 1);
    assert.equal((await h.waitFor(childId, "Succeeded")).result, "child done");
    assert.equal(runs, 1);
    assert.equal(worker.stats.fenced, 0);
    await assertConsistent(h.tf.storage);
  });

  test("expired leases of a dead server are reaped and the job runs again", async (h) => {
    const job = defineJob("reaped", (_: unknown, ctx) => ctx.attempt);
    const id = await h.tf.enqueue(job, {}, { queue: "elsewhere" });
    const record = (await h.tf.get(id))!;
    await h.tf.storage.append([{ commits: [claimCommit(record, h.clock.t, "dead-server", 250)] }]);
    // Reaping goes by the reaper's monotonic clock: a lease unchanged for a lease's length.
    const mono = new TestClock(0);
    const beats = countBeats(h.tf.storage);
    const reaper = await h.worker([job], {
      queues: ["elsewhere"],
      storage: beats.storage,
      monotonic: mono.now,
    });
    await eventually(() => assert.ok(beats.of(reaper.id) >= 4));
    assert.equal((await h.tf.get(id))!.state, "Processing", "not reaped before a lease passed");
    mono.advance(300);
    const done = await h.waitFor(id, "Succeeded");
    assert.equal(done.result, 2);
    const reaped = (await h.tf.events(id)).find((e) =>
      e.type === "state" && e.state === "Enqueued" && e.seq > 2
    );
    assert.ok(reaped?.type === "state");
    assert.match(reaped.reason!, /server dead-server stopped heartbeating; lease expired at /);
  });

  test("a finished job listed under Processing by a stale index is never reaped", async (h) => {
    const job = defineJob("finished", () => "done");
    const id = await h.tf.enqueue(job, {});
    await h.worker([job]);
    const done = await h.waitFor(id, "Succeeded");
    // An index that lies (a lost write below the storage API): the finished job shows up among
    // expired leases. Requeueing it would run it again and rewrite its history.
    const inner = h.tf.storage;
    const lying = overriding(inner, {
      due: async (query) => {
        const due = await inner.due(query);
        return query.state === "Processing" ? [...due, done] : due;
      },
      leases: async (query) => {
        const page = await inner.leases(query);
        if (page.cursor) return page;
        return { leases: [...page.leases, { id, serverId: "gone", until: 0 }] };
      },
      lease: async (jobId) =>
        jobId === id ? { serverId: "gone", until: 0 } : await inner.lease(jobId),
    });
    const reaper = await h.worker([job], { storage: lying });
    h.clock.advance(1_000);
    await eventually(() =>
      assert.ok(h.logs.some((line) => line.includes(`job ${id} is listed under Processing`)))
    );
    assert.equal(reaper.stats.reaped, 0);
    const after = (await h.tf.get(id))!;
    assert.equal(after.state, "Succeeded");
    assert.equal(after.version, done.version);
  });

  test("a worker whose clock runs 60 s ahead leaves a live worker's long job alone", async (h) => {
    let runs = 0;
    const gate = Promise.withResolvers<void>();
    const long = defineJob("skew.long", async () => {
      runs++;
      await gate.promise;
      return "done";
    });
    const id = await h.tf.enqueue(long, {});
    const healthy = await h.worker([long], { now: () => Date.now() });
    await h.waitFor(id, "Processing");
    const beats = countBeats(h.tf.storage);
    const ahead = await h.worker([long], {
      storage: beats.storage,
      now: () => Date.now() + 60_000,
    });
    try {
      // Eight reaping rounds of the skewed worker: over two leases (300 ms) of its time.
      await eventually(() => assert.ok(beats.of(ahead.id) >= 8));
      const record = (await h.tf.get(id))!;
      assert.equal(record.state, "Processing", `reaped: ${record.reason}`);
      assert.equal(record.serverId, healthy.id, `reaped: ${record.reason}`);
      assert.equal(ahead.stats.reaped, 0);
    } finally {
      gate.resolve();
    }
    assert.equal((await h.waitFor(id, "Succeeded")).result, "done");
    assert.equal(runs, 1);
    assert.equal(healthy.stats.fenced, 0);
    // The worker counts its outcome once the write returns, which may be after a reader sees it.
    await eventually(() => assert.equal(healthy.stats.succeeded, 1));
  });

  test("a heartbeat slower than the heartbeat interval is not joined by another; the job keeps its lease", async (h) => {
    let beating = 0, most = 0, beats = 0;
    const slowBeats = overriding(h.tf.storage, {
      heartbeat: async (beat) => {
        beating++;
        most = Math.max(most, beating);
        try {
          await sleep(250);
          return await h.tf.storage.heartbeat(beat);
        } finally {
          beating--;
          beats++;
        }
      },
    });
    const gate = Promise.withResolvers<void>();
    const held = defineJob("beats.slow", () => gate.promise);
    const id = await h.tf.enqueue(held, {});
    const worker = await h.worker([held], { storage: slowBeats, heartbeatMs: 50 });
    await h.waitFor(id, "Processing");
    try {
      await eventually(() => assert.ok(beats >= 4, `${beats} beats`));
      assert.equal(most, 1, "one beat at a time");
      assert.equal(worker.stats.fenced, 0);
    } finally {
      gate.resolve();
    }
    assert.equal((await h.waitFor(id, "Succeeded")).attempt, 1);
  });

  test("a worker beating fast waits out the lease of a holder beating slowly", async (h) => {
    let runs = 0;
    const gate = Promise.withResolvers<void>();
    const long = defineJob("slow.beats", async () => {
      runs++;
      await gate.promise;
    });
    const id = await h.tf.enqueue(long, {});
    // Leases of 6 s, extended every 2 s (room for a loaded machine's stalls of a few seconds); the
    // other worker's leases last 150 ms, so judging by its own it would reap within a beat.
    const slow = await h.worker([long], { heartbeatMs: 2_000 });
    await h.waitFor(id, "Processing");
    const beats = countBeats(h.tf.storage);
    const fast = await h.worker([long], { storage: beats.storage, heartbeatMs: 50 });
    try {
      // One beat at a time: on a loaded database 30 beats can take longer than 30 intervals.
      await eventually(() => assert.ok(beats.of(fast.id) >= 30), 30_000);
      assert.equal(fast.stats.reaped, 0);
      assert.equal((await h.tf.get(id))!.serverId, slow.id);
    } finally {
      gate.resolve();
    }
    await h.waitFor(id, "Succeeded");
    assert.equal(runs, 1);
  });

  test("a dead worker's job is reaped after one lease of the reaper's time, though its clock runs 60 s behind", async (h) => {
    const job = defineJob("skew.orphan", (_: unknown, ctx) => ctx.attempt);
    const id = await h.tf.enqueue(job, {}, { queue: "orphans" });
    // The dead worker's last beat: its server record and a lease of 300 ms on its (true) clock.
    const at = Date.now();
    await h.tf.storage.append([{
      commits: [claimCommit((await h.tf.get(id))!, at, "dead-server", 300)],
    }]);
    await h.tf.storage.heartbeat({
      server: {
        id: "dead-server",
        hostname: "gone",
        pid: 1,
        queues: ["orphans"],
        concurrency: 1,
        startedAt: at,
        lastSeen: at,
        inFlight: 1,
      },
      ttlMs: 300,
      leases: [id],
      leaseUntil: at + 300,
    });
    const mono = new TestClock(0);
    const beats = countBeats(h.tf.storage);
    const behind = await h.worker([job], {
      queues: ["orphans"],
      storage: beats.storage,
      now: () => Date.now() - 60_000,
      monotonic: mono.now,
    });
    await eventually(() => assert.ok(beats.of(behind.id) >= 4));
    assert.equal((await h.tf.get(id))!.state, "Processing", "not reaped before a lease passed");
    mono.advance(300);
    const done = await h.waitFor(id, "Succeeded");
    assert.equal(done.result, 2);
    assert.equal(behind.stats.reaped, 1);
    const reaped = (await h.tf.events(id)).find((e) =>
      e.type === "state" && e.state === "Enqueued" && e.seq > 2
    );
    assert.ok(reaped?.type === "state");
    assert.match(reaped.reason!, /server dead-server stopped heartbeating; lease expired at /);
  });

  test("scheduled jobs are promoted when due, with wake-ups off (polling only)", async (h) => {
    const job = defineJob("later", () => "ran");
    const id = await h.tf.schedule(job, {}, { delayMs: 5_000 });
    await h.worker([job], { notifier: false });
    await sleep(120);
    assert.equal((await h.tf.get(id))!.state, "Scheduled");
    h.clock.advance(5_000);
    await h.waitFor(id, "Succeeded");
    const promoted = (await h.tf.events(id)).find((e) =>
      e.type === "state" && e.state === "Enqueued"
    );
    assert.equal(promoted?.type === "state" && promoted.reason, "due");
  });

  test("more due jobs than one read returns are all promoted; jobs due soon are not polled in a busy loop", async (h) => {
    const job = defineJob("soon", () => "ran");
    const items = Array.from({ length: 450 }, (_, n) => ({ job, args: { n } }));
    const ids: string[] = [];
    // Due within the worker's look-ahead (its poll interval, 50 ms here), not yet due.
    for (const item of items) ids.push(await h.tf.schedule(item.job, item.args, { delayMs: 30 }));
    let reads = 0;
    const counting = overriding(h.tf.storage, {
      due: (query) => {
        if (query.state === "Scheduled") reads++;
        return h.tf.storage.due(query);
      },
    });
    await h.worker([job], { storage: counting, concurrency: 50 });
    // A full page of jobs that are not due yet: the worker waits for the first of them.
    await sleep(200);
    assert.ok(reads < 40, `${reads} reads of due jobs in 200 ms while none was due`);
    h.clock.advance(30);
    await eventually(async () => {
      assert.equal((await h.tf.counts()).states.Succeeded, ids.length);
    }, 20_000);
  });

  test("a due job goes straight to Processing when its queue is empty; behind a backlog it waits its turn", async (h) => {
    const order: string[] = [];
    const gate = Promise.withResolvers<void>();
    const job = defineJob("due.order", async (args: { tag: string }) => {
      order.push(args.tag);
      if (args.tag.startsWith("block")) await gate.promise;
    });
    const promotions = new Map<string, string[]>();
    const recording = overriding(h.tf.storage, {
      append: (changes) => {
        for (const commit of changes.flatMap((change) => change.commits)) {
          const states = commit.events.flatMap((e) => e.type === "state" ? [e.state] : []);
          if (states[0] === "Enqueued" && commit.expect > 0) promotions.set(commit.id, states);
        }
        return h.tf.storage.append(changes);
      },
    });
    await h.worker([job], { storage: recording, concurrency: 2 });

    // Empty queue, free slots: promoted and claimed in one commit.
    const alone = await h.tf.schedule(job, { tag: "alone" }, { delayMs: 5_000 });
    h.clock.advance(5_000);
    await h.waitFor(alone, "Succeeded");
    assert.deepEqual(promotions.get(alone), ["Enqueued", "Processing"]);
    const events = (await h.tf.events(alone)).flatMap((e) => e.type === "state" ? [e.state] : []);
    assert.deepEqual(events, ["Scheduled", "Enqueued", "Processing", "Succeeded"]);

    // Both slots busy and a backlog: the due job waits its turn behind the backlog.
    await h.tf.enqueue(job, { tag: "block1" });
    await h.tf.enqueue(job, { tag: "block2" });
    await eventually(() => assert.equal(order.length, 3));
    await h.tf.enqueue(job, { tag: "b" });
    await h.tf.enqueue(job, { tag: "c" });
    const late = await h.tf.schedule(job, { tag: "late" }, { delayMs: 1_000 });
    h.clock.advance(1_000);
    gate.resolve();
    await h.waitFor(late, "Succeeded");
    assert.deepEqual(order.slice(3), ["b", "c", "late"]);
  });

  test("due jobs that go straight to Processing are taken in claim order: queue, then priority", async (h) => {
    const order: string[] = [];
    const job = defineJob("due.rank", (args: { tag: string }) => {
      order.push(args.tag);
    });
    await h.worker([job], { concurrency: 1, queues: ["first", "second"] });
    // All due in the same turn, earliest due first in the due index.
    const at = (ms: number) => ({ delayMs: 5_000 + ms });
    const ids = [
      await h.tf.schedule(job, { tag: "second-queue" }, { ...at(0), queue: "second" }),
      await h.tf.schedule(job, { tag: "low" }, { ...at(1), queue: "first" }),
      await h.tf.schedule(job, { tag: "high" }, { ...at(2), queue: "first", priority: 10 }),
    ];
    h.clock.advance(6_000);
    for (const id of ids) await h.waitFor(id, "Succeeded");
    assert.deepEqual(order, ["high", "low", "second-queue"]);
  });

  test("batches: the continuation runs once after every member succeeded", async (h) => {
    let thenRuns = 0;
    const member = defineJob("batch.member", (args: { n: number }) => args.n);
    const after = defineJob("batch.then", () => void thenRuns++);
    const { id, jobIds, thenId } = await h.tf.batch(
      Array.from({ length: 20 }, (_, n) => ({ job: member, args: { n } })),
      { then: { job: after, args: {} } },
    );
    assert.equal(jobIds.length, 20);
    assert.equal((await h.tf.get(thenId!))!.state, "Awaiting");
    await h.worker([member, after], { concurrency: 5 });
    await h.waitFor(thenId!, "Succeeded");
    const status = await eventually(async () => {
      const current = (await h.tf.batchStatus(id))!;
      assert.equal(current.batch.state, "finished");
      return current;
    });
    assert.deepEqual(status.counts, { succeeded: 20, failed: 0, deleted: 0 });
    await sleep(150);
    assert.equal(thenRuns, 1);
    await assertConsistent(h.tf.storage);
  });

  test("batches: a failed member deletes an on-success continuation; on-finished still runs", async (h) => {
    const member = defineJob("batch.maybe", (args: { fail: boolean }) => {
      if (args.fail) throw new DiscardError("no");
    });
    const after = defineJob("batch.after", () => "after");
    const items = [{ job: member, args: { fail: false } }, { job: member, args: { fail: true } }];
    const strict = await h.tf.batch(items, { then: { job: after, args: {} } });
    const lenient = await h.tf.batch(items, { then: { job: after, args: {} }, on: "finished" });
    await h.worker([member, after]);
    const deleted = await h.waitFor(strict.thenId!, "Deleted");
    assert.match(deleted.reason!, /finished with 1 failed and 0 deleted; runs only if all succeed/);
    await h.waitFor(lenient.thenId!, "Succeeded");
    assert.deepEqual((await h.tf.batchStatus(lenient.id))!.counts, {
      succeeded: 1,
      failed: 1,
      deleted: 0,
    });
  });

  test("batches: large batches are staged, then released; bad items write nothing", async (h) => {
    await assert.rejects(h.tf.batch([]), /batch items 0: must be an array of 1 to 100000 jobs/);
    await assert.rejects(
      h.tf.batch([{ job: "ok", args: 1 }, { job: "ok", args: { f: () => 1 } }]),
      /args\.f is not plain JSON/,
    );
    assert.equal((await h.tf.counts()).totals.created, 0);
    assert.deepEqual(await h.tf.storage.batches.list(), []);
    const { id } = await h.tf.batch(
      Array.from({ length: 1_200 }, (_, n) => ({ job: "big.member", args: { n } })),
    );
    const counts = await h.tf.counts();
    assert.equal(counts.states.Enqueued, 1_200, "all released once all were written");
    assert.equal((await h.tf.batchStatus(id))!.batch.released, true);
    await assert.rejects(h.tf.batch([{ job: "x", args: 1 }], { id }), /already exists/);
  });

  test("batches: cancelBatch deletes unfinished members and the continuation", async (h) => {
    const slow = defineJob(
      "batch.slow",
      (_: unknown, ctx) =>
        new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve("stopped"))),
    );
    const { id, thenId } = await h.tf.batch(
      Array.from({ length: 6 }, () => ({ job: slow, args: {} })),
      { then: { job: "never", args: {} } },
    );
    await h.worker([slow], { concurrency: 2, heartbeatMs: 50 });
    await eventually(async () => assert.equal((await h.tf.counts()).states.Processing, 2));
    const status = await h.tf.cancelBatch(id);
    assert.equal(status.batch.state, "cancelled");
    assert.equal((await h.tf.get(thenId!))!.state, "Deleted");
    await eventually(async () =>
      assert.deepEqual((await h.tf.batchStatus(id))!.counts, {
        succeeded: 0,
        failed: 0,
        deleted: 6,
      })
    );
  });

  test("batches: a worker finishes a batch whose producer died after opening it", async (h) => {
    const at = h.clock.t;
    await h.tf.storage.batches.put({
      id: "orphaned",
      version: 2,
      total: 3,
      state: "open",
      released: false,
      on: "succeeded",
      createdAt: at,
    }, 0);
    await h.tf.storage.append(Array.from({ length: 3 }, (_, n) => ({
      commits: [createCommit(memberId("orphaned", n), {
        type: "created",
        at,
        name: "orphan.member",
        queue: "default",
        args: n,
        priority: 0,
        options: {},
        batchId: "orphaned",
      }, [{ type: "state", at, state: "Awaiting", reason: STAGED }])],
    })));
    const member = defineJob("orphan.member", () => "ok");
    await h.worker([member]);
    await eventually(
      async () => assert.equal((await h.tf.batchStatus("orphaned"))!.counts.succeeded, 3),
      5_000,
    );
    await eventually(async () =>
      assert.equal((await h.tf.batchStatus("orphaned"))!.batch.state, "finished")
    );
  });

  test("a paused queue is left alone until resumed", async (h) => {
    const job = defineJob("paused.job", () => "ran");
    await h.tf.pauseQueue("slow");
    const id = await h.tf.enqueue(job, {}, { queue: "slow" });
    await h.worker([job], { queues: ["slow"] });
    await sleep(250);
    assert.equal((await h.tf.get(id))!.state, "Enqueued");
    await h.tf.resumeQueue("slow");
    await h.waitFor(id, "Succeeded");
  });

  test("queues are served in the order given; other queues are left alone", async (h) => {
    const order: string[] = [];
    const job = defineJob("ordered", (args: { q: string }) => void order.push(args.q));
    await h.tf.enqueueMany([
      { job, args: { q: "low" }, options: { queue: "low" } },
      { job, args: { q: "high" }, options: { queue: "high" } },
      { job, args: { q: "other" }, options: { queue: "other" } },
    ]);
    await h.worker([job], { queues: ["high", "low"], concurrency: 1 });
    await eventually(() => assert.deepEqual(order, ["high", "low"]));
    await sleep(100);
    assert.equal((await h.tf.counts()).queues.other.Enqueued, 1);
  });

  // Retention (issue 19): pruning by age, dependants, archive.
  const PRUNE_MS = 150;
  const quiet = { heartbeatMs: 60_000, pruneIntervalMs: PRUNE_MS };

  test("retention: a succeeded job is gone within one prune interval of its expiry, though nothing else happens; a failed one stays", async (h) => {
    const ok = defineJob("keep.ok", () => "done");
    const bad = defineJob("keep.bad", () => {
      throw new Error("no");
    }, { attempts: 1 });
    const done = await h.tf.enqueue(ok, {}, { id: "receipt-1" });
    const failed = await h.tf.enqueue(bad, {});
    await h.worker([ok, bad], { ...quiet, retention: { succeeded: { maxAgeMs: 60_000 } } });
    const { stateAt } = await h.waitFor(done, "Succeeded");
    await h.waitFor(failed, "Failed");
    h.clock.t = stateAt + 59_999;
    await sleep(PRUNE_MS * 3);
    assert.ok(await h.tf.get(done), "not before its expiry");
    h.clock.t = stateAt + 60_000;
    await eventually(async () => assert.equal(await h.tf.get(done), null), PRUNE_MS * 3);
    assert.deepEqual(await h.tf.events(done), []);
    assert.equal((await h.tf.get(failed))?.state, "Failed", "failed jobs are kept 30 days");
    const counts = await h.tf.counts();
    assert.equal(counts.states.Succeeded, 0);
    assert.equal(counts.totals.succeeded, 1, "all-time totals stay");
    assert.equal(counts.totals.pruned, 1);
    assert.equal(await h.tf.enqueue(ok, {}, { id: "receipt-1" }), "receipt-1", "its id is free");
  });

  test("retention: a job is kept while its continuation has not finished", async (h) => {
    const gate = Promise.withResolvers<void>();
    const parentJob = defineJob("keep.parent", () => 1);
    const childJob = defineJob("keep.child", () => gate.promise);
    const parent = await h.tf.enqueue(parentJob, {});
    const child = await h.tf.continueWith(parent, childJob, {});
    await h.worker([parentJob, childJob], { ...quiet, retention: { succeeded: { maxAgeMs: 0 } } });
    await h.waitFor(child, "Processing");
    h.clock.advance(1_000);
    await sleep(PRUNE_MS * 3);
    assert.equal((await h.tf.get(parent))?.state, "Succeeded", "its continuation still runs");
    gate.resolve();
    await eventually(async () => {
      assert.equal(await h.tf.get(child), null);
      assert.equal(await h.tf.get(parent), null);
    }, PRUNE_MS * 6);
  });

  test("retention: the archive gets record and log before removal; a throwing archive removes nothing", async (h) => {
    const job = defineJob("keep.archived", () => "r");
    const id = await h.tf.enqueue(job, { n: 1 });
    let failing = true;
    const archived: Array<{ id: string; events: number; version: number; present: boolean }> = [];
    const archive = async (jobs: { record: JobRecord; events: unknown[] }[]) => {
      if (failing) throw new Error("archive bucket unreachable");
      for (const { record, events } of jobs) {
        const present = (await h.tf.get(record.id)) !== null;
        archived.push({ id: record.id, events: events.length, version: record.version, present });
      }
    };
    await h.worker([job], { ...quiet, retention: { succeeded: { maxAgeMs: 1_000 }, archive } });
    await h.waitFor(id, "Succeeded");
    h.clock.advance(1_000);
    await sleep(PRUNE_MS * 4);
    assert.ok(await h.tf.get(id), "nothing is removed while the archive throws");
    const warnings = h.logs.filter((l) => l.includes("archive bucket unreachable"));
    assert.equal(warnings.length, 1, `logged once, not every pass: ${h.logs.join("\n")}`);
    assert.equal((await h.tf.retention())?.archive, true);
    failing = false;
    await eventually(async () => assert.equal(await h.tf.get(id), null), PRUNE_MS * 4);
    assert.equal(archived.length, 1);
    assert.equal(archived[0].id, id);
    assert.equal(archived[0].events, archived[0].version, "the whole log");
    assert.equal(archived[0].present, true, "archived before the removal");
  });

  debounceWorkerCases(test);
  workflowWorkerCases(test);
  otelWorkerCases(test);
}
