/**
 * @module
 * Queue limits through the storage's settings store, run by the storage contract on every
 * backend.
 */

import assert from "node:assert/strict";
import type { TaskFlow } from "../lib/client.ts";
import { InvalidNameError, InvalidOptionError } from "../storage/errors.ts";
import { appendCommit } from "../lib/changes.ts";
import { rebuild } from "../lib/rebuild.ts";
import { type RateWindow, startsInWindow } from "../lib/queues/rate.ts";
import { claimCommit, type TestClock } from "./helpers.ts";

type Case = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) => void;

/** Registers the cases with the contract suite's `test`. */
export function queueCases(test: Case): void {
  test("queues.configure stores limits every client reads", async (tf, clock) => {
    assert.equal(await tf.queues.get("mail"), null);
    const stored = await tf.queues.configure("mail", {
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 1 },
    });
    const expected = {
      name: "mail",
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 1 },
      updatedAt: clock.t,
    };
    assert.deepEqual(stored, expected);
    assert.deepEqual(await tf.queues.get("mail"), expected);
    await tf.queues.configure("bulk", { rateLimit: { max: 5, perMs: 60_000 } });
    assert.deepEqual((await tf.queues.list()).map((q) => q.name), ["bulk", "mail"]);
    // The retention policy shares the settings store and is not a queue.
    assert.ok((await tf.queues.list()).every((q) => q.name !== "retention"));
  });

  test("queues.configure merges: given fields replace, null removes, absent ones stay", async (
    tf,
    clock,
  ) => {
    await tf.queues.configure("mail", {
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 2, rateLimit: { max: 1, perMs: 10 } },
    });
    clock.advance(1_000);
    const after = await tf.queues.configure("mail", {
      rateLimit: null,
      partition: { concurrency: null },
    });
    assert.deepEqual(after, {
      name: "mail",
      concurrency: 5,
      partition: { rateLimit: { max: 1, perMs: 10 } },
      updatedAt: clock.t,
    });
    assert.deepEqual(await tf.queues.get("mail"), after);
    const cleared = await tf.queues.configure("mail", { concurrency: null, partition: null });
    assert.deepEqual(cleared, { name: "mail", updatedAt: clock.t });
    assert.equal(await tf.queues.get("mail"), null);
    assert.deepEqual(await tf.queues.list(), []);
  });

  test("queues.configure refuses bad limits and writes nothing", async (tf) => {
    const bad: [unknown, RegExp][] = [
      [{ concurrency: 0 }, /config\.concurrency 0: must be a whole number from 1/],
      [{ concurrency: -3 }, /config\.concurrency -3/],
      [{ concurrency: 1.5 }, /config\.concurrency 1\.5/],
      [{ rateLimit: { max: 0, perMs: 1000 } }, /config\.rateLimit\.max 0/],
      [{ rateLimit: { max: 10, perMs: 2.5 } }, /config\.rateLimit\.perMs 2\.5/],
      [{ rateLimit: { max: 10 } }, /config\.rateLimit .*must be \{ max, perMs \}/],
      [{ rateLimit: { max: 10, perMs: 1, burst: 3 } }, /config\.rateLimit\.burst/],
      [{ concurrrency: 3 }, /config\.concurrrency.*did you mean "concurrency"/],
      [{ partition: { concurrency: "2" } }, /config\.partition\.concurrency "2"/],
    ];
    for (const [config, message] of bad) {
      await assert.rejects(
        tf.queues.configure("mail", config as never),
        (error: unknown) => error instanceof InvalidOptionError && message.test(error.message),
        JSON.stringify(config),
      );
    }
    await assert.rejects(tf.queues.configure("-bad", { concurrency: 1 }), InvalidNameError);
    await assert.rejects(tf.queues.get("a b"), InvalidNameError);
    assert.deepEqual(await tf.queues.list(), []);
  });

  test("a capped claim applies only while its queue's Processing jobs fit the limit", async (
    tf,
    clock,
  ) => {
    const { storage } = tf;
    const ids = await tf.enqueueMany(
      Array.from({ length: 6 }, (_, i) => ({ job: "x", args: i, options: { queue: "mail" } })),
    );
    const other = await tf.enqueue("x", 0, { queue: "other" });
    const claim = async (id: string) => claimCommit((await tf.get(id))!, clock.t);
    const cap = { queue: "mail", max: 2 };
    // Three claims in one write: the third would make three running.
    const first = await storage.append(
      await Promise.all(ids.slice(0, 3).map(async (id) => ({ commits: [await claim(id)], cap }))),
    );
    assert.deepEqual(first, [{ ok: true }, { ok: true }, {
      ok: false,
      conflicts: [],
      limited: true,
    }]);
    assert.equal((await tf.get(ids[2]))!.state, "Enqueued");
    // Another queue is not counted; a claim without a cap is not limited.
    assert.deepEqual(
      await storage.append([{ commits: [await claim(other)], cap: { queue: "other", max: 1 } }]),
      [{ ok: true }],
    );
    const full = await storage.append([{ commits: [await claim(ids[2])], cap }]);
    assert.deepEqual(full, [{ ok: false, conflicts: [], limited: true }]);
    // A finished job gives its place back.
    const running = await tf.get(ids[0]);
    await storage.append([{
      commits: [appendCommit(running!, [{ type: "state", at: clock.t, state: "Succeeded" }])],
    }]);
    assert.deepEqual(await storage.append([{ commits: [await claim(ids[2])], cap }]), [{
      ok: true,
    }]);
    // A claim that does not fit in two changes' worth: a change of two commits counts both.
    const pair = [await claim(ids[3]), await claim(ids[4])];
    const wide = await storage.append([{ commits: pair, cap: { queue: "mail", max: 3 } }]);
    assert.deepEqual(wide, [{ ok: false, conflicts: [], limited: true }]);
    assert.equal((await tf.counts()).queues.mail.Processing, 2);
    if (!storage.claim) return; // KV claims through append (above)
    const native = await storage.claim(
      { queues: ["mail"], limit: 5, caps: { mail: 3 } },
      (record) => claimCommit(record, clock.t),
    );
    assert.deepEqual(native.claimed.map((c) => c.id), [ids[3]]);
    assert.equal(native.contended, false);
    const none = await storage.claim(
      { queues: ["mail"], limit: 5, caps: { mail: 3 } },
      (record) => claimCommit(record, clock.t),
    );
    assert.deepEqual(none, { claimed: [], contended: false });
    assert.equal((await tf.counts()).queues.mail.Processing, 3);
    // A full queue does not hold back the next one.
    const next = await tf.enqueue("x", 1, { queue: "other" });
    const past = await storage.claim(
      { queues: ["mail", "other"], limit: 1, caps: { mail: 3 } },
      (record) => claimCommit(record, clock.t),
    );
    assert.deepEqual(past.claimed.map((c) => c.id), [next]);
  });

  test("a change writes a setting by compare-and-set in the same atomic write", async (
    tf,
    clock,
  ) => {
    const { storage } = tf;
    const [a, b] = await tf.enqueueMany([{ job: "x", args: 1 }, { job: "x", args: 2 }]);
    const claim = async (id: string) => claimCommit((await tf.get(id))!, clock.t);
    const record = { id: "rate:default", version: 1, slots: [[1, 1]] };
    const first = await storage.append([{
      commits: [await claim(a)],
      setting: { record, expect: 0 },
    }]);
    assert.deepEqual(first, [{ ok: true }]);
    assert.deepEqual(await storage.settings.get("rate:default"), record);
    // A stale version refuses the whole change: the claim does not happen either.
    const stale = await storage.append([{
      commits: [await claim(b)],
      setting: { record: { ...record, version: 2 }, expect: 0 },
    }]);
    assert.deepEqual(stale, [{ ok: false, conflicts: ["setting:rate:default"] }]);
    assert.equal((await tf.get(b))!.state, "Enqueued");
    assert.deepEqual(await storage.settings.get("rate:default"), record);
    const next = { id: "rate:default", version: 2, slots: [[1, 2]] };
    const second = await storage.append([{
      commits: [await claim(b)],
      setting: { record: next, expect: 1 },
      cap: { queue: "default", max: 2 },
    }]);
    assert.deepEqual(second, [{ ok: true }]);
    assert.deepEqual(await storage.settings.get("rate:default"), next);
    assert.equal((await tf.get(b))!.state, "Processing");
  });

  test("rebuild recomputes the queues' rate windows from the claims in the logs", async (
    tf,
    clock,
  ) => {
    const perMs = 60_000;
    await tf.queues.configure("default", {
      rateLimit: { max: 10, perMs },
      partition: { rateLimit: { max: 5, perMs } },
    });
    const ids = await tf.enqueueMany([
      { job: "x", args: 1, options: { partition: "acme" } },
      { job: "x", args: 2, options: { partition: "acme" } },
      { job: "x", args: 3 },
      { job: "x", args: 4, options: { partition: "acme" } },
    ]);
    // Claims without the window's record (a worker's claims write it); the last one long ago.
    const at = [clock.t, clock.t, clock.t, clock.t - 2 * perMs];
    for (const [i, id] of ids.entries()) {
      await tf.storage.append([{ commits: [claimCommit((await tf.get(id))!, at[i])] }]);
    }
    assert.equal((await tf.queues.use("default"))?.startsInWindow, 0);
    const report = await rebuild(tf.storage);
    assert.deepEqual(report.limiters, ["default"]);
    assert.equal((await tf.queues.use("default"))?.startsInWindow, 3);
    const record = await tf.storage.settings.get("rate:default");
    const acme = (record?.partitions as Record<string, RateWindow>).acme;
    assert.equal(startsInWindow(acme, { max: 5, perMs }, clock.t), 2);
    // Run again, it finds the same.
    await rebuild(tf.storage);
    assert.equal((await tf.queues.use("default"))?.startsInWindow, 3);
  });

  test("a recurring job's occurrences keep its partition key", async (tf) => {
    const definition = await tf.recurring.upsert("tenant-digest", "0 9 * * *", "x", {}, {
      partition: "acme",
    });
    assert.equal(definition.options.partition, "acme");
    const id = await tf.recurring.trigger("tenant-digest");
    assert.equal((await tf.get(id))!.options.partition, "acme");
  });
}
