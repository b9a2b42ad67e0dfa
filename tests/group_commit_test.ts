/**
 * @module
 * The group commit (`lib/group_commit.ts`): changes submitted together are written in one
 * append call, a hold keeps writes back until it is released, and a pipeline keeps several
 * writes in flight without reordering one job's changes.
 */

import assert from "node:assert/strict";
import { GroupCommitter } from "../lib/group_commit.ts";
import { appendCommit, createCommit } from "../lib/changes.ts";
import type { Change, Storage } from "../storage/storage.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { TaskFlow } from "../lib/client.ts";
import { overriding } from "./helpers.ts";

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A memory storage that records the size of every append call and can delay them. */
function recording(): { storage: Storage; calls: number[]; gate?: PromiseWithResolvers<void> } {
  const inner = new MemoryStorage();
  const state: { storage: Storage; calls: number[]; gate?: PromiseWithResolvers<void> } = {
    storage: inner,
    calls: [],
  };
  state.storage = overriding(inner, {
    append: async (changes: readonly Change[]) => {
      state.calls.push(changes.length);
      await state.gate?.promise;
      return inner.append(changes);
    },
  });
  return state;
}

const created = (id: string): Change => ({
  commits: [createCommit(id, {
    type: "created",
    at: 1,
    name: "x",
    queue: "default",
    args: null,
    priority: 0,
    options: {},
  }, [{ type: "state", at: 1, state: "Enqueued" }])],
});

Deno.test("group commit: changes submitted together go in one call; held writes wait for release", async () => {
  const rec = recording();
  const committer = new GroupCommitter(rec.storage);
  const first = await Promise.all(["a", "b", "c"].map((id) => committer.submit(created(id))));
  assert.deepEqual(first, [{ ok: true }, { ok: true }, { ok: true }]);
  assert.deepEqual(rec.calls, [3], "one call for the three");

  committer.hold();
  let settled = false;
  const held = committer.submit(created("d")).then((result) => (settled = true, result));
  await turn();
  assert.deepEqual(rec.calls, [3], "nothing is written while held");
  assert.equal(settled, false);
  let flushed = false;
  const flushing = committer.flush().then(() => flushed = true);
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(flushed, false, "flush() waits for held writes");
  committer.release();
  assert.deepEqual(await held, { ok: true });
  await flushing;
  assert.deepEqual(rec.calls, [3, 1]);

  // A write in flight finishes under a hold; what queued behind it waits for the release.
  rec.gate = Promise.withResolvers<void>();
  const inFlight = committer.submit(created("e"));
  await turn();
  assert.deepEqual(rec.calls, [3, 1, 1]);
  committer.hold();
  const record = (await rec.storage.get("a"))!;
  const behind = committer.submit({
    commits: [appendCommit(record, [{ type: "state", at: 2, state: "Deleted" }])],
  });
  rec.gate.resolve();
  assert.deepEqual(await inFlight, { ok: true });
  await turn();
  assert.deepEqual(rec.calls, [3, 1, 1], "the queued change waits for the release");
  committer.release();
  assert.deepEqual(await behind, { ok: true });
  assert.deepEqual(rec.calls, [3, 1, 1, 1]);
  assert.equal((await rec.storage.get("a"))!.state, "Deleted");
});
/** A memory storage whose append calls each wait until the test opens them, oldest first. */
function gated(): { storage: Storage; calls: string[][]; openAll(): void } {
  const inner = new MemoryStorage();
  const gates: Array<() => void> = [];
  const state = {
    storage: inner as Storage,
    calls: [] as string[][],
    openAll: () => gates.splice(0).forEach((open) => open()),
  };
  state.storage = overriding(inner, {
    append: async (changes: readonly Change[]) => {
      state.calls.push(changes.map((c) => c.commits[0].id));
      await new Promise<void>((resolve) => gates.push(resolve));
      return inner.append(changes);
    },
  });
  return state;
}

Deno.test("group commit: a write goes out while another is in flight, up to the pipeline's depth", async () => {
  const g = gated();
  const committer = new GroupCommitter(g.storage, { pipeline: 2 });
  const writes = [committer.submit(created("a"))];
  await turn();
  writes.push(committer.submit(created("b")));
  await turn();
  writes.push(committer.submit(created("c")));
  await turn();
  assert.deepEqual(g.calls, [["a"], ["b"]], "two in flight; the third waits for one of them");
  g.openAll();
  await writes[0];
  await turn();
  assert.deepEqual(g.calls, [["a"], ["b"], ["c"]]);
  g.openAll();
  assert.deepEqual(await Promise.all(writes), [{ ok: true }, { ok: true }, { ok: true }]);

  const one = gated();
  const serial = new GroupCommitter(one.storage);
  const first = serial.submit(created("a"));
  await turn();
  const second = serial.submit(created("b"));
  await turn();
  assert.deepEqual(one.calls, [["a"]], "by default one group is written at a time");
  one.openAll();
  await first;
  await turn();
  one.openAll();
  assert.deepEqual(await second, { ok: true });
});

Deno.test("group commit: a change of a job in flight waits for that write, and what follows it too", async () => {
  const g = gated();
  const committer = new GroupCommitter(g.storage, { pipeline: 4 });
  const creation = created("a");
  const first = committer.submit(creation);
  await turn();
  const deletion = committer.submit({
    commits: [
      appendCommit(creation.commits[0].record, [{ type: "state", at: 2, state: "Deleted" }]),
    ],
  });
  const after = committer.submit(created("b"));
  await turn();
  assert.deepEqual(g.calls, [["a"]], "nothing overtakes the change waiting for job a");
  g.openAll();
  assert.deepEqual(await first, { ok: true });
  await turn();
  assert.deepEqual(g.calls, [["a"], ["a", "b"]]);
  g.openAll();
  assert.deepEqual(await Promise.all([deletion, after]), [{ ok: true }, { ok: true }]);
  assert.equal((await g.storage.get("a"))!.state, "Deleted");
  await committer.flush();
});

Deno.test("group commit: a large queue goes out as several writes of at least minGroup changes", async () => {
  const g = gated();
  const committer = new GroupCommitter(g.storage, { pipeline: 3, minGroup: 2 });
  const ids = ["a", "b", "c", "d", "e", "f", "g"];
  const writes = ids.map((id) => committer.submit(created(id)));
  await turn();
  assert.deepEqual(g.calls, [["a", "b", "c"], ["d", "e"], ["f", "g"]]);
  g.openAll();
  assert.ok((await Promise.all(writes)).every((result) => result.ok));
  const small = gated();
  const single = new GroupCommitter(small.storage, { pipeline: 3, minGroup: 4 });
  const few = ["a", "b", "c", "d", "e"].map((id) => single.submit(created(id)));
  await turn();
  assert.deepEqual(small.calls, [["a", "b", "c", "d", "e"]], "fewer than two groups: one write");
  small.openAll();
  await Promise.all(few);
});

Deno.test("group commit: a client pipelines its enqueues as deep as its storage declares", async () => {
  for (const [appendPipeline, inFlight] of [[undefined, 1], [2, 2]] as const) {
    const g = gated();
    const storage = overriding(g.storage, { appendPipeline } as Partial<Storage>);
    const tf = new TaskFlow(storage);
    const ids: Promise<string>[] = [];
    for (const n of [1, 2, 3]) {
      ids.push(tf.enqueue("x", { n }));
      await turn();
    }
    assert.equal(g.calls.length, inFlight, `appendPipeline ${appendPipeline}`);
    while (g.calls.flat().length < 3) {
      g.openAll();
      await turn();
    }
    g.openAll();
    assert.equal((await Promise.all(ids)).length, 3);
    await tf.close();
  }
});
