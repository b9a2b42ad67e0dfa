/**
 * @module
 * The KV layout: a job is one row holding its record and its log (plus its index entries), a
 * log too long for the row goes on in rows of its own, and either way everything comes back as
 * it was appended, through reads, rebuild and removal.
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import { TaskFlow } from "../lib/client.ts";
import type { JobEvent } from "../lib/events.ts";
import { rebuild } from "../lib/rebuild.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { assertConsistent, claimCommit } from "./helpers.ts";

async function withKv(fn: (tf: TaskFlow, storage: KvStorage) => Promise<void>): Promise<void> {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  const tf = new TaskFlow(storage);
  try {
    await fn(tf, storage);
  } finally {
    await tf.close();
  }
}

/** The rooms (second key part) of every key naming job `id`, with the seq of `ev` keys. */
async function keysOf(storage: KvStorage, id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of storage.kv.list({ prefix: ["taskflow"] })) {
    if (key.includes(id)) keys.push(key[1] === "ev" ? `ev ${String(key[3])}` : String(key[1]));
  }
  return keys.sort();
}

Deno.test("kv: a finished job keeps one row and its index entries, and reads back exactly", () =>
  withKv(async (tf, storage) => {
    const id = await tf.enqueue("rows.job", { i: 1, to: "a@example.com" }, { priority: 5 });
    const start = await tf.events(id);
    assert.deepEqual(start.map((e) => [e.type, e.seq]), [["created", 1], ["state", 2]]);
    assert.deepEqual(start[0].type === "created" && [start[0].args, start[0].priority], [
      { i: 1, to: "a@example.com" },
      5,
    ]);
    const claim = claimCommit((await tf.get(id))!, 1_000);
    assert.deepEqual(await storage.append([{ commits: [claim] }]), [{ ok: true }]);
    // Shapes the compact form does not cover are stored as they are: an unknown event field,
    // a reason without data, a record field set to undefined.
    const odd = appendCommit(claim.record, [
      { type: "progress", at: 1_001, value: 50 },
      { type: "log", at: 1_002, message: "hi", extra: [1, null] } as unknown as JobEvent,
      { type: "state", at: 1_003, state: "Failed", reason: "gave up" },
    ]);
    odd.record = { ...odd.record, error: undefined };
    assert.deepEqual(await storage.append([{ commits: [odd] }]), [{ ok: true }]);
    assert.deepStrictEqual(await tf.get(id), odd.record);
    assert.ok("error" in (await tf.get(id))!, "a field set to undefined stays set");
    const again = appendCommit(odd.record, [{ type: "state", at: 1_004, state: "Enqueued" }]);
    await storage.append([{ commits: [again] }]);
    const claimed = claimCommit(again.record, 1_005, "srv-2");
    await storage.append([{ commits: [claimed] }]);
    const done = appendCommit(claimed.record, [{
      type: "state",
      at: 1_006,
      state: "Succeeded",
      data: { result: { ok: [1, "two"] }, durationMs: 1 },
    }]);
    await storage.append([{ commits: [done] }]);

    assert.deepEqual(await keysOf(storage, id), ["job", "name", "state"]);
    assert.deepStrictEqual(await tf.events(id), [
      ...start,
      ...claim.events,
      ...odd.events,
      ...again.events,
      ...claimed.events,
      ...done.events,
    ]);
    assert.deepStrictEqual(await tf.get(id), done.record);
    await assertConsistent(storage);
  }));

Deno.test("kv: a log too long for its row goes on in rows of its own, read, rebuilt and removed whole", () =>
  withKv(async (tf, storage) => {
    const id = await tf.enqueue("rows.chatty", {});
    const claim = claimCommit((await tf.get(id))!, 1_000);
    await storage.append([{ commits: [claim] }]);
    let record = claim.record;
    const appended: JobEvent[] = [];
    for (let round = 0; round < 12; round++) {
      const lines = Array.from({ length: 50 }, (_, i) => ({
        type: "log" as const,
        at: 1_000 + round,
        message: `line ${round * 50 + i} ${"·".repeat(40)}`,
      }));
      const commit = appendCommit(record, lines);
      assert.deepEqual(await storage.append([{ commits: [commit] }]), [{ ok: true }]);
      appended.push(...commit.events);
      record = commit.record;
    }
    const keys = await keysOf(storage, id);
    const own = keys.filter((k) => k.startsWith("ev ")).map((k) => Number(k.slice(3)));
    assert.ok(own.length > 0, "later events have rows of their own");
    const from = Math.min(...own);
    assert.ok(from > 3, `the first events stay in the job's row (own rows from #${from})`);
    assert.equal(own.length, record.version - from + 1);
    const events = await tf.events(id);
    assert.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: record.version }, (_, i) => i + 1),
    );
    assert.deepEqual(events.slice(3), appended);

    await rebuild(storage);
    assert.deepStrictEqual(await tf.get(id), record);
    assert.deepEqual(await tf.events(id), events);
    const done = appendCommit(record, [{ type: "state", at: 2_000, state: "Succeeded" }]);
    await storage.append([{ commits: [done] }]);
    assert.deepEqual(await tf.events(id), [...events, ...done.events]);
    await assertConsistent(storage);
    const { removed } = await storage.remove([{ id, version: done.record.version }]);
    assert.deepEqual(removed, [id]);
    assert.deepEqual(await keysOf(storage, id), []);
  }));

Deno.test("kv: retention lists the jobs this instance finished without reading them; a job another changed since is not removed on that listing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-kv-finals-" });
  const path = `${dir}/kv.sqlite`;
  const mine = await KvStorage.open(path, `kv:${path}`);
  const other = await KvStorage.open(path, `kv:${path}`);
  const tf = new TaskFlow(mine);
  try {
    const finish = async (id: string, at: number) => {
      const claim = claimCommit((await mine.get(id))!, at);
      assert.deepEqual(await mine.append([{ commits: [claim] }]), [{ ok: true }]);
      const done = appendCommit(claim.record, [
        { type: "state", at: at + 1, state: "Succeeded", data: { durationMs: 1 } },
      ]);
      assert.deepEqual(await mine.append([{ commits: [done] }]), [{ ok: true }]);
      return done.record;
    };
    const first = await finish(await tf.enqueue("finals.job", { i: 1 }), 1_000);
    // A listing that reaches the newest finished job: from now on finished jobs are kept.
    const listed = await mine.finished({ state: "Succeeded", before: 5_000 });
    assert.deepEqual(listed.jobs, [first]);
    const kept = await finish(await tf.enqueue("finals.job", { i: 2 }), 2_000);
    let reads = 0;
    const kv = mine.kv, getMany = kv.getMany.bind(kv);
    kv.getMany = ((keys: Deno.KvKey[]) => (reads += keys.length, getMany(keys))) as typeof getMany;
    const page = await mine.finished({ state: "Succeeded", before: 5_000 });
    assert.deepEqual(page.jobs, [first, kept]);
    assert.equal(reads, 0, "one was read by the listing before, the other finished here");

    // Another instance adds a continuation to the kept job: this one's copy is now old.
    const child = await tf.enqueue("finals.child", {}, { id: "child-1" });
    const added = appendCommit(kept, [
      { type: "continuation", at: 2_500, childId: child, on: "succeeded" },
    ]);
    assert.deepEqual(await other.append([{ commits: [added] }]), [{ ok: true }]);
    const stale = (await mine.finished({ state: "Succeeded", before: 5_000 })).jobs[1];
    assert.equal(stale.version, kept.version, "the listing may give this instance's own copy");
    const { removed, refused } = await mine.remove([{ id: kept.id, version: stale.version }]);
    assert.deepEqual([removed, refused], [[], [kept.id]]);
    assert.deepStrictEqual(await mine.get(kept.id), added.record);
    const fresh = await mine.finished({ state: "Succeeded", before: 5_000 });
    assert.deepEqual(fresh.jobs.map((r) => r.version), [first.version, added.record.version]);
    await assertConsistent(mine);
  } finally {
    await tf.close();
    await other.close();
    await Deno.remove(dir, { recursive: true });
  }
});
