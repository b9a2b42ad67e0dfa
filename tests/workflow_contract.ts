/**
 * @module
 * The contract cases of workflows (dependencies and flows), run on every backend: the storage
 * cases by `runStorageContract`, the worker cases by `runWorkerSuite`.
 */

import assert from "node:assert/strict";
import { appendCommit, withContinuations } from "../lib/changes.ts";
import type { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import { defineJob } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { rebuild } from "../lib/rebuild.ts";
import { DependencyNotFoundError, InvalidOptionError, TaskFlowError } from "../storage/errors.ts";
import { assertConsistent, claimCommit, eventually, type TestClock } from "./helpers.ts";
import type { Harness } from "./worker_suite.ts";

type Case = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) => void;

/** Claims job `id` and ends its attempt in `end`, as a worker does (with its dependents). */
async function finish(
  tf: TaskFlow,
  clock: TestClock,
  id: string,
  end: "Succeeded" | "Failed" = "Succeeded",
): Promise<void> {
  const claim = claimCommit((await tf.get(id))!, clock.t);
  assert.deepEqual(await tf.storage.append([{ commits: [claim] }]), [{ ok: true }]);
  clock.advance(10);
  const data = end === "Succeeded"
    ? { result: `${id} done` }
    : { error: { name: "Error", message: "broke" } };
  const done = appendCommit(claim.record, [{ type: "state", at: clock.t, state: end, data }]);
  const change = await withContinuations(tf.storage, done, clock.t);
  assert.deepEqual(await tf.storage.append([change]), [{ ok: true }]);
}

/** The error `fn` rejects with, checked to be a `TaskFlowError` of `type`. */
async function refused<T extends TaskFlowError>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `${error} is a ${type.name}`);
    return error;
  }
  throw new assert.AssertionError({ message: "expected a rejection" });
}

/** Registers the storage cases of workflows. */
export function workflowCases(test: Case): void {
  test("dependsOn: waits Awaiting; bad options and unknown ids are typed errors, writing nothing", async (tf) => {
    const a = await tf.enqueue("step", { n: "a" });
    const d = await tf.enqueue("step", { n: "d" }, { dependsOn: [a] });
    const record = (await tf.get(d))!;
    assert.equal(record.state, "Awaiting");
    assert.deepEqual(record.dependsOn, [a]);
    assert.equal(record.pending, 1);
    assert.equal(record.reason, "waiting for its dependency");
    assert.deepEqual((await tf.get(a))!.dependents, [d]);
    const created = (await tf.counts()).totals.created;
    const missing = await refused(
      () => tf.enqueue("step", {}, { dependsOn: [a, "no-such-job"] }),
      DependencyNotFoundError,
    );
    assert.equal(missing.code, "JOB_NOT_FOUND");
    assert.match(missing.message, /no-such-job/);
    for (
      const options of [
        { dependsOn: [] },
        { dependsOn: "a" },
        { dependsOn: [a], onDependencyFailure: "maybe" },
        { dependsOn: [a], unique: { key: "k" } },
        { dependsOn: ["bad id!"] },
      ]
    ) {
      await assert.rejects(tf.enqueue("step", {}, options as never), TaskFlowError);
    }
    await assert.rejects(
      tf.batch([{ job: "step", args: {}, options: { dependsOn: [a] } }]),
      InvalidOptionError,
    );
    await assert.rejects(
      tf.enqueueMany([{ job: "step", args: {} }, {
        job: "step",
        args: {},
        options: { dependsOn: ["gone"] },
      }]),
      DependencyNotFoundError,
    );
    await assert.rejects(
      tf.enqueueMany([{ job: "step", args: {} }, {
        job: "step",
        args: {},
        options: { onDependencyFailure: "nope" as never, dependsOn: [a] },
      }]),
      InvalidOptionError,
    );
    assert.equal((await tf.counts()).totals.created, created, "nothing was written");
    await assertConsistent(tf.storage);
  });

  test(
    "dependsOn: each dependency's final commit counts down; the last releases in the same change",
    async (tf, clock) => {
      const [a, b, c] = await tf.enqueueMany([
        { job: "step", args: { n: "a" } },
        { job: "step", args: { n: "b" } },
        { job: "step", args: { n: "c" } },
      ]);
      const d = await tf.enqueue("step", { n: "d" }, { dependsOn: [a, b] });
      await finish(tf, clock, a);
      let record = (await tf.get(d))!;
      assert.equal(record.state, "Awaiting");
      assert.equal(record.pending, 1);
      await finish(tf, clock, b);
      record = (await tf.get(d))!;
      assert.equal(record.state, "Enqueued");
      assert.equal(record.reason, "all 2 of its dependencies finished");
      assert.deepEqual(
        (await tf.events(d)).map((e) => e.type === "state" ? e.state : e.type),
        ["created", "Awaiting", "dependency", "dependency", "Enqueued"],
      );
      // Already final at enqueue: counted at once (released in the create commit).
      const e = await tf.enqueue("step", {}, { dependsOn: [a] });
      assert.equal((await tf.get(e))!.state, "Enqueued");
      // A scheduled one is released to Scheduled for its time.
      const s = await tf.schedule("step", {}, { dependsOn: [a], delayMs: 60_000 });
      assert.equal((await tf.get(s))!.state, "Scheduled");
      assert.equal((await tf.get(s))!.runAt, clock.t + 60_000);
      // A dependency requeued counts as pending again.
      const f = await tf.enqueue("step", {}, { dependsOn: [a, c], onDependencyFailure: "run" });
      assert.equal((await tf.get(f))!.pending, 1);
      await tf.requeue(a);
      assert.equal((await tf.get(f))!.pending, 2);
      // Deleting a dependency fails a dependent (the default policy), naming it.
      const g = await tf.enqueue("step", {}, { dependsOn: [c] });
      await tf.delete(c);
      const failed = (await tf.get(g))!;
      assert.equal(failed.state, "Failed");
      assert.equal(failed.error?.code, "DEPENDENCY_FAILED");
      assert.equal(failed.reason, `dependency ${c} ended Deleted`);
      assert.equal((await tf.get(f))!.pending, 1, "f (policy run) counts c as done");
      await assertConsistent(tf.storage);
      // The pending count is a projection of the logs: rebuild recomputes it, doctor checks it.
      const records = await tf.getMany([d, e, f, g]);
      await rebuild(tf.storage);
      assert.deepEqual(await tf.getMany([d, e, f, g]), records);
      assert.deepEqual((await doctor(tf.storage)).findings, []);
    },
  );

  test(
    "dependsOn: doctor names a pending count that disagrees with the dependencies",
    async (tf, clock) => {
      const a = await tf.enqueue("step", {});
      const d = await tf.enqueue("step", {}, { dependsOn: [a] });
      // A dependency event no write of `a` made (as if a's own commit had been lost).
      const record = (await tf.get(d))!;
      const lie = appendCommit(record, [{
        type: "dependency",
        at: clock.t,
        id: a,
        state: "Succeeded",
      }]);
      assert.deepEqual(await tf.storage.append([{ commits: [lie] }]), [{ ok: true }]);
      const { findings } = await doctor(tf.storage);
      assert.equal(findings.length, 1);
      assert.equal(findings[0].id, d);
      assert.match(findings[0].problem, /pending count says 0 but 1 of its 1 dependencies/);
    },
  );

  test("flows: ids in the input's shape; staged, then leaves released; a DAG through custom ids", async (tf) => {
    const before = (await tf.counts()).totals.created;
    await assert.rejects(
      tf.flow({
        job: "x",
        args: {},
        options: { id: "x1" },
        children: [{ job: "y", args: {}, options: { id: "y1", dependsOn: ["x1"] } }],
      }),
      /cycle/,
    );
    await assert.rejects(
      tf.flow({
        job: "x",
        args: {},
        children: [{ job: "y", args: {}, options: { dependsOn: ["nope"] } }],
      }),
      DependencyNotFoundError,
    );
    await assert.rejects(
      tf.flow({ job: "x", args: {}, children: "no" as never }),
      InvalidOptionError,
    );
    assert.equal((await tf.counts()).totals.created, before, "a refused flow writes nothing");
    assert.deepEqual(await tf.flows(), []);
    const flow = await tf.flow({
      job: "report",
      args: { n: "root" },
      children: [
        {
          job: "step",
          args: { n: "k1" },
          children: [{ job: "step", args: {}, options: { id: "shared" } }],
        },
        { job: "step", args: { n: "k2" }, options: { dependsOn: ["shared"] } },
      ],
    });
    const [k1, k2] = flow.children;
    assert.equal(k1.children[0].id, "shared");
    assert.deepEqual(k2.children, []);
    const [root, r1, r2, shared] = await tf.getMany([flow.id, k1.id, k2.id, "shared"]);
    assert.deepEqual(root!.dependsOn, [k1.id, k2.id]);
    assert.deepEqual(r2!.dependsOn, ["shared"]);
    assert.deepEqual(shared!.dependents, [k1.id, k2.id]);
    assert.deepEqual(
      [root, r1, r2, shared].map((r) => [r!.state, r!.staged, r!.flowId]),
      [
        ["Awaiting", undefined, flow.id],
        ["Awaiting", undefined, flow.id],
        ["Awaiting", undefined, flow.id],
        ["Enqueued", undefined, flow.id],
      ],
    );
    const status = (await tf.flowStatus(flow.id))!;
    assert.equal(status.flow.total, 4);
    assert.equal(status.flow.state, "open");
    assert.equal(status.flow.released, true);
    assert.equal(status.done, 0);
    assert.equal(status.root, "Awaiting");
    assert.deepEqual((await tf.flows()).map((s) => s.flow.id), [flow.id]);
    assert.equal(await tf.flowStatus("no-such-flow"), null);
    await assertConsistent(tf.storage);
  });

  test(
    "flows: progress is a projection (end-state counts per flow), kept by rebuild",
    async (tf, clock) => {
      const flow = await tf.flow({
        job: "report",
        args: {},
        children: [{ job: "step", args: 1 }, { job: "step", args: 2 }],
      });
      const [c1, c2] = flow.children.map((c) => c.id);
      await finish(tf, clock, c1);
      await finish(tf, clock, c2, "Failed");
      const status = (await tf.flowStatus(flow.id))!;
      assert.deepEqual(status.counts, { succeeded: 1, failed: 2, deleted: 0 });
      assert.equal(status.root, "Failed", "the root fails with its child (the default policy)");
      assert.equal(status.finished, true);
      await rebuild(tf.storage);
      assert.deepEqual((await tf.flowStatus(flow.id))!.counts, status.counts);
      const root = (await tf.get(flow.id))!;
      assert.deepEqual(root, fold(root.id, await tf.events(root.id)));
    },
  );
}

/** A handler that logs its start and end, and returns what its dependencies returned. */
function stepJob(log: string[]) {
  return defineJob("step", async (args: { n: string }, ctx) => {
    log.push(`start ${args.n}`);
    const deps = await ctx.dependencies();
    await new Promise((r) => setTimeout(r, 2));
    log.push(`end ${args.n}`);
    return { n: args.n, saw: Object.values(deps).map((d) => (d.result as { n: string }).n).sort() };
  });
}

/** Registers the worker cases of workflows. */
export function workflowWorkerCases(
  test: (title: string, fn: (h: Harness) => Promise<void>) => void,
): void {
  test("workflows: a diamond (A → B, C → D) runs D once, after B and C, with both results", async (h) => {
    const log: string[] = [];
    const step = stepJob(log);
    const a = await h.tf.enqueue(step, { n: "A" });
    const b = await h.tf.enqueue(step, { n: "B" }, { dependsOn: [a] });
    const c = await h.tf.enqueue(step, { n: "C" }, { dependsOn: [a] });
    const d = await h.tf.enqueue(step, { n: "D" }, { dependsOn: [b, c] });
    await h.worker([step], { concurrency: 4 });
    const done = await h.waitFor(d, "Succeeded");
    assert.deepEqual(done.result, { n: "D", saw: ["B", "C"] });
    assert.equal(log.filter((l) => l === "start D").length, 1);
    const at = (line: string) => log.indexOf(line);
    assert.ok(at("start D") > at("end B") && at("start D") > at("end C"), log.join(", "));
    assert.ok(at("start B") > at("end A") && at("start C") > at("end A"), log.join(", "));
    assert.deepEqual((await h.tf.get(b))!.result, { n: "B", saw: ["A"] });
    await assertConsistent(h.tf.storage);
  });

  test("workflows: a failed dependency applies each onDependencyFailure policy, and cascades", async (h) => {
    const log: string[] = [];
    const step = stepJob(log);
    const seen = defineJob("seen", async (_: unknown, ctx) => await ctx.dependencies());
    const boom = defineJob("boom", () => {
      throw new Error("boom broke");
    }, { attempts: 1 });
    const x = await h.tf.enqueue(boom, {});
    const fail = await h.tf.enqueue(step, { n: "fail" }, { dependsOn: [x] });
    const del = await h.tf.enqueue(step, { n: "del" }, {
      dependsOn: [x],
      onDependencyFailure: "delete",
    });
    const run = await h.tf.enqueue(seen, {}, { dependsOn: [x], onDependencyFailure: "run" });
    const after = await h.tf.enqueue(step, { n: "after" }, { dependsOn: [fail] });
    await h.worker([step, seen, boom]);
    const failed = await h.waitFor(fail, "Failed");
    assert.equal(failed.reason, `dependency ${x} ended Failed`);
    assert.equal(failed.error?.code, "DEPENDENCY_FAILED");
    assert.equal(failed.attempt, 0, "it never ran");
    assert.equal((await h.waitFor(del, "Deleted")).reason, `dependency ${x} ended Failed`);
    const ran = await h.waitFor(run, "Succeeded");
    const outcome =
      (ran.result as Record<string, { state: string; error?: { message: string } }>)[x];
    assert.equal(outcome.state, "Failed");
    assert.equal(outcome.error?.message, "boom broke");
    assert.equal((await h.waitFor(after, "Failed")).reason, `dependency ${fail} ended Failed`);
    assert.deepEqual(log, [], "no handler of a job whose dependency failed ran");
    await assertConsistent(h.tf.storage);
  });

  test("workflows: 200 children of one root ending at once on two workers: no outcome fenced", async (h) => {
    const log: string[] = [];
    const step = stepJob(log);
    const children = Array.from({ length: 200 }, (_, i) => ({ job: step, args: { n: `c${i}` } }));
    const flow = await h.tf.flow({ job: step, args: { n: "root" }, children });
    // Every child's outcome writes the root (its pending count) in the same change.
    // Leases of 3 s: a loaded machine's late heartbeat must not get a child reaped meanwhile.
    const workers = [
      await h.worker([step], { concurrency: 40, heartbeatMs: 1_000 }),
      await h.worker([step], { concurrency: 40, heartbeatMs: 1_000 }),
    ];
    const root = await h.waitFor(flow.id, "Succeeded", 60_000);
    assert.equal((root.result as { saw: string[] }).saw.length, 200);
    assert.deepEqual(workers.map((w) => w.stats.fenced), [0, 0]);
    const records = await h.tf.getMany(flow.children.map((c) => c.id));
    assert.ok(records.every((r) => r!.state === "Succeeded" && r!.attempt === 1));
    assert.equal(log.filter((l) => l.startsWith("start")).length, 201, "each ran once");
  });

  test("workflows: a 1,000-node flow never starts a parent before its children end", async (h) => {
    const log: string[] = [];
    const step = stepJob(log);
    let n = 0;
    const node = (depth: number, width: number[]): Parameters<TaskFlow["flow"]>[0] => ({
      job: step,
      args: { n: String(n++) },
      children: depth === width.length
        ? []
        : Array.from({ length: width[depth] }, () => node(depth + 1, width)),
    });
    const tree = node(0, [9, 10, 10]); // 1 + 9 + 90 + 900
    assert.equal(n, 1_000);
    const flow = await h.tf.flow(tree);
    await h.worker([step], { concurrency: 20 });
    await eventually(async () => {
      const status = (await h.tf.flowStatus(flow.id))!;
      assert.equal(status.counts.succeeded, 1_000, JSON.stringify(status));
    }, 120_000);
    const at = new Map(log.map((line, i) => [line, i]));
    const name = (node: typeof tree) => (node.args as { n: string }).n;
    const check = (node: typeof tree) => {
      const start = at.get(`start ${name(node)}`)!;
      for (const child of node.children!) {
        assert.ok(start > at.get(`end ${name(child)}`)!, `node ${name(node)} started too early`);
        check(child);
      }
    };
    check(tree);
    assert.equal(log.length, 2_000, "each node ran once");
    assert.deepEqual((await h.tf.get(flow.id))!.result, {
      n: "0",
      saw: tree.children!.map((c) => (c.args as { n: string }).n).sort(),
    });
  });
}
