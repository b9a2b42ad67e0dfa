/**
 * @module
 * The contract cases of retention's storage part: `remove`, `finished` and `settings`, run on
 * every backend by `runStorageContract` (tests/storage_contract.ts).
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import type { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import type { JobRecord } from "../lib/job.ts";
import { rebuild } from "../lib/rebuild.ts";
import type { Removal } from "../storage/storage.ts";
import { allIds, assertConsistent, claimCommit, type TestClock } from "./helpers.ts";

/** What the cases need of a backend (see `ContractBackend` in storage_contract.ts). */
export interface RemovalBackend {
  /** Damages stored projections (totals among them) behind the storage's back. */
  corrupt?(storage: TaskFlow["storage"], ids: string[]): Promise<void>;
  /** Every key (and hash field, set member) the backend holds, as text; values left out. */
  footprint?(): Promise<string[]>;
}

type Case = (
  title: string,
  fn: (tf: TaskFlow, clock: TestClock, backend: RemovalBackend) => Promise<void>,
) => void;

/** A finished job: enqueued in `queue`, claimed, then Succeeded or Failed (or deleted). */
async function finishedJob(
  tf: TaskFlow,
  clock: TestClock,
  end: "Succeeded" | "Failed" | "Deleted",
  options: { name?: string; queue?: string; id?: string } = {},
): Promise<JobRecord> {
  const id = await tf.enqueue(options.name ?? "mail.send", { to: "a@example.com" }, {
    queue: options.queue ?? "mail",
    ...(options.id ? { id: options.id } : {}),
  });
  if (end === "Deleted") return await tf.delete(id);
  const claim = claimCommit((await tf.get(id))!, clock.t);
  await tf.storage.append([{ commits: [claim] }]);
  clock.advance(30);
  const done = appendCommit(claim.record, [
    { type: "log", at: clock.t, message: "working" },
    { type: "state", at: clock.t, state: end, data: { durationMs: 30 } },
  ]);
  assert.deepEqual(await tf.storage.append([{ commits: [done] }]), [{ ok: true }]);
  return done.record;
}

const removal = (record: JobRecord): Removal => ({ id: record.id, version: record.version });

/** Every id listed anywhere: state indexes, ready queues, due, search, finished. */
async function everywhere(tf: TaskFlow, queues: string[]): Promise<Set<string>> {
  const never = Date.now() + 1e12;
  const ids = new Set((await allIds(tf.storage, false)).keys());
  for (const queue of queues) {
    for (const job of (await tf.list({ queue, limit: 1_000 })).jobs) ids.add(job.id);
  }
  for (const job of (await tf.search("", { limit: 1_000 })).jobs) ids.add(job.id);
  for (const state of ["Succeeded", "Failed", "Deleted"] as const) {
    const page = await tf.storage.finished({ state, before: never, limit: 1_000 });
    for (const job of page.jobs) ids.add(job.id);
  }
  const due = await tf.storage.due({ state: "Scheduled", before: never, limit: 1_000 });
  for (const job of due) ids.add(job.id);
  return ids;
}

/** Moves job `id` on by one commit of `events` (each stamped at the clock's time). */
async function step(
  tf: TaskFlow,
  clock: TestClock,
  id: string,
  events: Array<{ state: "Enqueued" | "Succeeded" | "Failed" | "Scheduled"; data?: object }>,
): Promise<void> {
  const record = (await tf.get(id))!;
  const commit = appendCommit(
    record,
    events.map(({ state, data }) => ({ type: "state" as const, at: clock.t, state, data })),
  );
  assert.deepEqual(await tf.storage.append([{ commits: [commit] }]), [{ ok: true }]);
}

/** Claims job `id`, then `ms` later ends the attempt in `end` (a retry: Scheduled). */
async function attempt(
  tf: TaskFlow,
  clock: TestClock,
  id: string,
  end: "Succeeded" | "Failed" | "Scheduled",
  ms: number,
): Promise<void> {
  const claim = claimCommit((await tf.get(id))!, clock.t);
  assert.deepEqual(await tf.storage.append([{ commits: [claim] }]), [{ ok: true }]);
  clock.advance(ms);
  const data = end === "Scheduled"
    ? { durationMs: ms, retryOf: claim.record.attempt, runAt: clock.t }
    : { durationMs: ms };
  await step(tf, clock, id, [{ state: end, data }]);
}

/** What the history charts show: totals, durations, time buckets, batch counts, statistics. */
async function history(tf: TaskFlow, clock: TestClock, batch: string) {
  const { totals, durations } = await tf.counts();
  return {
    totals,
    durations,
    minutes: await tf.storage.timeline("minute", clock.t - 3_600_000, clock.t),
    hours: await tf.storage.timeline("hour", clock.t - 86_400_000, clock.t),
    batch: await tf.storage.batchCounts(batch),
    stats: {
      minutes: await tf.storage.stats({ resolution: "minute", from: clock.t - 3_600_000 }),
      hours: await tf.storage.stats({ resolution: "hour", from: clock.t - 86_400_000 }),
      totals: await tf.storage.stats({ resolution: "total" }),
    },
  };
}

/** Registers the cases with the contract suite's `test`. */
export function removalCases(test: Case): void {
  test("remove deletes every trace of finished jobs but not the totals", async (tf, clock) => {
    const keep = await finishedJob(tf, clock, "Succeeded");
    const gone = [
      await finishedJob(tf, clock, "Succeeded"),
      await finishedJob(tf, clock, "Failed", { queue: "other" }),
      await finishedJob(tf, clock, "Deleted", { name: "report.build" }),
    ];
    const waiting = await tf.enqueue("mail.send", {}, { queue: "mail" });
    const before = await tf.counts();
    const from = clock.t - 3_600_000;
    const minutes = await tf.storage.timeline("minute", from, clock.t);
    const hours = await tf.storage.timeline("hour", from, clock.t);

    const result = await tf.storage.remove(gone.map(removal));
    assert.deepEqual(result, { removed: gone.map((r) => r.id), refused: [] });
    for (const { id } of gone) {
      assert.equal(await tf.get(id), null);
      assert.deepEqual(await tf.events(id), []);
      assert.equal(await tf.storage.lease(id), null);
    }
    assert.deepEqual(await tf.storage.getMany(gone.map((r) => r.id)), [null, null, null]);
    const listed = await everywhere(tf, ["mail", "other"]);
    for (const { id } of gone) assert.ok(!listed.has(id), `${id} is still listed somewhere`);
    assert.ok(listed.has(keep.id) && listed.has(waiting));

    const after = await tf.counts();
    assert.deepEqual(after.totals, { ...before.totals, pruned: 3 });
    assert.deepEqual(after.durations, before.durations);
    assert.equal(after.retrying, before.retrying);
    assert.deepEqual(after.states, {
      ...before.states,
      Succeeded: before.states.Succeeded - 1,
      Failed: before.states.Failed - 1,
      Deleted: before.states.Deleted - 1,
    });
    assert.equal(after.queues.mail.Succeeded, 1);
    assert.equal(after.queues.mail.Deleted, 0);
    assert.equal(after.queues.other.Failed, 0);
    assert.deepEqual(await tf.storage.timeline("minute", from, clock.t), minutes);
    assert.deepEqual(await tf.storage.timeline("hour", from, clock.t), hours);
    await assertConsistent(tf.storage);
    assert.deepEqual((await doctor(tf.storage)).findings, []);

    // A rebuild sees no log of the removed jobs, and keeps their count.
    await rebuild(tf.storage);
    await assertConsistent(tf.storage);
    assert.deepEqual((await doctor(tf.storage)).findings, []);
    const rebuilt = await tf.counts();
    assert.equal(rebuilt.totals.pruned, 3);
    assert.deepEqual(rebuilt.states, after.states);
    assert.equal(await tf.get(gone[0].id), null);
  });

  test(
    "rebuild after remove keeps the pruned jobs' totals, durations, buckets and batch counts",
    async (tf, clock, backend) => {
      const minute = () => clock.advance(61_000);
      // Retried once, then Succeeded.
      const retried = await tf.enqueue("mail.send", {}, { queue: "mail" });
      await attempt(tf, clock, retried, "Scheduled", 40);
      minute();
      await step(tf, clock, retried, [{ state: "Enqueued" }]);
      await attempt(tf, clock, retried, "Succeeded", 700);
      // Failed, requeued by hand, Failed again.
      minute();
      const failed = await tf.enqueue("report.build", {}, { queue: "other" });
      await attempt(tf, clock, failed, "Failed", 3_000);
      minute();
      await step(tf, clock, failed, [{ state: "Enqueued" }]);
      await attempt(tf, clock, failed, "Failed", 12);
      // Deleted while waiting.
      const deleted = await tf.enqueue("mail.send", {}, { queue: "mail" });
      await tf.delete(deleted);
      // A finished batch: one member Succeeded, one Failed.
      minute();
      const batch = await tf.batch([
        { job: "img.resize", args: { n: 1 } },
        { job: "img.resize", args: { n: 2 } },
      ]);
      await attempt(tf, clock, batch.jobIds[0], "Succeeded", 5);
      await attempt(tf, clock, batch.jobIds[1], "Failed", 60_500);
      // Kept: a Succeeded job and a waiting one.
      minute();
      const kept = await tf.enqueue("mail.send", {}, { queue: "mail" });
      await attempt(tf, clock, kept, "Succeeded", 250);
      const waiting = await tf.enqueue("mail.send", {}, { queue: "mail" });

      const before = await history(tf, clock, batch.id);
      assert.deepEqual(before.totals, {
        created: 7,
        succeeded: 3,
        failed: 3,
        deleted: 1,
        pruned: 0,
      });
      assert.equal(before.durations.counts.reduce((a, b) => a + b), 7);
      const gone = [retried, failed, deleted, ...batch.jobIds];
      const removals = await Promise.all(
        gone.map(async (id) => ({ id, version: (await tf.get(id))!.version })),
      );
      assert.deepEqual((await tf.storage.remove(removals)).removed, gone);
      const after = { ...before, totals: { ...before.totals, pruned: 5 } };
      assert.deepEqual(await history(tf, clock, batch.id), after);

      await rebuild(tf.storage);
      assert.deepEqual(await history(tf, clock, batch.id), after, "rebuild keeps the history");
      await assertConsistent(tf.storage);
      assert.deepEqual((await doctor(tf.storage)).findings, []);

      // Damaged totals are still repaired: to what the pruned jobs left plus what the logs say.
      if (backend.corrupt) {
        await backend.corrupt(tf.storage, [kept, waiting]);
        assert.notDeepEqual((await tf.counts()).totals, after.totals);
        await rebuild(tf.storage);
        assert.deepEqual(await history(tf, clock, batch.id), after, "a second rebuild repairs");
        await assertConsistent(tf.storage);
        assert.deepEqual((await doctor(tf.storage)).findings, []);
      }
    },
  );

  test(
    "remove refuses a moved, unfinished or missing job without error and still removes the rest",
    async (tf, clock) => {
      const a = await finishedJob(tf, clock, "Succeeded");
      const b = await finishedJob(tf, clock, "Failed");
      const c = await tf.enqueue("mail.send", {}, { queue: "mail" });
      const d = await finishedJob(tf, clock, "Succeeded");
      // b moves on after the pruner read it (requeued, say): its version changes.
      const moved = appendCommit(b, [{ type: "log", at: clock.t, message: "looked at" }]);
      await tf.storage.append([{ commits: [moved] }]);
      const result = await tf.storage.remove([
        removal(a),
        removal(b),
        { id: c, version: (await tf.get(c))!.version },
        { id: "no-such-job", version: 4 },
        removal(d),
        removal(a),
      ]);
      assert.deepEqual(result.removed.sort(), [a.id, d.id].sort());
      assert.deepEqual(result.refused.sort(), [a.id, b.id, c, "no-such-job"].sort());
      assert.equal((await tf.get(b.id))!.version, b.version + 1);
      assert.equal((await tf.get(c))!.state, "Enqueued");
      assert.equal(await tf.get(a.id), null);
      // Idempotent: a second removal of the same jobs refuses them.
      assert.deepEqual(await tf.storage.remove([removal(a), removal(d)]), {
        removed: [],
        refused: [a.id, d.id],
      });
      assert.deepEqual(await tf.storage.remove([]), { removed: [], refused: [] });
      assert.equal((await tf.counts()).totals.pruned, 2);
      await assertConsistent(tf.storage);
      assert.deepEqual((await doctor(tf.storage)).findings, []);
      const tooMany = Array.from(
        { length: tf.storage.limits.maxRemovals + 1 },
        (_, i) => ({ id: `x${i}`, version: 1 }),
      );
      await assert.rejects(tf.storage.remove(tooMany), /maxRemovals/);
    },
  );

  test("a removed custom id can be created again", async (tf, clock) => {
    const first = await finishedJob(tf, clock, "Succeeded", { id: "nightly-2026-01-01" });
    assert.deepEqual((await tf.storage.remove([removal(first)])).removed, [first.id]);
    clock.advance(1_000);
    const again = await tf.enqueue("mail.send", { n: 2 }, { id: "nightly-2026-01-01" });
    assert.equal(again, first.id);
    const record = (await tf.get(again))!;
    assert.equal(record.version, 2);
    assert.deepEqual(record.args, { n: 2 });
    assert.deepEqual((await tf.events(again)).map((e) => e.seq), [1, 2]);
    assert.deepEqual(
      (await tf.search("mail.send", { limit: 10 })).jobs.map((j) => j.id),
      [again],
    );
    await assertConsistent(tf.storage);
  });

  test("a job with a long log is removed whole", async (tf, clock) => {
    const id = await tf.enqueue("chatty", {}, { queue: "mail" });
    const claim = claimCommit((await tf.get(id))!, clock.t);
    await tf.storage.append([{ commits: [claim] }]);
    let record = claim.record;
    for (let round = 0; round < 6; round++) {
      const logs = Array.from({ length: 200 }, (_, i) => ({
        type: "log" as const,
        at: clock.t,
        message: `line ${round * 200 + i}`,
      }));
      const commit = appendCommit(record, logs);
      assert.deepEqual(await tf.storage.append([{ commits: [commit] }]), [{ ok: true }]);
      record = commit.record;
    }
    const done = appendCommit(record, [{ type: "state", at: clock.t, state: "Succeeded" }]);
    await tf.storage.append([{ commits: [done] }]);
    const other = await finishedJob(tf, clock, "Succeeded");
    const result = await tf.storage.remove([removal(done.record), removal(other)]);
    assert.deepEqual(result.removed.sort(), [id, other.id].sort());
    assert.deepEqual(await tf.events(id), []);
    assert.equal(await tf.get(id), null);
    await assertConsistent(tf.storage);
  });

  test("remove leaves no key behind", async (tf, clock, backend) => {
    if (!backend.footprint) return; // a backend without keys to list (none so far)
    // Every job of this case in one minute: they count into the same time buckets.
    clock.t = Math.floor(clock.t / 60_000) * 60_000;
    // A first job creates every counter, bucket and index key a job of its kind touches.
    const end = ["Succeeded", "Failed", "Deleted"] as const;
    const warm = [];
    for (const state of end) warm.push(await finishedJob(tf, clock, state));
    await tf.storage.remove(warm.map(removal));
    const before = await backend.footprint();
    const jobs = [];
    for (const state of end) jobs.push(await finishedJob(tf, clock, state));
    const during = await backend.footprint();
    for (const job of jobs) {
      assert.ok(during.some((key) => key.includes(job.id)), `no key names ${job.id}`);
    }
    assert.deepEqual((await tf.storage.remove(jobs.map(removal))).removed, jobs.map((j) => j.id));
    assert.deepEqual(await backend.footprint(), before);
  });

  test("finished lists a final state oldest first, up to `before`, by pages", async (tf, clock) => {
    const made: JobRecord[] = [];
    for (let i = 0; i < 7; i++) {
      clock.advance(1_000);
      made.push(await finishedJob(tf, clock, "Succeeded"));
    }
    await finishedJob(tf, clock, "Failed");
    const ids = made.map((r) => r.id);
    const all = await tf.storage.finished({ state: "Succeeded", before: clock.t });
    assert.deepEqual(all.jobs.map((j) => j.id), ids);
    assert.equal(all.cursor, undefined);
    const cut = made[4].stateAt;
    const early = await tf.storage.finished({ state: "Succeeded", before: cut });
    assert.deepEqual(early.jobs.map((j) => j.id), ids.slice(0, 5), "entered at `before` is in");
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await tf.storage.finished({ state: "Succeeded", before: cut, cursor, limit: 2 });
      assert.ok(page.jobs.length <= 2);
      paged.push(...page.jobs.map((j) => j.id));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(paged, ids.slice(0, 5));
    assert.deepEqual(
      (await tf.storage.finished({ state: "Failed", before: clock.t })).jobs.length,
      1,
    );
    assert.deepEqual((await tf.storage.finished({ state: "Deleted", before: clock.t })).jobs, []);
    assert.deepEqual(
      (await tf.storage.finished({ state: "Succeeded", before: made[0].stateAt - 1 })).jobs,
      [],
    );
    await assert.rejects(
      tf.storage.finished({ state: "Succeeded", before: clock.t, cursor: "not-a-cursor" }),
      /cursor/,
    );
  });

  test("settings are put, read, listed and deleted by compare-and-set", async (tf) => {
    const settings = tf.storage.settings;
    assert.equal(await settings.get("retention"), null);
    const policy = { id: "retention", version: 1, succeeded: { maxAgeMs: 3_600_000 } };
    assert.equal(await settings.put(policy, 1), false, "absent: only expect 0 writes");
    assert.equal(await settings.put(policy, 0), true);
    assert.equal(await settings.put(policy, 0), false, "present: expect 0 is a conflict");
    assert.deepEqual(await settings.get("retention"), policy);
    const next = { ...policy, version: 2, succeeded: false };
    assert.equal(await settings.put(next, 1), true);
    await settings.put({ id: "another", version: 1 }, 0);
    assert.deepEqual((await settings.list()).map((r) => [r.id, r.version]), [
      ["another", 1],
      ["retention", 2],
    ]);
    assert.deepEqual(await tf.storage.recurring.list(), [], "settings are not recurring records");
    assert.equal(await settings.delete("retention", 1), false);
    assert.equal(await settings.delete("retention", 2), true);
    assert.equal(await settings.delete("retention", 2), false);
    assert.equal(await settings.get("retention"), null);
  });
}
