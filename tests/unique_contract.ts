/**
 * @module
 * The contract cases of unique jobs: the key claimed in the create commit, duplicates absorbed
 * as `deduplicated` events, keys freed by leaving the unique states or by ttl, removed with a
 * pruned holder and recomputed by rebuild. Run on every backend by `runStorageContract`.
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import type { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import { defineJob } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { rebuild } from "../lib/rebuild.ts";
import { JobExistsError } from "../storage/errors.ts";
import { assertConsistent, claimCommit, type TestClock } from "./helpers.ts";

/** What the cases need of a backend (see `ContractBackend` in storage_contract.ts). */
export interface UniqueBackend {
  /** Every key the backend holds, as text; values left out. */
  footprint?(): Promise<string[]>;
}

type Case = (
  title: string,
  fn: (tf: TaskFlow, clock: TestClock, backend: UniqueBackend) => Promise<void>,
) => void;

const sync = defineJob("user.sync", (_: { user: number }) => {}, { unique: {} });

/** Claims job `id` and ends its attempt in `end`. */
async function finish(
  tf: TaskFlow,
  clock: TestClock,
  id: string,
  end: "Succeeded" | "Failed" = "Succeeded",
): Promise<void> {
  const claim = claimCommit((await tf.get(id))!, clock.t);
  assert.deepEqual(await tf.storage.append([{ commits: [claim] }]), [{ ok: true }]);
  clock.advance(10);
  const done = appendCommit(claim.record, [{ type: "state", at: clock.t, state: end }]);
  assert.deepEqual(await tf.storage.append([{ commits: [done] }]), [{ ok: true }]);
}

async function deduplicated(tf: TaskFlow, id: string): Promise<number> {
  return (await tf.events(id)).filter((e) => e.type === "deduplicated").length;
}

/** Registers the cases with the contract suite's `test`. */
export function uniqueCases(test: Case): void {
  test("unique: a duplicate enqueue creates nothing and returns the holder's id", async (tf) => {
    const id = await tf.enqueue(sync, { user: 1 });
    const again = await tf.enqueue(sync, { user: 1 });
    assert.equal(again, id);
    // The default key is the name and the canonical JSON of the arguments.
    const reordered = await tf.enqueue("user.sync", { b: 2, a: 1 }, { unique: {} });
    assert.equal(await tf.enqueue("user.sync", { a: 1, b: 2 }, { unique: {} }), reordered);
    assert.notEqual(await tf.enqueue(sync, { user: 2 }), id);
    assert.notEqual(await tf.enqueue("user.other", { user: 1 }, { unique: {} }), id);
    assert.equal((await tf.counts()).totals.created, 4);
    const record = (await tf.get(id))!;
    assert.equal(record.deduplicated, 1);
    assert.equal(await deduplicated(tf, id), 1);
    assert.deepEqual(fold(id, await tf.events(id)), record);
    assert.equal(record.options.unique?.key, 'user.sync:{"user":1}');
    assert.equal(await tf.storage.uniqueHolder('user.sync:{"user":1}'), id);
    assert.equal(await tf.storage.uniqueHolder("no-such-key"), null);
    await assertConsistent(tf.storage);
    assert.deepEqual((await doctor(tf.storage)).findings, []);
  });

  test(
    "unique: the key is free again once its holder leaves the unique states",
    async (tf, clock) => {
      const key = { unique: { key: "report:7" } };
      const first = await tf.enqueue("report.build", { n: 1 }, key);
      assert.equal(await tf.schedule("report.build", { n: 2 }, { ...key, delayMs: 1_000 }), first);
      await finish(tf, clock, first);
      const second = await tf.schedule("report.build", { n: 3 }, { ...key, delayMs: 1_000 });
      assert.notEqual(second, first);
      assert.equal(await tf.storage.uniqueHolder("report:7"), second);
      assert.equal((await tf.get(second))!.state, "Scheduled");
      await tf.delete(second);
      const third = await tf.enqueue("report.build", { n: 4 }, key);
      assert.notEqual(third, second);
      // Custom states: the job holds its key only while Enqueued.
      const own = { unique: { key: "own", states: ["Enqueued" as const] } };
      const waiting = await tf.enqueue("report.build", {}, own);
      assert.equal(await tf.enqueue("report.build", {}, own), waiting);
      const claim = claimCommit((await tf.get(waiting))!, clock.t);
      await tf.storage.append([{ commits: [claim] }]);
      assert.notEqual(await tf.enqueue("report.build", {}, own), waiting);
      await assertConsistent(tf.storage);
    },
  );

  test(
    "unique: with ttlMs the key is held that long after creation, whatever the state",
    async (tf, clock) => {
      const options = { unique: { key: "digest", ttlMs: 60_000 } };
      const id = await tf.enqueue("digest.send", {}, options);
      await finish(tf, clock, id);
      clock.advance(30_000);
      assert.equal(await tf.enqueue("digest.send", {}, options), id);
      assert.equal((await tf.get(id))!.deduplicated, 1);
      clock.advance(30_000);
      const next = await tf.enqueue("digest.send", {}, options);
      assert.notEqual(next, id);
      assert.equal(await tf.storage.uniqueHolder("digest"), next);
    },
  );

  test("unique: onDuplicate error throws JobExistsError naming the holder, writing nothing", async (tf) => {
    const options = { unique: { key: "k", onDuplicate: "error" as const } };
    const id = await tf.enqueue("a.job", {}, options);
    const error = await tf.enqueue("a.job", {}, options).then(() => null, (e) => e);
    assert.ok(error instanceof JobExistsError);
    assert.equal(error.code, "JOB_EXISTS");
    assert.equal(error.details.id, id);
    assert.match(error.message, new RegExp(`job "${id}" already holds unique key "k"`));
    assert.equal(await deduplicated(tf, id), 0);
    assert.equal((await tf.counts()).totals.created, 1);
  });

  test("unique: concurrent duplicates from two clients make one job and N-1 events", async (tf) => {
    const other = new (tf.constructor as typeof TaskFlow)(tf.storage, { now: tf.now });
    const ids = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? other : tf).enqueue(sync, { user: 9 })),
    );
    assert.equal(new Set(ids).size, 1);
    assert.equal((await tf.counts()).totals.created, 1);
    assert.equal(await deduplicated(tf, ids[0]), 199);
    assert.equal((await tf.get(ids[0]))!.deduplicated, 199);
    await assertConsistent(tf.storage);
  });

  test("unique: concurrent enqueues of distinct keys each create a job", async (tf) => {
    // Group-committed together: a write of 50 claims must still fit the backend's limits.
    const ids = await Promise.all(
      Array.from({ length: 150 }, (_, i) => tf.enqueue(sync, { user: 1_000 + i })),
    );
    assert.equal(new Set(ids).size, 150);
    assert.equal((await tf.counts()).totals.created, 150);
    for (const [i, id] of ids.entries()) {
      assert.equal((await tf.get(id))!.options.unique?.key, `user.sync:{"user":${1_000 + i}}`);
    }
    await assertConsistent(tf.storage);
  });

  test("unique: plain, unique and duplicate enqueues written together each get their job", async (tf) => {
    // One group commit mixes jobs with and without a key, and a key repeated by another caller.
    const plain = defineJob("user.plain", (_: { user: number }) => {});
    const ids = await Promise.all(
      Array.from(
        { length: 60 },
        (_, i) =>
          i % 3 === 0
            ? tf.enqueue(plain, { user: 1 })
            : tf.enqueue(sync, { user: i % 3 === 1 ? 2_000 + i : 7 }),
      ),
    );
    const held = ids.filter((_, i) => i % 3 === 2);
    assert.equal(new Set(held).size, 1);
    assert.equal(new Set(ids).size, 20 + 20 + 1);
    assert.equal((await tf.counts()).totals.created, 41);
    assert.equal(await deduplicated(tf, held[0]), 19);
    await assertConsistent(tf.storage);
  });

  test("unique: enqueueMany absorbs duplicates within the call and held keys", async (tf) => {
    const held = await tf.enqueue(sync, { user: 5 });
    const ids = await tf.enqueueMany([
      { job: sync, args: { user: 1 } },
      { job: sync, args: { user: 1 } },
      { job: sync, args: { user: 5 } },
      { job: "plain", args: {} },
      { job: sync, args: { user: 1 } },
    ]);
    assert.equal(ids[1], ids[0]);
    assert.equal(ids[4], ids[0]);
    assert.equal(ids[2], held);
    assert.equal(new Set(ids).size, 3);
    assert.equal(await deduplicated(tf, ids[0]), 2);
    assert.equal(await deduplicated(tf, held), 1);
    assert.deepEqual((await tf.events(ids[0])).map((e) => e.type), [
      "created",
      "state",
      "deduplicated",
      "deduplicated",
    ]);
    assert.equal((await tf.counts()).totals.created, 3);
    await assertConsistent(tf.storage);
  });

  test(
    "unique: a pruned holder takes its key along, never a newer holder's",
    async (tf, clock, backend) => {
      const options = { unique: { key: "prune-me" } };
      const named = async () =>
        backend.footprint ? (await backend.footprint()).filter((k) => k.includes("prune-me")) : [];
      const old = await tf.enqueue("a.job", {}, options);
      await finish(tf, clock, old);
      if (backend.footprint) assert.equal((await named()).length, 1, "a key names the unique key");
      const removal = async (id: string) => ({ id, version: (await tf.get(id))!.version });
      assert.deepEqual((await tf.storage.remove([await removal(old)])).removed, [old]);
      assert.equal(await tf.storage.uniqueHolder("prune-me"), null);
      assert.deepEqual(await named(), []);
      // The key passes to a newer job; removing the old holder leaves it there.
      const first = await tf.enqueue("a.job", {}, options);
      await finish(tf, clock, first, "Failed");
      const second = await tf.enqueue("a.job", {}, options);
      assert.notEqual(second, first);
      assert.deepEqual((await tf.storage.remove([await removal(first)])).removed, [first]);
      assert.equal(await tf.storage.uniqueHolder("prune-me"), second);
      assert.equal(await tf.enqueue("a.job", {}, options), second);
    },
  );

  test("unique: rebuild gives each key to the job with it created last", async (tf, clock) => {
    const options = { unique: { key: "again" } };
    const old = await tf.enqueue("a.job", {}, options);
    await finish(tf, clock, old);
    clock.advance(1_000);
    const current = await tf.enqueue("a.job", {}, options);
    const other = await tf.enqueue(sync, { user: 3 });
    assert.equal(await tf.enqueue(sync, { user: 3 }), other);
    await rebuild(tf.storage);
    assert.equal(await tf.storage.uniqueHolder("again"), current);
    assert.equal(await tf.storage.uniqueHolder('user.sync:{"user":3}'), other);
    assert.equal(await tf.enqueue("a.job", {}, options), current);
    assert.equal((await tf.get(other))!.deduplicated, 1);
    await assertConsistent(tf.storage);
    assert.deepEqual((await doctor(tf.storage)).findings, []);
  });
}
