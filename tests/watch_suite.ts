/**
 * @module
 * The event API suite (`watch`, `waitFor`), run unchanged against every backend by
 * `watch_test.ts`: commit order, resuming from a cursor exactly once, filters, the feed's window
 * (`CURSOR_EXPIRED`), and waitFor's outcomes.
 */

import assert from "node:assert/strict";
import type { Storage } from "../storage/storage.ts";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import type { WatchedEvent } from "../lib/watch/watch.ts";
import { CursorExpiredError, JobDeletedError, JobFailedError } from "../storage/event_errors.ts";
import { WaitTimeoutError } from "../storage/event_errors.ts";

/**
 * A fresh storage, keeping `window` feed entries where the backend takes that option; `shrink`
 * drops old entries where it does not (the window moving on).
 */
export type OpenWatchStorage = (window?: number) => Promise<{
  storage: Storage;
  shrink: () => Promise<void>;
  cleanup: () => Promise<void>;
}>;

const double = defineJob("watch.double", (args: { n: number }) => args.n * 2);
const broken = defineJob("watch.broken", () => {
  throw new Error("broken on purpose");
}, { attempts: 1 });

/** Collects what `watch` yields until `count` events came (or 10 s passed). */
export async function take(
  tf: TaskFlow,
  options: Parameters<TaskFlow["watch"]>[0],
  count: number,
): Promise<WatchedEvent[]> {
  const out: WatchedEvent[] = [];
  const signal = AbortSignal.timeout(10_000);
  for await (const item of tf.watch({ ...options, signal })) {
    out.push(item);
    if (out.length >= count) break;
  }
  return out;
}

/** Every event of every job in `ids`, in log order per job. */
async function logsOf(tf: TaskFlow, ids: string[]): Promise<string[]> {
  const all: string[] = [];
  for (const id of ids) for (const e of await tf.events(id)) all.push(`${id}/${e.seq}`);
  return all.sort();
}

const key = (w: WatchedEvent) => `${w.jobId}/${w.event.seq}`;

/** Registers the suite for backend `name`. */
export function runWatchSuite(name: string, open: OpenWatchStorage): void {
  const test = (
    title: string,
    fn: (tf: TaskFlow, shrink: () => Promise<void>) => Promise<void>,
    window?: number,
  ) =>
    Deno.test({
      name: `watch ${name}: ${title}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const { storage, shrink, cleanup } = await open(window);
        const tf = new TaskFlow(storage);
        try {
          await fn(tf, shrink);
        } finally {
          await tf.close().catch(() => {});
          await cleanup();
        }
      },
    });

  test("yields every job's events in commit order, each job's in log order", async (tf) => {
    const worker = createWorker({ storage: tf.storage, jobs: [double], concurrency: 4 });
    await worker.start();
    try {
      const ids = await tf.enqueueMany(
        Array.from({ length: 12 }, (_, n) => ({ job: double, args: { n } })),
      );
      for (const id of ids) await tf.waitFor(id, { timeoutMs: 20_000 });
      const expected = await logsOf(tf, ids);
      const seen = await take(tf, { since: "start" }, expected.length);
      assert.deepEqual(seen.map(key).sort(), expected);
      // Within a job, seq grows by one from event to event.
      const last = new Map<string, number>();
      for (const w of seen) {
        assert.equal(w.event.seq, (last.get(w.jobId) ?? 0) + 1, key(w));
        last.set(w.jobId, w.event.seq);
      }
    } finally {
      await worker.stop();
    }
  });

  test("resumes after a saved cursor exactly once, also inside one append", async (tf) => {
    const ids = await tf.enqueueMany(
      Array.from({ length: 5 }, (_, n) => ({ job: double, args: { n } })),
    );
    for (const id of ids.slice(0, 2)) await tf.delete(id);
    const all = await take(tf, { since: "start" }, 12);
    assert.equal(all.length, 12); // 5 × (created, Enqueued), 2 × Deleted
    for (const cut of [1, 3, 9, 11]) {
      const rest = await take(tf, { since: all[cut - 1].cursor }, all.length - cut);
      assert.deepEqual(rest.map(key), all.slice(cut).map(key), `resumed after ${cut}`);
    }
  });

  test("a watch from now sees only later events; filters by job, queue and name", async (tf) => {
    await tf.enqueue(double, { n: 1 });
    const signal = AbortSignal.timeout(10_000);
    const later: WatchedEvent[] = [];
    const reading = (async () => {
      for await (const w of tf.watch({ queue: "other", signal })) {
        later.push(w);
        if (later.length === 2) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await tf.enqueue(double, { n: 2 });
    const other = await tf.enqueue(double, { n: 3 }, { queue: "other" });
    await reading;
    assert.deepEqual(later.map((w) => w.jobId), [other, other]);
    const byId = await take(tf, { since: "start", jobId: other }, 2);
    assert.deepEqual(byId.map(key), [`${other}/1`, `${other}/2`]);
    const byName = await take(tf, { since: "start", name: "watch.double", queue: "default" }, 4);
    assert.ok(byName.every((w) => w.jobId !== other));
  });

  test("a cursor older than the feed's window is refused, never skipped", async (tf, shrink) => {
    await tf.enqueue(double, { n: 1 });
    const [first] = await take(tf, { since: "start" }, 1);
    for (let n = 0; n < 3; n++) await tf.enqueue(double, { n });
    await shrink();
    const iterator = tf.watch({ since: first.cursor });
    await assert.rejects(() => iterator.next(), (e: unknown) => {
      assert.ok(e instanceof CursorExpiredError);
      assert.equal(e.code, "CURSOR_EXPIRED");
      return true;
    });
  }, 2);

  test("waitFor: the final record, or the failure, deletion, timeout or abort", async (tf) => {
    const worker = createWorker({ storage: tf.storage, jobs: [double, broken], concurrency: 2 });
    await worker.start();
    try {
      const ok = await tf.waitFor(await tf.enqueue(double, { n: 21 }), { timeoutMs: 20_000 });
      assert.equal(ok.state, "Succeeded");
      assert.equal(ok.result, 42);
      const failing = await tf.enqueue(broken, {});
      await assert.rejects(() => tf.waitFor(failing), (e: unknown) => {
        assert.ok(e instanceof JobFailedError);
        assert.equal(e.error?.message, "broken on purpose");
        return true;
      });
      const parked = await tf.schedule(double, { n: 1 }, { delayMs: 3_600_000 });
      await assert.rejects(() => tf.waitFor(parked, { timeoutMs: 30 }), WaitTimeoutError);
      const controller = new AbortController();
      const waiting = tf.waitFor(parked, { signal: controller.signal });
      controller.abort(new Error("gave up"));
      await assert.rejects(() => waiting, /gave up/);
      const deleting = tf.waitFor(parked);
      await tf.delete(parked, { reason: "not needed" });
      await assert.rejects(() => deleting, (e: unknown) => {
        assert.ok(e instanceof JobDeletedError);
        assert.match(e.message, /not needed/);
        return true;
      });
      await assert.rejects(() => tf.waitFor("no-such-job"), { code: "JOB_NOT_FOUND" });
      await assert.rejects(() => tf.waitFor(ok.id, { timeoutMs: -1 }), { code: "INVALID_OPTION" });
    } finally {
      await worker.stop();
    }
  });
}
