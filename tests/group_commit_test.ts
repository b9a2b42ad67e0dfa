/**
 * @module
 * The group commit (`lib/group_commit.ts`): changes submitted together are written in one
 * append call, and a hold keeps writes back until it is released.
 */

import assert from "node:assert/strict";
import { GroupCommitter } from "../lib/group_commit.ts";
import { appendCommit, createCommit } from "../lib/changes.ts";
import type { Change, Storage } from "../storage/storage.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
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
