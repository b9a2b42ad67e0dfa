/**
 * @module
 * Dashboard details, in-process on memory storage with an injected clock: orphaned jobs are
 * marked on every page that shows Processing jobs (issue 18 point 19), and the page details of
 * point 22 (tab counts, select-all, plurals, batch continuations, retries, unserved queues).
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import type { Snapshot } from "../lib/dashboard/hub.ts";
import { appendCommit } from "../lib/changes.ts";
import { isOrphaned, liveServers, orphanOf, orphanText } from "../lib/liveness.ts";
import { STAGED } from "../lib/batch.ts";
import { claimCommit } from "./helpers.ts";
import { dashboardSetup as setup } from "./dashboard_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A live server record for `id` serving `queues` (memory expires it by the wall clock). */
async function beat(tf: TaskFlow, id: string, queues = ["default"]): Promise<void> {
  await tf.storage.heartbeat({
    server: {
      id,
      hostname: "test",
      pid: 1,
      queues,
      concurrency: 5,
      startedAt: Date.now(),
      lastSeen: Date.now(),
      inFlight: 1,
    },
    ttlMs: 60_000,
    leases: [],
    leaseUntil: 0,
  });
}

/** Enqueues a job and claims it for `serverId` with a lease running out at `until`. */
async function processing(tf: TaskFlow, serverId: string, until: number): Promise<string> {
  const id = await tf.enqueue("report.build", { n: serverId });
  const record = (await tf.get(id))!;
  const at = tf.now();
  const [result] = await tf.storage.append([{
    commits: [claimCommit(record, at, serverId, until - at)],
  }]);
  assert.ok(result.ok);
  return id;
}

/** The page's text as a reader sees it: tags dropped (or turned into `gap`), `&amp;` decoded. */
function textOf(html: string, gap = ""): string {
  return html.replace(/<[^>]*>/g, gap).replaceAll("&amp;", "&").replace(/\s+/g, " ");
}

/** The text of the orphan mark of job `id` in `html`, or undefined. */
function mark(html: string, id: string): string | undefined {
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`data-orphan="${escaped}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

Deno.test({
  ...opts,
  name: "orphans: the decision is the server's record, the countdown is the lease",
  fn: () => {
    const live = liveServers([{ id: "w-live" }]);
    const job = { id: "j", state: "Processing" as const, serverId: "w-dead" };
    assert.equal(isOrphaned(job, live), true);
    assert.equal(isOrphaned({ ...job, serverId: "w-live" }, live), false);
    assert.equal(isOrphaned({ ...job, state: "Enqueued" }, live), false);
    const orphan = orphanOf(job, { serverId: "w-dead", until: 112_000 }, live)!;
    assert.deepEqual(orphan, { id: "j", serverId: "w-dead", leaseUntil: 112_000, reaper: true });
    assert.equal(orphanText(orphan, 100_000), "server gone; back to Enqueued in ~12 s");
    assert.equal(orphanText(orphan, 111_001), "server gone; back to Enqueued in ~1 s");
    assert.equal(orphanText(orphan, 112_000), "server gone; back to Enqueued at the next reap");
    assert.equal(
      orphanText({ ...orphan, reaper: false }, 100_000),
      "server gone; back to Enqueued once a worker runs",
    );
    assert.equal(orphanOf(job, { serverId: "w-live", until: 1 }, live), null);
  },
});

Deno.test({
  ...opts,
  name: "orphans: marked on the overview, the live snapshot, the Processing list and the job page",
  fn: async () => {
    const { clock, tf, get, close } = await setup();
    try {
      await beat(tf, "w-live");
      const healthy = await processing(tf, "w-live", clock.t + 15_000);
      const soon = await processing(tf, "w-dead", clock.t + 12_000);
      const overdue = await processing(tf, "w-dead", clock.t - 3_000);

      const stats = JSON.parse((await get("/api/stats")).text) as Snapshot;
      const byId = Object.fromEntries(stats.processing.map((job) => [job.id, job]));
      assert.equal(byId[healthy].orphan, undefined);
      assert.deepEqual(byId[soon].orphan, {
        id: soon,
        serverId: "w-dead",
        leaseUntil: clock.t + 12_000,
        reaper: true,
      });
      assert.deepEqual(stats.orphaned, { count: 2, more: false });

      const overview = (await get("/")).text;
      assert.equal(mark(overview, soon), "server gone; back to Enqueued in ~12 s");
      assert.equal(mark(overview, overdue), "server gone; back to Enqueued at the next reap");
      assert.equal(mark(overview, healthy), undefined);
      assert.match(textOf(overview), /Processing ?2 orphaned/);

      const list = (await get("/jobs/processing")).text;
      assert.equal(mark(list, soon), "server gone; back to Enqueued in ~12 s");
      assert.equal(mark(list, overdue), "server gone; back to Enqueued at the next reap");
      assert.equal(mark(list, healthy), undefined);

      const page = (await get(`/job/${soon}`)).text;
      assert.equal(mark(page, soon), "server gone; back to Enqueued in ~12 s");
      assert.match(textOf(page), /server w-dead stopped heartbeating/);
      assert.equal(mark((await get(`/job/${healthy}`)).text, healthy), undefined);

      clock.advance(5_000);
      assert.equal(
        mark((await get("/jobs/processing")).text, soon),
        "server gone; back to Enqueued in ~7 s",
        "the countdown follows the client's clock",
      );

      await tf.storage.removeServer("w-live");
      for (const path of ["/", "/jobs/processing", `/job/${healthy}`]) {
        assert.equal(
          mark((await get(path)).text, healthy),
          "server gone; back to Enqueued once a worker runs",
          `${path}: no live worker is left to reap`,
        );
      }
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "jobs pages: counts on the state tabs; select-all with and without JavaScript",
  fn: async () => {
    const { tf, get, close } = await setup();
    try {
      await tf.enqueueMany(
        Array.from({ length: 12 }, (_, i) => ({ job: "mail.send", args: { i } })),
      );
      await tf.schedule("mail.send", { later: true }, { delayMs: 60_000 });
      const { text: html } = await get("/jobs/enqueued");
      const tabs = textOf(/<nav class="tabs">([\s\S]*?)<\/nav>/.exec(html)![1]);
      assert.equal(
        tabs.trim(),
        "Scheduled1Enqueued12Awaiting0Processing0Succeeded0Failed0Deleted0",
      );
      assert.match(html, /data-count="Enqueued">12</);

      assert.match(html, /data-tf-island="SelectAll"/, "a select-all box in the table's header");
      assert.match(
        html,
        /<noscript><a class="select-all-link" href="\/jobs\/enqueued\?select=all"/,
      );
      assert.equal((html.match(/name="ids"[^>]*checked/g) ?? []).length, 0);

      const all = (await get("/jobs/enqueued?select=all&limit=5")).text;
      assert.equal((all.match(/<input type="checkbox" name="ids"[^>]*checked/g) ?? []).length, 5);
      assert.match(all, /href="\/jobs\/enqueued\?limit=5">Clear the selection</);
      assert.equal((await get("/jobs/enqueued?select=everything")).status, 400);
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "plurals: one of anything is singular on every page",
  fn: async () => {
    const { clock, tf, get, close } = await setup();
    try {
      const failed = await tf.enqueue("import.csv", { file: "a.csv" }, { queue: "imports" });
      const claimed = claimCommit((await tf.get(failed))!, clock.t, "w-1");
      await tf.storage.append([{ commits: [claimed] }]);
      await tf.storage.append([{
        commits: [appendCommit(claimed.record, [{
          type: "state",
          at: clock.t,
          state: "Scheduled",
          reason: "attempt 1 failed",
          data: { runAt: clock.t + 60_000, retryOf: 1 },
        }])],
      }]);
      await tf.recurring.upsert("nightly", "0 3 * * *", "report.build", {});
      await tf.recurring.trigger("nightly");
      const { id: batchId } = await tf.batch([{ job: "img.resize", args: { n: 1 } }], {
        then: { job: "album.ready", args: {} },
      });

      const overview = textOf((await get("/")).text);
      assert.match(overview, /1 recurring job · 1 retry · 2 queues/);
      assert.match(overview, /1retry waiting/);

      const pages = [
        "/",
        "/jobs/scheduled",
        "/jobs/awaiting",
        `/job/${failed}`,
        "/queues",
        "/batches",
        `/batch/${batchId}`,
        `/job/batch:${batchId}:then`,
        "/retries",
        "/servers",
        "/recurring",
      ];
      for (const path of pages) {
        const { status, text: html } = await get(path);
        assert.equal(status, 200, path);
        const wrong = textOf(html, " ").match(
          /(?<![\d.])1 (?:[a-z]+ )?(?:jobs|runs|queues|members|events|retries|servers|workers)\b/g,
        );
        assert.equal(wrong, null, `${path} says ${wrong}`);
      }
      assert.match(textOf((await get("/jobs/scheduled")).text), /Scheduled 1 job(?!s)/);
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "batches: a space before the continuation's condition; its reason says what it awaits",
  fn: async () => {
    const { tf, get, close } = await setup();
    try {
      const { id, jobIds, thenId } = await tf.batch(
        Array.from({ length: 3 }, (_, n) => ({ job: "img.resize", args: { n } })),
        { then: { job: "album.ready", args: {} } },
      );
      assert.match(textOf((await get("/batches")).text), new RegExp(`${thenId} on succeeded`));

      const then = (await tf.get(thenId!))!;
      assert.equal(then.state, "Awaiting");
      assert.notEqual(then.reason, STAGED, "the members run: it no longer waits for creation");
      assert.equal(then.reason, `awaiting batch ${id}: runs when all 3 members have succeeded`);
      const events = await tf.events(thenId!);
      assert.equal(
        events.findLast((e) => e.type === "state")?.reason,
        then.reason,
        "the reason is in the event log",
      );
      assert.equal((await tf.get(jobIds[0]))!.state, "Enqueued", "members were released");

      const page = textOf((await get(`/job/${encodeURIComponent(thenId!)}`)).text);
      assert.match(page, new RegExp(`Waits forbatch ${id}: 0 of 3 members finished`));
      await tf.delete(jobIds[0]);
      assert.match(
        textOf((await get(`/job/${encodeURIComponent(thenId!)}`)).text),
        /1 of 3 members finished; runs when all succeed/,
      );
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "overview and queues: a count by retries; a queue no live worker serves says so",
  fn: async () => {
    const { tf, get, close } = await setup();
    try {
      await tf.enqueue("mail.send", {}, { queue: "mail" });
      await tf.enqueue("report.build", {});
      assert.match((await get("/")).text, /data-retries="true">0 retries</);
      await tf.recurring.upsert("one", "@daily", "report.build", {});
      assert.match(textOf((await get("/")).text), /1 recurring job ·/);

      await beat(tf, "w-1", ["default", "reports"]);
      const queues = (await get("/queues")).text;
      assert.match(queues, /data-unserved="mail">no worker serves this queue</);
      assert.doesNotMatch(queues, /data-unserved="default"/);
      assert.match(textOf(queues), /default.*\(1 worker\)/);

      await tf.storage.removeServer("w-1");
      assert.match((await get("/queues")).text, /data-unserved="default"/);
    } finally {
      close();
      await tf.close();
    }
  },
});
