/**
 * @module
 * Retention: the pure pruning decision, the policy in force, and `tf.prune()` on memory storage
 * (the worker-level cases are in worker_suite.ts and run on every backend).
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob, type JobRecord } from "../lib/job.ts";
import {
  blockedBy,
  countExcess,
  DEFAULT_RETENTION,
  effectiveRule,
  expiredByAge,
  prunePass,
  readRetention,
  removable,
  type ResolvedRetention,
} from "../lib/retention/mod.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import type { BatchRecord } from "../lib/batch.ts";
import { claimCommit, eventually, overriding, TestClock } from "./helpers.ts";
import { appendCommit } from "../lib/changes.ts";
import { ndjsonArchive, readRetentionFlag } from "../lib/cli/retention.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = 1_800_000_000_000;

/** A finished record (only what the decision reads). */
function rec(fields: Partial<JobRecord> = {}): JobRecord {
  return {
    id: "j",
    name: "x",
    queue: "default",
    args: {},
    priority: 0,
    options: {},
    state: "Succeeded",
    stateAt: NOW - DAY,
    createdAt: NOW - DAY,
    version: 4,
    attempt: 1,
    continuations: [],
    ...fields,
  };
}

const none = { jobs: new Map(), batches: new Map() };
const policy: ResolvedRetention = { ...DEFAULT_RETENTION };

Deno.test("decide: age expires at stateAt + maxAgeMs, not a millisecond before", () => {
  const job = rec({ stateAt: NOW - DAY });
  assert.equal(expiredByAge(job, { maxAgeMs: DAY }, NOW), true);
  assert.equal(expiredByAge(job, { maxAgeMs: DAY + 1 }, NOW), false);
  assert.equal(expiredByAge(job, false, NOW), false, "false keeps forever");
  assert.equal(expiredByAge(job, { maxCount: 1 }, NOW), false, "a count rule has no age");
  assert.equal(removable(job, "age", policy, NOW), true);
  assert.equal(removable(rec({ state: "Failed" }), "age", policy, NOW), false, "failed: 30 days");
  assert.equal(
    removable(rec({ state: "Failed", stateAt: NOW - 30 * DAY }), "age", policy, NOW),
    true,
  );
});

Deno.test("decide: count keeps the newest maxCount", () => {
  assert.equal(countExcess(15, { maxCount: 10 }), 5);
  assert.equal(countExcess(7, { maxCount: 10 }), 0);
  assert.equal(countExcess(7, { maxCount: 0 }), 7);
  assert.equal(countExcess(7, { maxAgeMs: 1 }), 0);
  assert.equal(countExcess(7, false), 0);
});

Deno.test("decide: a job's own keep overrides the policy, per state or for all", () => {
  const forever = rec({ keep: false, stateAt: 0 });
  assert.deepEqual(effectiveRule(forever, policy), { keep: false, own: true });
  assert.equal(removable(forever, "age", policy, NOW), false);
  assert.equal(removable(forever, "count", policy, NOW), false, "own keep: exempt from counts");
  const short = rec({ keep: { maxAgeMs: HOUR }, stateAt: NOW - HOUR });
  assert.equal(removable(short, "own", policy, NOW), true, "an hour, though the policy says a day");
  const perState = { succeeded: false as const, failed: { maxAgeMs: HOUR } };
  assert.equal(removable(rec({ keep: perState, stateAt: 0 }), "age", policy, NOW), false);
  const failed = rec({ keep: perState, state: "Failed", stateAt: NOW - HOUR });
  assert.equal(removable(failed, "own", policy, NOW), true);
  const deleted = rec({ keep: perState, state: "Deleted", stateAt: NOW - DAY });
  assert.deepEqual(effectiveRule(deleted, policy), { keep: { maxAgeMs: DAY }, own: false });
  assert.equal(removable(deleted, "age", policy, NOW), true, "states left out follow the policy");
  assert.equal(removable(deleted, "own", policy, NOW), false, "the own sweep leaves them alone");
  const off = { succeeded: false, failed: false, deleted: false } as const;
  assert.equal(removable(rec({ stateAt: 0 }), "age", off, NOW), false, "policy false: forever");
});

Deno.test("decide: never a non-final job, a job whose continuation has not finished, an open batch's member", () => {
  for (const state of ["Enqueued", "Scheduled", "Awaiting", "Processing"] as const) {
    assert.equal(removable(rec({ state, stateAt: 0 }), "age", policy, NOW), false, state);
    assert.equal(blockedBy(rec({ state }), none), `it is ${state}`);
  }
  const parent = rec({ continuations: [{ id: "c", on: "succeeded" }] });
  const waiting = {
    jobs: new Map([["c", rec({ id: "c", state: "Awaiting" })]]),
    batches: new Map(),
  };
  assert.equal(blockedBy(parent, waiting), "its continuation c is Awaiting");
  const released = {
    jobs: new Map([["c", rec({ id: "c", state: "Enqueued" })]]),
    batches: new Map(),
  };
  assert.equal(blockedBy(parent, released), "its continuation c is Enqueued", "it may read us");
  const done = { jobs: new Map([["c", rec({ id: "c", state: "Failed" })]]), batches: new Map() };
  assert.equal(blockedBy(parent, done), undefined);
  assert.equal(blockedBy(parent, none), undefined, "a continuation already gone waits no more");
  const batch = (state: BatchRecord["state"], thenId?: string) => ({
    jobs: new Map([["b:then", rec({ id: "b:then", state: "Awaiting" })]]),
    batches: new Map([[
      "b",
      {
        id: "b",
        version: 1,
        total: 2,
        state,
        released: true,
        on: "succeeded",
        createdAt: 0,
        thenId,
      } as BatchRecord,
    ]]),
  });
  const member = rec({ batchId: "b" });
  assert.equal(blockedBy(member, batch("open")), "its batch b is open");
  assert.equal(blockedBy(member, batch("creating")), "its batch b is creating");
  assert.equal(
    blockedBy(member, batch("finished", "b:then")),
    "its batch's continuation b:then is Awaiting",
  );
  assert.equal(blockedBy(member, batch("finished")), undefined);
  assert.equal(blockedBy(member, batch("cancelled")), undefined);
});

Deno.test("policy: false keeps everything, absent states take the defaults", () => {
  assert.deepEqual(readRetention(false).policy, {
    succeeded: false,
    failed: false,
    deleted: false,
  });
  assert.deepEqual(readRetention(undefined).policy, DEFAULT_RETENTION);
  const { policy } = readRetention({ succeeded: { maxCount: 5 } });
  assert.deepEqual(policy, { ...DEFAULT_RETENTION, succeeded: { maxCount: 5 } });
});

/** A memory TaskFlow with `n` jobs moved to `state` at the clock's time. */
async function finishedJobs(
  tf: TaskFlow,
  n: number,
  state: "Succeeded" | "Failed" | "Deleted",
  options = {},
) {
  const ids = await tf.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ job: "x", args: i, options })),
  );
  for (const id of ids) await finish(tf, id, state);
  return ids;
}

async function finish(tf: TaskFlow, id: string, state: "Succeeded" | "Failed" | "Deleted") {
  if (state === "Deleted") return await tf.delete(id);
  const claim = claimCommit((await tf.get(id))!, tf.now());
  await tf.storage.append([{ commits: [claim] }]);
  const done = appendCommit(claim.record, [{ type: "state", at: tf.now(), state }]);
  await tf.storage.append([{ commits: [done] }]);
}

Deno.test("prune: dryRun removes nothing and reports; then a real prune removes what it reported", async () => {
  const clock = new TestClock(NOW);
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  try {
    const old = await finishedJobs(tf, 3, "Succeeded");
    const failed = await finishedJobs(tf, 2, "Failed");
    clock.advance(DAY);
    const young = await finishedJobs(tf, 1, "Succeeded");
    const dry = await tf.prune({ dryRun: true });
    assert.deepEqual(dry.removed, { succeeded: 3, failed: 0, deleted: 0 });
    assert.deepEqual(dry.ids.sort(), [...old].sort());
    assert.equal(dry.dryRun, true);
    for (const id of old) assert.ok(await tf.get(id), "a dry run removes nothing");
    const real = await tf.prune();
    assert.deepEqual(real.removed, { succeeded: 3, failed: 0, deleted: 0 });
    assert.equal(real.dryRun, false);
    for (const id of old) assert.equal(await tf.get(id), null);
    for (const id of [...failed, ...young]) assert.ok(await tf.get(id));
    const counts = await tf.counts();
    assert.equal(counts.states.Succeeded, 1);
    assert.equal(counts.totals.succeeded, 4, "all-time totals stay");
    assert.equal(counts.totals.pruned, 3);
  } finally {
    await tf.close();
  }
});

Deno.test("prune: a pruned job is null from get, has no log, and its custom id can be used again", async () => {
  const clock = new TestClock(NOW);
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  try {
    await tf.enqueue("x", { v: 1 }, { id: "invoice-7" });
    await finish(tf, "invoice-7", "Succeeded");
    clock.advance(DAY);
    assert.deepEqual((await tf.prune()).ids, ["invoice-7"]);
    assert.equal(await tf.get("invoice-7"), null);
    assert.deepEqual(await tf.events("invoice-7"), []);
    assert.equal(await tf.enqueue("x", { v: 2 }, { id: "invoice-7" }), "invoice-7");
    assert.deepEqual((await tf.get("invoice-7"))?.args, { v: 2 });
  } finally {
    await tf.close();
  }
});

Deno.test("prune: count keeps the newest, per-job keep wins, limit bounds a pass", async () => {
  const clock = new TestClock(NOW);
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage, { now: clock.now });
  try {
    await storage.settings.put({
      id: "retention",
      version: 1,
      succeeded: { maxCount: 2 },
      failed: false,
      deleted: { maxAgeMs: HOUR },
      archive: false,
      updatedAt: NOW,
      by: "test",
    }, 0);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(...await finishedJobs(tf, 1, "Succeeded"));
      clock.advance(1_000);
    }
    const [kept] = await finishedJobs(tf, 1, "Succeeded", { keep: false });
    const failed = await finishedJobs(tf, 1, "Failed", { keep: { maxAgeMs: HOUR } });
    const deleted = await finishedJobs(tf, 2, "Deleted", { keep: { deleted: false } });
    clock.advance(HOUR);
    const report = await tf.prune();
    // 6 Succeeded, 2 kept: the 4 oldest go, except the one kept by its own keep, so the oldest 4
    // without a keep of their own; 5 plain ones, so ids[0..3] go and ids[4] stays.
    assert.deepEqual(report.removed, { succeeded: 4, failed: 1, deleted: 0 });
    assert.deepEqual(report.ids.slice(0, 4), ids.slice(0, 4));
    assert.ok(await tf.get(ids[4]));
    assert.ok(await tf.get(kept), "keep: false is kept forever");
    assert.equal(await tf.get(failed[0]), null, "its own hour beats the policy's forever");
    for (const id of deleted) assert.ok(await tf.get(id));
    const more = await finishedJobs(tf, 3, "Failed", { keep: { maxAgeMs: 0 } });
    assert.equal((await tf.prune({ limit: 2 })).ids.length, 2);
    assert.equal((await tf.prune()).ids[0], more[2]);
  } finally {
    await tf.close();
  }
});

Deno.test("prune: a job whose continuation waits is kept (and counted) until it is released", async () => {
  const clock = new TestClock(NOW);
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  try {
    const parent = await tf.enqueue("x", {});
    const child = await tf.continueWith(parent, "y", {}, { on: "finished" });
    const claim = claimCommit((await tf.get(parent))!, tf.now());
    await tf.storage.append([{ commits: [claim] }]);
    // Finished without releasing its continuation (as a crash between the two would leave it).
    await tf.storage.append([{
      commits: [appendCommit(claim.record, [{ type: "state", at: tf.now(), state: "Succeeded" }])],
    }]);
    clock.advance(DAY);
    const report = await tf.prune();
    assert.equal(report.kept, 1);
    assert.deepEqual(report.ids, []);
    await tf.delete(child);
    assert.deepEqual((await tf.prune()).ids, [parent]);
  } finally {
    await tf.close();
  }
});

Deno.test("prune: archive gets record and log before removal; a throwing one removes nothing", async () => {
  const clock = new TestClock(NOW);
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage, { now: clock.now });
  try {
    const ids = await finishedJobs(tf, 2, "Succeeded");
    clock.advance(DAY);
    await assert.rejects(
      tf.prune({ archive: () => Promise.reject(new Error("disk full")) }),
      /disk full/,
    );
    for (const id of ids) assert.ok(await tf.get(id), "nothing removed when the archive throws");
    const seen: string[] = [];
    await tf.prune({
      archive: async (jobs) => {
        for (const { record, events } of jobs) {
          assert.ok(await tf.get(record.id), "still there while archived");
          assert.equal(events.length, record.version);
          seen.push(record.id);
        }
      },
    });
    assert.deepEqual(seen, ids);
    for (const id of ids) assert.equal(await tf.get(id), null);
  } finally {
    await tf.close();
  }
});

Deno.test("prune: a job another pruner removes between the read and the archive is not archived again without its log", async () => {
  const clock = new TestClock(NOW);
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage, { now: clock.now });
  try {
    const ids = await finishedJobs(tf, 3, "Succeeded");
    clock.advance(DAY);
    // The other pruner removes the second job just as this one reads its log for the archive.
    const raced = overriding(storage, {
      events: async (id) => {
        if (id === ids[1]) {
          const record = (await storage.get(id))!;
          await storage.remove([{ id, version: record.version }]);
        }
        return await storage.events(id);
      },
    });
    const archived: string[] = [];
    const report = await new TaskFlow(raced, { now: clock.now }).prune({
      archive: (jobs) => {
        for (const { record, events } of jobs) {
          assert.equal(events.length, record.version, `${record.id} archived with its whole log`);
          archived.push(record.id);
        }
        return Promise.resolve();
      },
    });
    assert.deepEqual(archived, [ids[0], ids[2]]);
    assert.deepEqual(report.ids, [ids[0], ids[2]]);
    assert.equal(report.removed.succeeded, 2);
    for (const id of ids) assert.equal(await tf.get(id), null);
  } finally {
    await tf.close();
  }
});

Deno.test("policy in force: stored by each worker at start; the last started wins and says so", async () => {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  const logs: string[] = [];
  const logger = (level: string, message: string) => void logs.push(`${level}: ${message}`);
  const job = defineJob("x", () => 1);
  const a = createWorker({
    storage,
    jobs: [job],
    id: "a",
    logger,
    retention: { succeeded: { maxAgeMs: HOUR } },
  });
  const b = createWorker({ storage, jobs: [job], id: "b", logger });
  try {
    assert.equal(await tf.retention(), null);
    await a.start();
    const first = await tf.retention();
    assert.deepEqual(
      { ...first, updatedAt: 0 },
      {
        succeeded: { maxAgeMs: HOUR },
        failed: { maxAgeMs: 30 * DAY },
        deleted: { maxAgeMs: DAY },
        archive: false,
        updatedAt: 0,
        by: "a",
      },
    );
    assert.deepEqual(logs, []);
    await b.start();
    assert.deepEqual((await tf.retention())?.succeeded, { maxAgeMs: DAY });
    assert.equal((await tf.retention())?.by, "b");
    assert.match(
      logs.join("\n"),
      /b: replaced the retention policy in force \(succeeded 1h, failed 30d, deleted 24h, stored by a\)/,
    );
  } finally {
    await a.stop();
    await b.stop();
    await tf.close();
  }
});

Deno.test("prune: refuses to drop what the policy in force would archive", async () => {
  const storage = new MemoryStorage();
  const tf = new TaskFlow(storage);
  try {
    await storage.settings.put({
      id: "retention",
      version: 1,
      ...DEFAULT_RETENTION,
      archive: true,
      updatedAt: 0,
      by: "w1",
    }, 0);
    await assert.rejects(tf.prune(), /archives jobs before removing them: pass an archive/);
    assert.equal((await tf.prune({ dryRun: true })).dryRun, true);
  } finally {
    await tf.close();
  }
});

Deno.test("cli --retention: durations, counts, both, forever; mistakes name the flag", () => {
  const read = (text: string) =>
    readRetentionFlag((flag) => flag === "retention" ? text : undefined);
  assert.deepEqual(read("succeeded=1h,failed=30d,deleted=1d"), {
    succeeded: { maxAgeMs: HOUR },
    failed: { maxAgeMs: 30 * DAY },
    deleted: { maxAgeMs: DAY },
  });
  assert.deepEqual(read("failed=count:10000, deleted=forever"), {
    failed: { maxCount: 10_000 },
    deleted: false,
  });
  assert.deepEqual(read("succeeded=7d+count:5"), { succeeded: { maxAgeMs: 7 * DAY, maxCount: 5 } });
  assert.deepEqual(read("succeeded=false"), { succeeded: false });
  for (
    const bad of [
      "succeded=1h",
      "succeeded",
      "succeeded=1y",
      "succeeded=1h,succeeded=2h",
      "",
      "failed=count:x",
      "failed=1h+2h",
    ]
  ) {
    assert.throws(() => read(bad), (e: Error & { code?: string }) => {
      assert.equal(e.code, "INVALID_OPTION");
      assert.match(e.message, /--retention \(TASKFLOW_RETENTION\)/);
      return true;
    }, bad);
  }
});

Deno.test("cli --archive: one NDJSON line per job in <dir>/<UTC day>.ndjson, appended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-archive-" });
  try {
    const archive = ndjsonArchive(`${dir}/a/`, () => Date.UTC(2026, 0, 2, 23, 59));
    const job = { record: rec({ id: "a" }), events: [] };
    await archive([job, { ...job, record: rec({ id: "b" }) }]);
    await archive([{ ...job, record: rec({ id: "c" }) }]);
    const lines = (await Deno.readTextFile(`${dir}/a/2026-01-02.ndjson`)).trim().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).record.id), ["a", "b", "c"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prune: a pass that stops at its budget says there is more; the next takes the rest", async () => {
  const clock = new TestClock(NOW);
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  try {
    await finishedJobs(tf, 25, "Succeeded");
    clock.t += DAY + 1;
    const options = { policy, now: clock.t, limit: 10, pages: 10, cursors: new Map() };
    const first = await prunePass(tf.storage, options);
    assert.equal(first.removed.succeeded, 10);
    assert.equal(first.more, true);
    assert.equal((await prunePass(tf.storage, options)).more, true);
    const last = await prunePass(tf.storage, options);
    assert.equal(last.removed.succeeded, 5);
    assert.equal(last.more, false);
    assert.equal((await tf.counts()).states.Succeeded, 0);
  } finally {
    await tf.close();
  }
});

Deno.test("drain: the Deploy cron's pass says it prunes once a minute", async () => {
  const { drain } = await import("../lib/worker/drain.ts");
  const tf = new TaskFlow(new MemoryStorage());
  try {
    const result = await drain({ storage: tf.storage, jobs: [], budgetMs: 5_500 });
    assert.ok(result);
    const stored = await tf.retention();
    assert.equal(stored?.lastPass?.everyMs, 60_000);
  } finally {
    await tf.close();
  }
});

Deno.test("worker pruner: the sweep for jobs' own keeps reads at most one page per state every 10 s, however short the interval", async () => {
  const storage = new MemoryStorage();
  const clock = new TestClock(NOW);
  const reads = { age: 0, own: 0 };
  const finished = storage.finished.bind(storage);
  // Failed jobs are kept forever by this policy: only the sweep for own keeps reads them.
  storage.finished = (query) => {
    if (query.state === "Succeeded" && query.before === clock.now() - HOUR) reads.age++;
    if (query.state === "Failed") reads.own++;
    return finished(query);
  };
  const worker = createWorker({
    storage,
    jobs: [defineJob("x", () => 1)],
    logger: () => {},
    now: clock.now,
    pruneIntervalMs: 2,
    retention: { succeeded: { maxAgeMs: HOUR }, failed: false, deleted: false },
  });
  await worker.start();
  try {
    await eventually(() => assert.ok(reads.age >= 10, `${reads.age} passes`));
    assert.equal(reads.own, 1, "one sweep for many passes within 10 s");
    clock.advance(10_000);
    const passes = reads.age;
    await eventually(() => assert.ok(reads.age >= passes + 5, `${reads.age} passes`));
    assert.equal(reads.own, 2, "the next sweep 10 s later");
  } finally {
    await worker.stop();
  }
});
