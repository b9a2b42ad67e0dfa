/**
 * @module
 * The storage contract suite: every backend runs these cases unchanged through
 * {@link runStorageContract}.
 */

import assert from "node:assert/strict";
import { appendCommit, updateJob } from "../lib/changes.ts";
import { TaskFlow } from "../lib/client.ts";
import {
  CorruptRecordError,
  InvalidTransitionError,
  JobExistsError,
  JobNotFoundError,
  PayloadTooLargeError,
} from "../storage/errors.ts";
import type { JobRecord } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { rebuild } from "../lib/rebuild.ts";
import { bucketStart } from "../storage/effects.ts";
import { RESOLUTIONS, type Storage } from "../storage/storage.ts";
import { allIds, assertConsistent, claimCommit, eventually, seeded, TestClock } from "./helpers.ts";
import { removalCases } from "./removal_contract.ts";
import { statsCases } from "./stats_contract.ts";
import { queueCases } from "./queues_contract.ts";
import { uniqueCases } from "./unique_contract.ts";
import { debounceCases } from "./debounce_contract.ts";
import { workflowCases } from "./workflow_contract.ts";

/** What a backend's test file hands the suite. */
export interface ContractBackend {
  storage: Storage;
  /** Removes whatever the backend left behind (temp files, key prefixes). */
  cleanup(): Promise<void>;
  /** Damages stored projections behind the storage's back (rebuild must repair it). */
  corrupt?(storage: Storage, ids: string[]): Promise<void>;
  /** Every key (and hash field, set member) stored, as text: `remove` must leave none behind. */
  footprint?(): Promise<string[]>;
}

/** Registers the contract cases for the backend `name`; `open` makes a fresh, empty one. */
export function runStorageContract(name: string, open: () => Promise<ContractBackend>): void {
  const test = (
    title: string,
    fn: (tf: TaskFlow, clock: TestClock, backend: ContractBackend) => Promise<void>,
  ) =>
    Deno.test({
      name: `${name}: ${title}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const backend = await open();
        const clock = new TestClock();
        const tf = new TaskFlow(backend.storage, { now: clock.now });
        try {
          await fn(tf, clock, backend);
        } finally {
          await tf.close().catch(() => {});
          await backend.cleanup();
        }
      },
    });

  test("enqueue stores a record, its events, index entries and counters", async (tf, clock) => {
    const id = await tf.enqueue("mail.send", { to: "a@example.com" }, { queue: "mail" });
    const record = await tf.get(id);
    assert.ok(record);
    assert.equal(record.state, "Enqueued");
    assert.equal(record.queue, "mail");
    assert.equal(record.version, 2);
    assert.deepEqual(record.args, { to: "a@example.com" });
    assert.equal(record.createdAt, clock.t);
    const events = await tf.events(id);
    assert.deepEqual(events.map((e) => e.type), ["created", "state"]);
    assert.deepEqual(fold(id, events), record);
    const counts = await tf.counts();
    assert.equal(counts.states.Enqueued, 1);
    assert.equal(counts.queues.mail.Enqueued, 1);
    assert.equal(counts.totals.created, 1);
    assert.deepEqual((await tf.list({ queue: "mail" })).jobs.map((j) => j.id), [id]);
    assert.deepEqual((await tf.list({ state: "Enqueued" })).jobs.map((j) => j.id), [id]);
    assert.equal(await tf.get("no-such-job"), null);
    assert.deepEqual(await tf.events("no-such-job"), []);
  });

  test("a stale version is refused and nothing of it is written", async (tf, clock) => {
    const id = await tf.enqueue("x", {});
    const record = (await tf.get(id))!;
    const first = appendCommit(record, [{ type: "log", at: clock.t, message: "first" }]);
    const second = appendCommit(record, [{ type: "log", at: clock.t, message: "second" }]);
    const results = await tf.storage.append([{ commits: [first] }, { commits: [second] }]);
    assert.deepEqual(results, [{ ok: true }, { ok: false, conflicts: [id] }]);
    const events = await tf.events(id);
    assert.deepEqual(
      events.filter((e) => e.type === "log").map((e) => e.type === "log" && e.message),
      ["first"],
    );
    assert.equal((await tf.get(id))!.version, 3);
  });

  test(
    "a change is all or nothing; other changes in the same write still apply",
    async (tf, clock) => {
      const [a, b, c] = await tf.enqueueMany([
        { job: "x", args: 1 },
        { job: "x", args: 2 },
        { job: "x", args: 3 },
      ]);
      const [ra, rb, rc] = (await tf.storage.getMany([a, b, c])) as JobRecord[];
      // Someone else moves b on, so the record read above is now stale.
      await tf.storage.append([{
        commits: [appendCommit(rb, [{ type: "log", at: clock.t, message: "b" }])],
      }]);
      const staleB = rb;
      const results = await tf.storage.append([
        { commits: [appendCommit(ra, [{ type: "log", at: clock.t, message: "a" }])] },
        {
          commits: [
            appendCommit(rc, [{ type: "log", at: clock.t, message: "c" }]),
            appendCommit(staleB, [{ type: "progress", at: clock.t, value: 5 }]),
          ],
        },
      ]);
      assert.deepEqual(results, [{ ok: true }, { ok: false, conflicts: [b] }]);
      assert.equal((await tf.get(a))!.version, 3);
      assert.equal((await tf.get(c))!.version, 2, "c must not change: its change conflicted on b");
    },
  );

  test(
    "a commit may come without the record it was built on, or after another of its job's commits in the same write",
    async (tf, clock) => {
      const [a, b] = await tf.enqueueMany([{ job: "x", args: 1 }, { job: "x", args: 2 }]);
      const [ra, rb] = (await tf.storage.getMany([a, b])) as JobRecord[];
      // Built elsewhere: no `before` hint, the backend finds the record itself.
      const { before: _, ...bare } = claimCommit(ra, clock.t);
      const then = appendCommit(bare.record, [{ type: "log", at: clock.t, message: "next" }]);
      const { before: __, ...bareThen } = appendCommit(rb, [{
        type: "progress",
        at: clock.t,
        value: 1,
      }]);
      const results = await tf.storage.append([
        { commits: [bare] },
        { commits: [then] },
        { commits: [bareThen] },
      ]);
      assert.deepEqual(results, [{ ok: true }, { ok: true }, { ok: true }]);
      assert.equal((await tf.get(a))!.state, "Processing");
      assert.equal((await tf.get(a))!.version, 4);
      assert.equal((await tf.get(b))!.progress, 1);
      // Without a hint and on a stale version: refused like any stale commit.
      const { before: ___, ...stale } = appendCommit(rb, [{
        type: "progress",
        at: clock.t,
        value: 2,
      }]);
      assert.deepEqual(await tf.storage.append([{ commits: [stale] }]), [
        { ok: false, conflicts: [b] },
      ]);
      await assertConsistent(tf.storage);
    },
  );

  test(
    "a commit whose hint is another job or version, or a change naming a job twice, is refused as a bug",
    async (tf, clock) => {
      const [a, b] = await tf.enqueueMany([{ job: "x", args: 1 }, { job: "x", args: 2 }]);
      const [ra, rb] = (await tf.storage.getMany([a, b])) as JobRecord[];
      const commit = appendCommit(ra, [{ type: "log", at: clock.t, message: "x" }]);
      await assert.rejects(
        tf.storage.append([{ commits: [{ ...commit, before: rb }] }]),
        (error: unknown) => error instanceof CorruptRecordError && /built on/.test(error.message),
      );
      assert.equal((await tf.get(a))!.version, 2, "nothing was written");
      // One job twice in one change is a bug too, even when each commit alone is well formed.
      const twice = appendCommit(ra, [{ type: "progress", at: clock.t, value: 1 }]);
      await assert.rejects(
        tf.storage.append([{ commits: [commit] }, { commits: [commit, twice] }]),
        (error: unknown) => error instanceof CorruptRecordError && /same job/.test(error.message),
      );
      assert.equal((await tf.get(a))!.version, 2, "nothing of the other change was written either");
    },
  );

  test("a new job with a taken id conflicts", async (tf) => {
    await tf.enqueue("x", {}, { id: "fixed-1" });
    await assert.rejects(tf.enqueue("x", {}, { id: "fixed-1" }), JobExistsError);
    await assert.rejects(
      tf.enqueueMany([{ job: "x", args: 1, options: { id: "d" } }, {
        job: "x",
        args: 2,
        options: { id: "d" },
      }]),
      JobExistsError,
    );
    assert.equal((await tf.counts()).totals.created, 1);
  });

  test("lists page newest first by state and in claim order by queue", async (tf, clock) => {
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      clock.advance(1);
      ids.push(await tf.enqueue("x", { i }, { priority: i % 3 === 0 ? 5 : 0 }));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await tf.list({ state: "Enqueued", cursor, limit: 50 });
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...ids].reverse());
    const ready: string[] = [];
    cursor = undefined;
    do {
      const page = await tf.list({ queue: "default", cursor, limit: 40 });
      ready.push(...page.jobs.map((j) => j.id));
      cursor = page.cursor;
    } while (cursor);
    const expected = [...ids.filter((_, i) => i % 3 === 0), ...ids.filter((_, i) => i % 3 !== 0)];
    assert.deepEqual(ready, expected);
  });

  test("scheduled jobs are due at their time, not before", async (tf, clock) => {
    const late = await tf.schedule("x", {}, { delayMs: 10_000 });
    const early = await tf.schedule("x", {}, { at: new Date(clock.t + 5_000) });
    assert.equal((await tf.get(late))!.runAt, clock.t + 10_000);
    assert.deepEqual(
      await tf.storage.due({ state: "Scheduled", before: clock.t + 4_999, limit: 10 }),
      [],
    );
    const due = await tf.storage.due({ state: "Scheduled", before: clock.t + 10_000, limit: 10 });
    assert.deepEqual(due.map((j) => j.id), [early, late]);
    assert.equal((await tf.counts()).states.Scheduled, 2);
  });

  test(
    "leases: claim sets, heartbeat extends or reports lost, finishing drops",
    async (tf, clock) => {
      const [a, b] = await tf.enqueueMany([{ job: "x", args: 1 }, { job: "x", args: 2 }]);
      const records = (await tf.storage.getMany([a, b])) as JobRecord[];
      const results = await tf.storage.append(
        records.map((r) => ({ commits: [claimCommit(r, clock.t, "srv-1", 1_000)] })),
      );
      assert.deepEqual(results, [{ ok: true }, { ok: true }]);
      assert.deepEqual(await tf.storage.lease(a), { serverId: "srv-1", until: clock.t + 1_000 });
      assert.equal((await tf.get(a))!.serverId, "srv-1");
      assert.equal((await tf.get(a))!.attempt, 1);
      await tf.delete(b);
      const server = {
        id: "srv-1",
        hostname: "h",
        pid: 1,
        queues: ["default"],
        concurrency: 2,
        startedAt: Date.now(),
        lastSeen: Date.now(),
        inFlight: 2,
      };
      const beat = await tf.storage.heartbeat({
        server,
        ttlMs: 15_000,
        leases: [a, b],
        leaseUntil: clock.t + 5_000,
      });
      assert.deepEqual(beat.lost, [b]);
      assert.deepEqual(await tf.storage.lease(a), { serverId: "srv-1", until: clock.t + 5_000 });
      assert.deepEqual(
        await tf.storage.due({ state: "Processing", before: clock.t + 4_999, limit: 10 }),
        [],
      );
      const expired = await tf.storage.due({
        state: "Processing",
        before: clock.t + 5_000,
        limit: 10,
      });
      assert.deepEqual(expired.map((j) => j.id), [a]);
      const other = await tf.storage.heartbeat({
        server: { ...server, id: "srv-2" },
        ttlMs: 15_000,
        leases: [a],
        leaseUntil: clock.t + 9_000,
      });
      assert.deepEqual(other.lost, [a], "another server cannot extend srv-1's lease");
      const current = (await tf.get(a))!;
      await tf.storage.append([{
        commits: [
          appendCommit(current, [{
            type: "state",
            at: clock.t,
            state: "Succeeded",
            data: { result: 42 },
          }]),
        ],
      }]);
      assert.equal(await tf.storage.lease(a), null);
      assert.equal((await tf.get(a))!.result, 42);
    },
  );

  test(
    "leases lists every Processing job's lease whatever its expiry, page by page",
    async (tf, clock) => {
      const ids = await tf.enqueueMany(
        Array.from({ length: 7 }, (_, n) => ({ job: "lease.page", args: { n } })),
      );
      const records = await tf.storage.getMany(ids);
      // Expiries far in the past and far in the future: a reaper watches them all.
      await tf.storage.append(
        records.slice(0, 6).map((record, n) => ({
          commits: [claimCommit(record!, clock.t, `srv-${n % 2}`, n % 2 ? 3_600_000 : -3_600_000)],
        })),
      );
      const seen = new Map<string, unknown>();
      let cursor: string | undefined, pages = 0;
      do {
        const page = await tf.storage.leases({ cursor, limit: 2 });
        for (const lease of page.leases) seen.set(lease.id, lease);
        cursor = page.cursor;
        assert.ok(++pages < 20, "paging ends");
      } while (cursor);
      assert.deepEqual(
        [...seen.values()].sort((a, b) =>
          String((a as { id: string }).id) < String((b as { id: string }).id) ? -1 : 1
        ),
        ids.slice(0, 6).map((id, n) => ({
          id,
          serverId: `srv-${n % 2}`,
          until: clock.t + (n % 2 ? 3_600_000 : -3_600_000),
        })),
      );
      const all = await tf.storage.leases({});
      assert.equal(all.cursor, undefined);
      assert.equal(all.leases.length, 6);
      await assert.rejects(
        () => tf.storage.leases({ cursor: "not-a-cursor" }),
        (error: Error) => error.name === "InvalidOptionError" && /not-a-cursor/.test(error.message),
      );
    },
  );

  test(
    "every heartbeat changes the leases it extends, even to the same expiry",
    async (tf, clock) => {
      const id = await tf.enqueue("lease.beat", {});
      await tf.storage.append([{
        commits: [claimCommit((await tf.get(id))!, clock.t, "srv-1", 1_000)],
      }]);
      const server = {
        id: "srv-1",
        hostname: "h",
        pid: 1,
        queues: ["default"],
        concurrency: 1,
        startedAt: Date.now(),
        lastSeen: Date.now(),
        inFlight: 1,
      };
      // A holder whose clock stands still (or went back) still shows that it is alive.
      const beat = { server, ttlMs: 15_000, leases: [id], leaseUntil: clock.t + 1_000 };
      assert.deepEqual((await tf.storage.heartbeat(beat)).lost, []);
      assert.deepEqual(await tf.storage.lease(id), { serverId: "srv-1", until: clock.t + 1_001 });
      await tf.storage.heartbeat(beat);
      assert.deepEqual(await tf.storage.lease(id), { serverId: "srv-1", until: clock.t + 1_002 });
      await tf.storage.heartbeat({ ...beat, leaseUntil: clock.t + 500 });
      assert.deepEqual(await tf.storage.lease(id), { serverId: "srv-1", until: clock.t + 1_003 });
      await tf.storage.heartbeat({ ...beat, leaseUntil: clock.t + 9_000 });
      assert.deepEqual(await tf.storage.lease(id), { serverId: "srv-1", until: clock.t + 9_000 });
    },
  );

  test("servers appear with heartbeats and go on removal or expiry", async (tf) => {
    const info = (id: string) => ({
      id,
      hostname: "host",
      pid: 7,
      queues: ["a", "b"],
      concurrency: 4,
      startedAt: Date.now(),
      lastSeen: Date.now(),
      inFlight: 0,
    });
    await tf.storage.heartbeat({ server: info("s1"), ttlMs: 60_000, leases: [], leaseUntil: 0 });
    await tf.storage.heartbeat({ server: info("s2"), ttlMs: 60_000, leases: [], leaseUntil: 0 });
    await tf.storage.heartbeat({ server: info("s3"), ttlMs: 1, leases: [], leaseUntil: 0 });
    await eventually(async () =>
      assert.deepEqual((await tf.storage.servers()).map((s) => s.id).sort(), ["s1", "s2"])
    );
    assert.deepEqual((await tf.storage.servers()).find((s) => s.id === "s1")?.queues, ["a", "b"]);
    await tf.storage.removeServer("s1");
    assert.deepEqual((await tf.storage.servers()).map((s) => s.id), ["s2"]);
  });

  test("a server record lives ttlMs from its beat, whatever the clock its lastSeen came from", async (tf) => {
    const info = (id: string, lastSeen: number) => ({
      id,
      hostname: "host",
      pid: 7,
      queues: ["a"],
      concurrency: 1,
      startedAt: lastSeen,
      lastSeen,
      inFlight: 0,
    });
    // Hosts with clocks a minute behind and a minute ahead (broken NTP).
    const behind = info("behind", Date.now() - 61_000);
    const ahead = info("ahead", Date.now() + 60_000);
    await tf.storage.heartbeat({ server: behind, ttlMs: 60_000, leases: [], leaseUntil: 0 });
    await tf.storage.heartbeat({ server: ahead, ttlMs: 1, leases: [], leaseUntil: 0 });
    await eventually(async () =>
      assert.deepEqual((await tf.storage.servers()).map((s) => s.id), ["behind"])
    );
    assert.deepEqual((await tf.storage.servers())[0], behind);
    // A beat sent from a host whose clock runs a minute ahead leaves the others' records alone.
    const realNow = Date.now;
    Date.now = () => realNow() + 60_000;
    try {
      await tf.storage.heartbeat({
        server: info("ahead", Date.now()),
        ttlMs: 15_000,
        leases: [],
        leaseUntil: 0,
      });
    } finally {
      Date.now = realNow;
    }
    assert.deepEqual((await tf.storage.servers()).map((s) => s.id).sort(), ["ahead", "behind"]);
  });

  test("recurring records are written by compare-and-set", async (tf) => {
    const r = tf.storage.recurring;
    assert.equal(await r.put({ id: "digest", version: 1, cron: "0 9 * * *" }, 0), true);
    assert.equal(await r.put({ id: "digest", version: 1, cron: "* * * * *" }, 0), false);
    assert.equal(await r.put({ id: "digest", version: 2, cron: "0 10 * * *" }, 1), true);
    assert.deepEqual(await r.get("digest"), { id: "digest", version: 2, cron: "0 10 * * *" });
    assert.equal(await r.put({ id: "a", version: 1 }, 0), true);
    assert.deepEqual((await r.list()).map((x) => x.id), ["a", "digest"]);
    assert.equal(await r.delete("digest", 1), false);
    assert.equal(await r.delete("digest", 2), true);
    assert.equal(await r.get("digest"), null);
  });

  test("counters, totals and time buckets follow transitions", async (tf, clock) => {
    const ids = await tf.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ job: "x", args: i })));
    for (const [i, id] of ids.entries()) {
      const claimed = claimCommit((await tf.get(id))!, clock.t);
      await tf.storage.append([{ commits: [claimed] }]);
      const end = i < 3 ? { type: "state" as const, at: clock.t, state: "Succeeded" as const } : {
        type: "state" as const,
        at: clock.t,
        state: "Failed" as const,
        data: { error: { name: "Error", message: "boom" } },
      };
      await tf.storage.append([{ commits: [appendCommit(claimed.record, [end])] }]);
    }
    await tf.delete(ids[4]);
    const counts = await tf.counts();
    assert.equal(counts.states.Succeeded, 3);
    assert.equal(counts.states.Failed, 1);
    assert.equal(counts.states.Deleted, 1);
    assert.equal(counts.states.Processing, 0);
    assert.deepEqual(counts.totals, { created: 5, succeeded: 3, failed: 2, deleted: 1, pruned: 0 });
    assert.equal(counts.retrying, 0);
    const minute = await tf.storage.timeline("minute", clock.t - 120_000, clock.t);
    assert.equal(minute.length, 3);
    assert.deepEqual(minute.at(-1), {
      at: Math.floor(clock.t / 60_000) * 60_000,
      succeeded: 3,
      failed: 2,
    });
    const hour = await tf.storage.timeline("hour", clock.t, clock.t);
    assert.equal(hour[0].succeeded, 3);
    await assertConsistent(tf.storage);
  });

  test(
    "prune drops the time buckets older than their resolution keeps, and only those",
    async (tf, clock) => {
      const [id] = await tf.enqueueMany([{ job: "x", args: 1 }]);
      const claimed = claimCommit((await tf.get(id))!, clock.t);
      await tf.storage.append([{ commits: [claimed] }]);
      const done = { type: "state" as const, at: clock.t, state: "Succeeded" as const };
      await tf.storage.append([{ commits: [appendCommit(claimed.record, [done])] }]);
      const minuteAt = bucketStart("minute", clock.t);
      const hourAt = bucketStart("hour", clock.t);
      const bucket = async (resolution: "minute" | "hour", at: number) =>
        (await tf.storage.timeline(resolution, at, at))[0].succeeded;
      // Within both resolutions' keep: nothing goes.
      await tf.storage.prune(minuteAt + 3_600_000);
      assert.equal(await bucket("minute", minuteAt), 1);
      // Past the minute buckets' keep (3 hours), within the hour buckets' (8 days).
      await tf.storage.prune(minuteAt + RESOLUTIONS.minute.keepMs + 3_600_000);
      assert.equal(await bucket("minute", minuteAt), 0);
      assert.equal(await bucket("hour", hourAt), 1);
      await tf.storage.prune(hourAt + RESOLUTIONS.hour.keepMs + 86_400_000);
      assert.equal(await bucket("hour", hourAt), 0);
      assert.equal((await tf.counts()).totals.succeeded, 1);
    },
  );

  test("enqueueMany writes thousands of jobs across atomic writes", async (tf) => {
    const items = Array.from(
      { length: 1_500 },
      (_, i) => ({ job: "bulk", args: { i, pad: "x".repeat(200) } }),
    );
    const ids = await tf.enqueueMany(items);
    assert.equal(new Set(ids).size, 1_500);
    const counts = await tf.counts();
    assert.equal(counts.states.Enqueued, 1_500);
    assert.deepEqual((await tf.get(ids[1_499]))!.args, { i: 1_499, pad: "x".repeat(200) });
  });

  test("args over the backend's limit are refused with the size and limit", async (tf) => {
    const limit = tf.storage.limits.args;
    const args = { blob: "y".repeat(limit) };
    await assert.rejects(tf.enqueue("x", args), (error: unknown) => {
      assert.ok(error instanceof PayloadTooLargeError);
      assert.equal(error.code, "PAYLOAD_TOO_LARGE");
      assert.match(
        error.message,
        new RegExp(`args is ${limit + 11} bytes as JSON, over the limit of ${limit} bytes`),
      );
      return true;
    });
    // Counted in UTF-8 bytes: fewer characters than the limit, more bytes (3 per "€").
    const wide = { blob: "€".repeat(Math.ceil(limit / 3)) };
    await assert.rejects(tf.enqueue("x", wide), (error: unknown) => {
      assert.ok(error instanceof PayloadTooLargeError);
      const bytes = new TextEncoder().encode(JSON.stringify(wide)).length;
      assert.match(error.message, new RegExp(`args is ${bytes} bytes as JSON`));
      return true;
    });
    assert.equal((await tf.counts()).totals.created, 0);
  });

  test("continuations wait for their parent and move on with it", async (tf, clock) => {
    const parent = await tf.enqueue("p", {});
    const onSuccess = await tf.continueWith(parent, "c", { n: 1 });
    const onFinish = await tf.continueWith(parent, "c", { n: 2 }, { on: "finished" });
    assert.equal((await tf.get(onSuccess))!.state, "Awaiting");
    assert.deepEqual((await tf.get(parent))!.continuations, [
      { id: onSuccess, on: "succeeded" },
      { id: onFinish, on: "finished" },
    ]);
    await tf.delete(parent);
    assert.equal((await tf.get(onSuccess))!.state, "Deleted");
    assert.equal((await tf.get(onFinish))!.state, "Enqueued");
    const late = await tf.continueWith(parent, "c", { n: 3 }, { on: "finished" });
    assert.equal((await tf.get(late))!.state, "Enqueued", "a finished parent releases at once");
    const lateSuccess = await tf.continueWith(parent, "c", { n: 4 });
    assert.equal((await tf.get(lateSuccess))!.state, "Deleted");
    await assert.rejects(tf.continueWith("missing", "c", {}), JobNotFoundError);
    clock.advance(1);
    await assertConsistent(tf.storage);
  });

  test("requeue and delete follow the transition table", async (tf) => {
    const id = await tf.enqueue("x", {});
    await assert.rejects(tf.requeue(id), InvalidTransitionError);
    await tf.delete(id);
    await assert.rejects(
      tf.delete(id),
      (e: unknown) => e instanceof InvalidTransitionError && /Deleted to Deleted/.test(e.message),
    );
    const back = await tf.requeue(id, { reason: "try again" });
    assert.equal(back.state, "Enqueued");
    assert.equal(back.reason, "try again");
    await assert.rejects(tf.requeue("nope"), JobNotFoundError);
    await assert.rejects(tf.delete("nope"), JobNotFoundError);
  });

  test("many writers racing on one job lose no event and apply none twice", async (tf, clock) => {
    const id = await tf.enqueue("x", {});
    const writers = 40;
    await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        updateJob(
          tf.storage,
          (c) => tf.storage.append([c]).then((r) => r[0]),
          id,
          (record) => appendCommit(record, [{ type: "log", at: clock.t, message: `writer ${i}` }]),
          clock.now,
        )),
    );
    const events = await tf.events(id);
    const messages = events.flatMap((e) => e.type === "log" ? [e.message] : []);
    assert.equal(messages.length, writers);
    assert.equal(new Set(messages).size, writers);
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.equal((await tf.get(id))!.version, 2 + writers);
  });

  test(
    "native claim: queue order, then priority and age; refusals; racing claimers",
    async (tf, clock) => {
      const { storage } = tf;
      if (!storage.claim) {
        // KV has none: lib claims with list + append (covered by the worker suite).
        assert.ok(storage.address.startsWith("kv"), `${storage.address} should claim natively`);
        return;
      }
      const a1 = await tf.enqueue("x", 1, { queue: "a" });
      clock.advance(1);
      const a2 = await tf.enqueue("x", 2, { queue: "a", priority: 5 });
      const a3 = await tf.enqueue("x", 3, { queue: "a" });
      const b1 = await tf.enqueue("x", 4, { queue: "b" });
      const build = (serverId: string) => (record: JobRecord) =>
        claimCommit(record, clock.t, serverId);
      const first = await storage.claim({ queues: ["b", "a"], limit: 3 }, build("srv-1"));
      assert.deepEqual(first.claimed.map((c) => c.id), [b1, a2, a1]);
      assert.equal(first.contended, false);
      for (const id of [b1, a2, a1]) assert.equal((await tf.get(id))!.state, "Processing");
      assert.equal((await storage.lease(a1))!.serverId, "srv-1");
      // A job the builder refuses stays where it is.
      const refused = await storage.claim({ queues: ["a"], limit: 5 }, () => null);
      assert.deepEqual(refused.claimed, []);
      assert.equal((await tf.get(a3))!.state, "Enqueued");

      const more = await tf.enqueueMany(
        Array.from({ length: 40 }, (_, i) => ({ job: "x", args: i, options: { queue: "a" } })),
      );
      const racing = await Promise.all(
        [1, 2, 3].map((n) => storage.claim!({ queues: ["a"], limit: 20 }, build(`srv-${n}`))),
      );
      const won = racing.flatMap((r) => r.claimed.map((c) => c.id));
      assert.equal(new Set(won).size, won.length, "a job claimed twice");
      let rest = 41 - won.length;
      while (rest > 0) {
        const { claimed } = await storage.claim({ queues: ["a"], limit: 20 }, build("srv-4"));
        assert.ok(claimed.length > 0, `${rest} ready jobs left unclaimed`);
        rest -= claimed.length;
      }
      for (const id of [a3, ...more]) {
        const states = (await tf.events(id)).flatMap((e) => e.type === "state" ? [e.state] : []);
        assert.deepEqual(states, ["Enqueued", "Processing"]);
      }
      assert.equal((await tf.counts()).states.Processing, 44);
      await assertConsistent(storage);
    },
  );

  test("racing claims: each job is claimed by exactly one claimer", async (tf, clock) => {
    const ids = await tf.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ job: "x", args: i })));
    // Every claimer read the jobs before any claim is written (a backend with a pool may run
    // one claimer's read and write before another's read begins).
    const records = (await tf.storage.getMany(ids)) as JobRecord[];
    const claimers = Array.from({ length: 4 }, async (_, n) => {
      const results = await tf.storage.append(
        records.map((r) => ({ commits: [claimCommit(r, clock.t, `srv-${n}`)] })),
      );
      return results.filter((r) => r.ok).length;
    });
    const won = (await Promise.all(claimers)).reduce((a, b) => a + b, 0);
    assert.equal(won, 30);
    for (const id of ids) {
      const events = await tf.events(id);
      assert.equal(events.filter((e) => e.type === "state" && e.state === "Processing").length, 1);
    }
    assert.equal((await tf.counts()).states.Processing, 30);
  });

  test("seeded random operations keep folds and counters consistent", async (tf, clock) => {
    const random = seeded(20261126);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const ids: string[] = [];
    const ops = 1_500;
    for (let i = 0; i < ops; i++) {
      clock.advance(Math.floor(random() * 50));
      const roll = random();
      try {
        if (roll < 0.2 || ids.length === 0) {
          ids.push(
            await tf.enqueue(pick(["a", "b"]), { i }, {
              queue: pick(["q1", "q2"]),
              priority: pick([0, 1]),
            }),
          );
        } else if (roll < 0.27) {
          ids.push(...await tf.enqueueMany([{ job: "m", args: i }, { job: "m", args: -i }]));
        } else if (roll < 0.32) {
          ids.push(await tf.schedule("s", { i }, { delayMs: Math.floor(random() * 1_000) }));
        } else if (roll < 0.38) {
          ids.push(
            await tf.continueWith(pick(ids), "c", { i }, { on: pick(["succeeded", "finished"]) }),
          );
        } else if (roll < 0.45) {
          await tf.requeue(pick(ids));
        } else if (roll < 0.5) {
          await tf.delete(pick(ids));
        } else {
          const record = (await tf.get(pick(ids)))!;
          const at = clock.t;
          const step = record.state === "Enqueued"
            ? claimCommit(record, at)
            : record.state === "Scheduled"
            ? appendCommit(record, [{ type: "state", at, state: "Enqueued", reason: "due" }])
            : record.state === "Processing"
            ? appendCommit(record, [pick(
              [
                { type: "state", at, state: "Succeeded", data: { result: i } },
                {
                  type: "state",
                  at,
                  state: "Failed",
                  data: { error: { name: "E", message: "x" } },
                },
                {
                  type: "state",
                  at,
                  state: "Scheduled",
                  data: { runAt: at + 100, retryOf: record.attempt },
                },
                { type: "progress", at, value: i % 100 },
                { type: "log", at, message: `line ${i}` },
              ] as const,
            )])
            : undefined;
          if (step) {
            const change = await import("../lib/changes.ts").then((m) =>
              m.withContinuations(tf.storage, step, at)
            );
            await tf.storage.append([change]);
          }
        }
      } catch (error) {
        if (!(error instanceof InvalidTransitionError)) throw error;
      }
    }
    await assertConsistent(tf.storage);
    const counts = await tf.counts();
    assert.equal(Object.values(counts.states).reduce((a, b) => a + b, 0), ids.length);
    assert.equal(counts.totals.created, ids.length);
  });

  test("search by name prefix pages by name, newest first within a name", async (tf, clock) => {
    const ids: Record<string, string[]> = { "mail.send": [], "mail.digest": [], "report": [] };
    for (let i = 0; i < 7; i++) {
      for (const name of Object.keys(ids)) {
        clock.advance(1);
        ids[name].push(await tf.enqueue(name, { i }));
      }
    }
    const all: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await tf.search("mail.", { cursor, limit: 4 });
      all.push(...page.jobs.map((j) => j.id));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(all, [...ids["mail.digest"].reverse(), ...ids["mail.send"].reverse()]);
    assert.equal((await tf.search("report")).jobs.length, 7);
    assert.equal((await tf.search("nothing")).jobs.length, 0);
    assert.equal((await tf.search("")).jobs.length, 21);
  });

  test("queues can be paused and resumed", async (tf) => {
    assert.deepEqual(await tf.pausedQueues(), []);
    await tf.pauseQueue("mail");
    await tf.pauseQueue("reports");
    await tf.pauseQueue("mail");
    assert.deepEqual(await tf.pausedQueues(), ["mail", "reports"]);
    await tf.resumeQueue("mail");
    assert.deepEqual(await tf.pausedQueues(), ["reports"]);
  });

  test("attempt durations feed an all-time histogram", async (tf, clock) => {
    const ids = await tf.enqueueMany([3, 40, 700, 90_000].map((ms) => ({ job: "d", args: ms })));
    for (const [i, ms] of [3, 40, 700, 90_000].entries()) {
      const claimed = claimCommit((await tf.get(ids[i]))!, clock.t);
      await tf.storage.append([{ commits: [claimed] }]);
      await tf.storage.append([{
        commits: [
          appendCommit(claimed.record, [{
            type: "state",
            at: clock.t,
            state: "Succeeded",
            data: { durationMs: ms },
          }]),
        ],
      }]);
    }
    const { durations } = await tf.counts();
    assert.equal(durations.sumMs, 3 + 40 + 700 + 90_000);
    assert.equal(durations.counts.length, 14);
    assert.equal(durations.counts[0], 1, "3 ms ≤ 5 ms");
    assert.equal(durations.counts[3], 1, "40 ms ≤ 50 ms");
    assert.equal(durations.counts[7], 1, "700 ms ≤ 1 s");
    assert.equal(durations.counts[13], 1, "90 s is beyond the last bound");
  });

  test("rebuild restores every projection from the event logs", async (tf, clock, backend) => {
    const ids = await tf.enqueueMany(
      Array.from(
        { length: 40 },
        (_, i) => ({ job: "r", args: i, options: { queue: i % 2 ? "odd" : "even" } }),
      ),
    );
    for (const id of ids.slice(0, 25)) {
      clock.advance(7);
      const claimed = claimCommit((await tf.get(id))!, clock.t);
      await tf.storage.append([{ commits: [claimed] }]);
      if (id !== ids[24]) {
        await tf.storage.append([{
          commits: [
            appendCommit(claimed.record, [{
              type: "state",
              at: clock.t,
              state: id < ids[15] ? "Succeeded" : "Failed",
            }]),
          ],
        }]);
      }
    }
    await tf.schedule("r", {}, { delayMs: 1_000 });
    await tf.continueWith(ids[30], "r", {});
    await tf.delete(ids[31]);
    const snapshot = async () => ({
      records: await tf.storage.getMany([...(await allIds(tf.storage, false)).keys()].sort()),
      counts: await tf.counts(),
      enqueued: (await tf.list({ state: "Enqueued", limit: 100 })).jobs.map((j) => j.id),
      odd: (await tf.list({ queue: "odd", limit: 100 })).jobs.map((j) => j.id),
      due: (await tf.storage.due({ state: "Scheduled", before: clock.t + 5_000, limit: 10 })).map((
        j,
      ) => j.id),
      lease: await tf.storage.lease(ids[24]),
      minute: await tf.storage.timeline("minute", clock.t - 60_000, clock.t),
      stats: [
        await tf.storage.stats({ resolution: "minute", from: clock.t - 60_000 }),
        await tf.storage.stats({ resolution: "hour", from: clock.t - 3_600_000 }),
        await tf.storage.stats({ resolution: "total" }),
      ],
      named: (await tf.search("r", { limit: 100 })).jobs.map((j) => j.id),
    });
    const before = await snapshot();
    // Damage through the contract itself: a record that does not match its events.
    const victim = (await tf.get(ids[3]))!;
    const bogus = appendCommit(victim, [{ type: "log", at: clock.t, message: "corrupting" }]);
    bogus.record = { ...bogus.record, state: "Failed", stateAt: 1, queue: "elsewhere" };
    await tf.storage.append([{ commits: [bogus] }]);
    await backend.corrupt?.(tf.storage, ids);
    assert.notDeepEqual(await snapshot(), before);
    const result = await rebuild(tf.storage);
    assert.equal(result.jobs, 42);
    const after = await snapshot();
    const fixed = after.records.find((r) => r?.id === ids[3])!;
    assert.equal(fixed.version, victim.version + 1);
    after.records = after.records.map((r) => r?.id === ids[3] ? victim : r);
    after.counts.queues = Object.fromEntries(
      Object.entries(after.counts.queues).filter(([q]) => q !== "elsewhere"),
    );
    before.counts.queues = Object.fromEntries(
      Object.entries(before.counts.queues).filter(([q]) => q !== "elsewhere"),
    );
    assert.deepEqual(after, before);
    await assertConsistent(tf.storage);
  });

  statsCases(test);
  removalCases(test);
  queueCases(test);
  uniqueCases(test);
  debounceCases(test);
  workflowCases(test);
}
