/**
 * @module
 * Times and durations (issue 18.5): jobs already stored with times no `Date` holds still show
 * and can be deleted; long timeouts run to completion; retry delays stay within the horizon.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import { createCommit } from "../lib/changes.ts";
import { defineJob } from "../lib/job.ts";
import { MAX_DELAY_MS } from "../lib/options.ts";
import { retryDelay } from "../lib/worker/retry.ts";
import { startTimer } from "../lib/worker/run.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { eventually } from "./helpers.ts";

const ORIGIN = "http://127.0.0.1:8000";
const TOKEN = "time-input-token";
const auth = { authorization: `Bearer ${TOKEN}` };

/** Writes a Scheduled job due at `runAt` straight into storage, as an older version could. */
async function storeScheduled(tf: TaskFlow, id: string, runAt: number): Promise<void> {
  const created = {
    type: "created" as const,
    at: 1_000,
    name: "x",
    queue: "default",
    args: {},
    priority: 0,
    options: {},
  };
  const commit = createCommit(id, created, [
    { type: "state", at: 1_000, state: "Scheduled", data: { runAt } },
  ]);
  const [result] = await tf.storage.append([{ commits: [commit] }]);
  assert.ok(result.ok);
}

Deno.test({
  name: "time: jobs stored with out-of-range times show on every page and can be deleted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const dashboard = createDashboard({ tf, security: { token: TOKEN } });
    try {
      await storeScheduled(tf, "far", 1e300);
      await storeScheduled(tf, "before", -1e17);
      const get = async (path: string) => {
        const response = await dashboard.handler(
          new Request(`${ORIGIN}${path}`, { headers: auth }),
        );
        return { status: response.status, text: await response.text(), response };
      };
      const list = await get("/jobs/scheduled");
      assert.equal(list.status, 200, list.text.slice(0, 300));
      assert.match(list.text, /invalid time/);
      for (const id of ["far", "before"]) {
        const page = await get(`/job/${id}`);
        assert.equal(page.status, 200, page.text.slice(0, 300));
        assert.match(page.text, /invalid time/);
      }
      const csrf = /tf_csrf=([^;]+)/.exec(list.response.headers.get("set-cookie") ?? "")?.[1] ??
        /name="_csrf" value="([^"]+)"/.exec(list.text)![1];
      const deleted = await dashboard.handler(
        new Request(`${ORIGIN}/job/far`, {
          method: "POST",
          body: new URLSearchParams({ action: "delete", _csrf: csrf }),
          headers: { origin: ORIGIN, cookie: `tf_csrf=${csrf}`, ...auth },
        }),
      );
      await deleted.body?.cancel();
      assert.equal(deleted.status, 303);
      assert.equal((await tf.get("far"))?.state, "Deleted");
    } finally {
      dashboard.close();
      await tf.close();
    }
  },
});

Deno.test({
  name: "time: a timeout longer than 2^31-1 ms does not fire at once; the job succeeds",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const slow = defineJob("slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return "done";
    }, { timeoutMs: 2 ** 31 + 5 });
    const worker = createWorker({ storage: tf.storage, jobs: [slow], recurring: false });
    try {
      const id = await tf.enqueue(slow, {}, { timeoutMs: 30 * 86_400_000 });
      await worker.start();
      const job = await eventually(async () => {
        const record = await tf.get(id);
        assert.ok(
          record?.state === "Succeeded" || record?.state === "Failed" ||
            record?.state === "Scheduled",
        );
        return record!;
      });
      assert.equal(job.state, "Succeeded", job.reason);
      assert.equal(job.result, "done");
    } finally {
      await worker.stop();
      await tf.close();
    }
  },
});

Deno.test("time: a chained timer fires once, after the whole wait, and can be cancelled", async () => {
  let fired = 0;
  const started = performance.now();
  let firedAt = 0;
  startTimer(40, () => {
    fired++;
    firedAt = performance.now();
  }, 10);
  await eventually(() => assert.equal(fired, 1));
  assert.ok(firedAt - started >= 39, "not before the whole wait");
  let cancelled = 0;
  // Cancelled mid-chain, long before it is due (a loaded machine may delay the 15 ms wait).
  const cancel = startTimer(1_000, () => cancelled++, 10);
  await new Promise((resolve) => setTimeout(resolve, 15));
  cancel();
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal(cancelled, 0);
});

Deno.test("time: retry delays stay within the 10-year horizon, whatever the policy", () => {
  const random = () => 0.5;
  const exponential = { type: "exponential" as const, delayMs: 60_000 };
  assert.equal(retryDelay(exponential, 900, new Error("x"), random), MAX_DELAY_MS);
  assert.ok(retryDelay(undefined, 1000, new Error("x"), random) <= MAX_DELAY_MS);
  // A backoff function's out-of-range answer falls back to the default curve.
  for (const answer of [1e300, -1, NaN, Infinity, "5" as unknown as number]) {
    const delay = retryDelay(() => answer, 2, new Error("x"), random);
    assert.ok(delay >= 15_000 && delay <= 150_000, `${answer} → ${delay}`);
  }
  assert.ok(
    retryDelay(
      () => {
        throw new Error("policy bug");
      },
      1,
      new Error("x"),
      random,
    ) > 0,
  );
});
