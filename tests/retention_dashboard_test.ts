/**
 * @module
 * Retention on the dashboard (issue 19 point 7 and the dashboard half of point 3), in-process
 * on memory storage with an injected clock: the policy in force, the last and next prune, the
 * pruned-job metrics, when a finished job goes, and the 404 of a job that was probably pruned.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob, newJobId } from "../lib/job.ts";
import { jobIdTime, prunedText } from "../lib/retention/explain.ts";
import { DEFAULT_RETENTION } from "../lib/retention/policy.ts";
import { readPrunePasses, recordPrunePass } from "../lib/retention/passes.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { eventually } from "./helpers.ts";
import { dashboardSetup as setup } from "./dashboard_helpers.ts";

const HOUR = 3_600_000;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Page text without markup, so that assertions read as the page does. */
const words = (html: string) => html.replace(/<!--.*?-->/g, "").replace(/<[^>]+>/g, "");

Deno.test("retention dashboard: ids decode only when TaskFlow made them, old enough", () => {
  const now = Date.UTC(2026, 5, 1);
  const id = newJobId(now - 3 * 86_400_000);
  assert.equal(jobIdTime(id, now), now - 3 * 86_400_000);
  assert.equal(jobIdTime(`batch:${id}:7`, now), now - 3 * 86_400_000);
  assert.equal(jobIdTime(`batch:${id}:then`, now), now - 3 * 86_400_000);
  for (const custom of ["order-17", id.toLowerCase(), `${id}x`, `batch:${id}:x`, "Z".repeat(26)]) {
    assert.equal(jobIdTime(custom, now), undefined, custom);
  }
  assert.equal(
    prunedText(id, DEFAULT_RETENTION, now),
    `job ${id} was created 3 days ago; the retention policy prunes succeeded jobs after 24h and ` +
      "deleted jobs after 24h, so it was probably pruned",
  );
  assert.equal(prunedText(newJobId(now - HOUR), DEFAULT_RETENTION, now), undefined, "too young");
  const forever = { succeeded: false, failed: false, deleted: { maxCount: 10 } } as const;
  assert.equal(prunedText(id, forever, now), undefined, "no age rule: no claim");
});

Deno.test("retention dashboard: a pass recorded late never hides a newer one", async () => {
  const tf = await TaskFlow.open("memory:");
  try {
    const none = { succeeded: 0, failed: 0, deleted: 0 };
    const pass = (at: number, by: string, succeeded = 0) => ({
      at,
      by,
      removed: { ...none, succeeded },
      kept: 0,
      everyMs: 10_000,
    });
    assert.equal(await readPrunePasses(tf.storage), null);
    assert.equal(await recordPrunePass(tf.storage, pass(2_000, "w2", 5)), true);
    assert.equal(await recordPrunePass(tf.storage, pass(3_000, "w3")), true);
    assert.equal(await recordPrunePass(tf.storage, pass(1_000, "w1", 7)), false, "older on both");
    assert.deepEqual(await readPrunePasses(tf.storage), {
      last: pass(3_000, "w3"),
      lastRemoval: pass(2_000, "w2", 5),
    });
  } finally {
    await tf.close();
  }
});

Deno.test({
  ...opts,
  name: "retention dashboard: before any worker, the defaults that will apply; plain 404s",
  fn: async () => {
    const { clock, get, close, tf } = await setup();
    try {
      const overview = words((await get("/")).text);
      assert.match(
        overview,
        /no retention policy stored yet: once a worker starts it stores its own, by default succeeded 24h, failed 30d, deleted 24h/,
      );
      assert.match(overview, /no prune recorded yet; no worker is running, so nothing is pruned/);
      assert.match(
        words((await get("/jobs/succeeded")).text),
        /Jobs older than 24h here are pruned by the default retention policy, once a worker runs/,
      );
      assert.doesNotMatch((await get("/jobs/enqueued")).text, /data-state-retention/);
      // No policy stored: no worker ever pruned, so no id is claimed to be pruned.
      const old = newJobId(clock.now() - 3 * 86_400_000);
      const page = await get(`/job/${old}`);
      assert.equal(page.status, 404);
      assert.match(words(page.text), new RegExp(`No such job: ${old}\\.`));
      const api = await get(`/api/jobs/${old}`);
      assert.equal(api.status, 404);
      assert.doesNotMatch(api.text, /pruned/);
      const id = await tf.enqueue("report.build", {});
      assert.doesNotMatch((await get(`/job/${id}`)).text, /data-forecast/, "not finished");
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "retention dashboard: policy in force, last and next prune, metrics, forecasts, pruned 404",
  fn: async () => {
    const { clock, get, close, tf } = await setup();
    const job = defineJob("ops.ok", () => "ok");
    const worker = createWorker({
      storage: tf.storage,
      jobs: [job],
      id: "w-ops",
      now: clock.now,
      retention: { succeeded: { maxAgeMs: HOUR }, deleted: false },
      pruneIntervalMs: 10_000,
      logger: () => {},
    });
    try {
      await worker.start();
      const done = await tf.enqueueMany([1, 2, 3].map((i) => ({ job, args: { i } })));
      await eventually(async () => {
        for (const id of done) assert.equal((await tf.get(id))?.state, "Succeeded");
      });
      clock.t += 2 * HOUR;
      await worker.prune();
      clock.t += 4_000;
      let overview = words((await get("/")).text);
      assert.match(
        overview,
        /succeeded 1h, failed 30d, deleted kept forever; no archive; stored by w-ops 2\.0 h ago/,
      );
      assert.match(
        overview,
        /last prune 4\.0 s ago by w-ops: removed 3 succeeded; next within 6\.0 s/,
      );

      clock.t += 1_000;
      await worker.prune();
      clock.t += 1_000;
      overview = words((await get("/")).text);
      assert.match(
        overview,
        /last prune 1\.0 s ago by w-ops: removed nothing; last removal 6\.0 s ago by w-ops: 3 succeeded; next within 9\.0 s/,
      );

      const metrics = (await get("/metrics")).text;
      assert.match(
        metrics,
        /# TYPE taskflow_jobs_pruned_total counter\ntaskflow_jobs_pruned_total 3\n/,
      );
      assert.match(metrics, /# HELP taskflow_jobs_pruned_total /);
      assert.match(metrics, /taskflow_prune_last_pass_removed\{state="Succeeded"\} 0\n/);
      assert.match(metrics, /# TYPE taskflow_prune_last_pass_timestamp_seconds gauge/);
      assert.doesNotMatch(metrics, /event="pruned"/);

      // A pruned job: its id says when it was made, older than the shortest age rule.
      const page = await get(`/job/${done[0]}`);
      assert.equal(page.status, 404);
      assert.match(
        words(page.text),
        new RegExp(
          `Job ${done[0]} was created 2 hours ago; the retention policy prunes succeeded jobs ` +
            "after 1h, so it was probably pruned\\.",
        ),
      );
      const api = await get(`/api/jobs/${done[1]}`);
      assert.equal(api.status, 404);
      const body = JSON.parse(api.text);
      assert.equal(body.code, "JOB_NOT_FOUND");
      assert.match(
        body.error,
        /does not exist: job .* was created 2 hours ago; .* probably pruned/,
      );
      for (const id of [newJobId(clock.now()), "custom-id"]) {
        const plain = await get(`/job/${id}`);
        assert.equal(plain.status, 404);
        assert.match(words(plain.text), new RegExp(`No such job: ${id}\\.`));
      }

      // Finished jobs say when they go: by the policy, by their own keep, or never.
      const [fresh, kept] = await Promise.all([
        tf.enqueue(job, { i: 4 }),
        tf.enqueue(job, { i: 5 }, { keep: false }),
      ]);
      const deleted = await tf.enqueue("nobody.runs", {}, { queue: "idle" });
      await tf.delete(deleted);
      await eventually(async () => {
        for (const id of [fresh, kept]) assert.equal((await tf.get(id))?.state, "Succeeded");
      });
      // Added once it finished: one added while it runs fences the worker's completion.
      const waited = await tf.continueWith(fresh, "nobody.runs", {}, { queue: "idle" });
      const stateAt = (await tf.get(fresh))!.stateAt;
      const due = new Date(stateAt + HOUR).toISOString().replace(/\.\d{3}Z$/, "Z");
      assert.match(
        words((await get(`/job/${fresh}`)).text),
        new RegExp(
          `Kept while its continuation ${waited} is Enqueued, then pruned around ${due} ` +
            "\\(in 1\\.0 h\\) by the retention policy " +
            "\\(succeeded jobs: 1h\\)\\.",
        ),
      );
      assert.match(
        words((await get(`/job/${kept}`)).text),
        /Kept forever by its own keep \(succeeded jobs: forever\)\./,
      );
      assert.match(
        words((await get(`/job/${deleted}`)).text),
        /Kept forever by the retention policy \(deleted jobs: forever\)\./,
      );
      assert.match(
        words((await get("/jobs/succeeded")).text),
        /Jobs older than 1h here are pruned by the retention policy \(jobs with their own keep follow it\)\./,
      );
      assert.match(
        words((await get("/jobs/deleted")).text),
        /Jobs here are kept forever by the retention policy\./,
      );

      // A finished batch whose members were pruned says so instead of listing fewer rows.
      const batch = await tf.batch([{ job, args: { i: 6 } }, { job, args: { i: 7 } }]);
      await eventually(async () => assert.equal((await tf.batchStatus(batch.id))?.done, 2));
      clock.t += 2 * HOUR;
      await worker.prune();
      assert.match(
        words((await get(`/batch/${batch.id}`)).text),
        /2 members of this page are no longer stored: finished members are pruned/,
      );

      await worker.stop();
      assert.match(
        words((await get("/")).text),
        /by w-ops: removed 2 succeeded \(1 expired job kept while others depend on it\); no worker is running, so nothing is pruned until one starts/,
      );
    } finally {
      await worker.stop();
      close();
      await tf.close();
    }
  },
});
