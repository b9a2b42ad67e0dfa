/**
 * @module
 * Workflows on memory storage, where the point is lib's logic rather than a backend: the change
 * budget of a long failure cascade and the sweep that finishes it, a producer dying after it
 * opened its flow, and retention keeping a dependency while a dependent waits.
 */

import assert from "node:assert/strict";
import { appendCommit, withContinuations } from "../lib/changes.ts";
import { TaskFlow } from "../lib/client.ts";
import { DEFAULT_RETENTION, prunePass, type ResolvedRetention } from "../lib/retention/mod.ts";
import { CHANGE_BUDGET } from "../lib/workflows/release.ts";
import { settleWaiting, sweepWorkflows } from "../lib/workflows/sweep.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { type FlowNode, type FlowRecord, MAX_FLOW } from "../lib/workflows/flow.ts";
import { assertConsistent, claimCommit, overriding, TestClock } from "./helpers.ts";

async function fail(tf: TaskFlow, clock: TestClock, id: string): Promise<void> {
  const claim = claimCommit((await tf.get(id))!, clock.t);
  await tf.storage.append([{ commits: [claim] }]);
  const failed = appendCommit(claim.record, [{
    type: "state",
    at: clock.t,
    state: "Failed",
    data: { error: { name: "Error", message: "no" } },
  }]);
  const change = await withContinuations(tf.storage, failed, clock.t);
  assert.ok(change.commits.length <= CHANGE_BUDGET, `${change.commits.length} commits`);
  assert.deepEqual(await tf.storage.append([change]), [{ ok: true }]);
}

Deno.test("workflows: a failure cascading down a 300-job chain stays within one change's budget; the sweep finishes it", async () => {
  const clock = new TestClock();
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  try {
    const chain = [await tf.enqueue("step", {})];
    for (let i = 1; i < 300; i++) {
      chain.push(await tf.enqueue("step", { i }, { dependsOn: [chain[i - 1]] }));
    }
    await fail(tf, clock, chain[0]);
    const states = (await tf.getMany(chain)).map((r) => r!.state);
    const cut = states.indexOf("Awaiting");
    assert.ok(cut > 1 && cut < 300, `the cascade stopped at ${cut}`);
    assert.ok(states.slice(0, cut).every((s) => s === "Failed"));
    // Told, so the first one left waits for nothing: the sweep releases it, and so on.
    assert.equal((await tf.get(chain[cut]))!.pending, 0);
    while (await settleWaiting(tf.storage, clock.now) > 0) { /* one cascade per round */ }
    const after = await tf.getMany(chain);
    assert.ok(after.every((r) => r!.state === "Failed"));
    assert.equal(after[299]!.reason, `dependency ${chain[298]} ended Failed`);
    await assertConsistent(tf.storage);
  } finally {
    await tf.close();
  }
});

Deno.test("workflows: a producer dying after it opened its flow leaves the sweep to release it", async () => {
  const clock = new TestClock();
  const storage = new MemoryStorage();
  let dead = false;
  const dying = overriding(storage, {
    flows: {
      ...storage.flows,
      put: async (record, expect) => {
        const ok = await storage.flows.put(record, expect);
        if ((record as FlowRecord).state === "open") dead = true;
        return ok;
      },
    },
    append: (changes) =>
      dead ? Promise.reject(new Error("producer died")) : storage.append(changes),
  });
  const tf = new TaskFlow(storage, { now: clock.now });
  try {
    const producer = new TaskFlow(dying, { now: clock.now });
    await assert.rejects(
      producer.flow({
        job: "r",
        args: {},
        children: [{ job: "a", args: 1 }, { job: "a", args: 2 }],
      }),
      /producer died/,
    );
    const [status] = await tf.flows();
    assert.equal(status.flow.state, "open");
    assert.equal(status.flow.released, false);
    assert.equal((await tf.counts()).states.Awaiting, 3, "nothing runs yet");
    await sweepWorkflows(storage, clock.now);
    assert.equal((await tf.counts()).states.Enqueued, 2, "the leaves are released");
    assert.equal((await tf.flowStatus(status.flow.id))!.flow.released, true);
    await assertConsistent(storage);
  } finally {
    await tf.close();
  }
});

Deno.test("retention: a dependency is kept while a dependent waits, pruned once it finished", async () => {
  const clock = new TestClock();
  const tf = new TaskFlow(new MemoryStorage(), { now: clock.now });
  const policy: ResolvedRetention = { ...DEFAULT_RETENTION, succeeded: { maxAgeMs: 1_000 } };
  const pass = () =>
    prunePass(tf.storage, { policy, now: clock.t, limit: 100, pages: 10, cursors: new Map() });
  try {
    const a = await tf.enqueue("step", {});
    const b = await tf.enqueue("step", {});
    const d = await tf.enqueue("step", {}, { dependsOn: [a, b] });
    const claim = claimCommit((await tf.get(a))!, clock.t);
    await tf.storage.append([{ commits: [claim] }]);
    const done = appendCommit(claim.record, [{ type: "state", at: clock.t, state: "Succeeded" }]);
    await tf.storage.append([await withContinuations(tf.storage, done, clock.t)]);
    clock.advance(5_000);
    const kept = await pass();
    assert.equal(kept.kept, 1);
    assert.ok(await tf.get(a), `a is kept while ${d} waits`);
    await tf.delete(d);
    assert.deepEqual((await pass()).ids, [a]);
  } finally {
    await tf.close();
  }
});

Deno.test("flows: a 10,000-deep chain is read without recursion; one node more is refused", async () => {
  const tf = new TaskFlow(new MemoryStorage());
  try {
    let node: FlowNode = { job: "x", args: 0 };
    for (let i = 1; i < MAX_FLOW; i++) node = { job: "x", args: i, children: [node] };
    const flow = await tf.flow(node);
    let depth = 0;
    for (let ids = flow; ids.children.length; ids = ids.children[0]) depth++;
    assert.equal(depth, MAX_FLOW - 1);
    assert.equal((await tf.counts()).states.Enqueued, 1, "only the deepest node is released");
    await assert.rejects(tf.flow({ job: "x", args: 0, children: [node] }), /more than 10000 nodes/);
  } finally {
    await tf.close();
  }
});
