/**
 * @module
 * The dashboard in a real browser (Debian chromium driven by playwright-core): islands hydrate
 * and update live, actions work by clicking, and screenshots land in tests/output/.
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { TaskFlow } from "../lib/client.ts";
import { appendCommit } from "../lib/changes.ts";
import { serveDashboard } from "../lib/dashboard/app.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { claimCommit, eventually } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const required = Deno.env.get("TASKFLOW_TEST_BROWSER") === "required";
const available = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!available && !required) {
  console.log(`browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
}

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

Deno.test({
  name: "browser: live counters, requeue by click, screenshots",
  ignore: !available && !required,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const output = new URL("./output/", import.meta.url).pathname;
    await Deno.mkdir(output, { recursive: true });
    const tf = await TaskFlow.open("memory:");
    const controller = new AbortController();
    let port = 0;
    const { server } = serveDashboard({
      tf,
      port: 0,
      liveIntervalMs: 250,
      signal: controller.signal,
      onListen: (address) => port = address.port,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const errors: string[] = [];
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.on("pageerror", (error) => errors.push(error.message));
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      await tf.enqueueMany([{ job: "report.daily", args: { day: 1 } }, {
        job: "mail.send",
        args: { to: "a@x" },
      }]);
      const failedId = await makeFailed(tf);
      await page.goto(`http://127.0.0.1:${port}/`);
      const enqueued = page.locator('[data-state="Enqueued"]');
      assert.equal(await enqueued.textContent(), "2");
      await page.waitForFunction(() => document.querySelector(".live.on") !== null, null, {
        timeout: 10_000,
      });
      await tf.enqueue("mail.send", { to: "b@x" });
      await page.waitForFunction(
        () => document.querySelector('[data-state="Enqueued"]')?.textContent === "3",
        null,
        { timeout: 5_000 },
      );
      await page.screenshot({ path: `${output}overview.png`, fullPage: true });

      await page.goto(`http://127.0.0.1:${port}/job/${failedId}`);
      assert.equal(await page.locator(".state.big").textContent(), "Failed");
      await page.screenshot({ path: `${output}job-failed.png`, fullPage: true });
      await Promise.all([page.waitForURL(/done=Requeued/), page.click('button[value="requeue"]')]);
      assert.equal(await page.locator(".state.big").textContent(), "Enqueued");
      assert.equal((await tf.get(failedId))!.state, "Enqueued");
      await page.screenshot({ path: `${output}job-details.png`, fullPage: true });
      assert.deepEqual(errors, [], "no errors in the browser console");
    } finally {
      await browser.close();
      controller.abort();
      await server.finished;
      await tf.close();
    }
  },
});

Deno.test({
  name: "browser: the select-all box checks every row, and a bulk action takes them all",
  ignore: !available && !required,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const controller = new AbortController();
    let port = 0;
    const { server } = serveDashboard({
      tf,
      port: 0,
      signal: controller.signal,
      onListen: (address) => port = address.port,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const errors: string[] = [];
      const page = await browser.newPage();
      page.on("pageerror", (error) => errors.push(error.message));
      const ids = await tf.enqueueMany(
        Array.from({ length: 3 }, (_, i) => ({ job: "mail.send", args: { i } })),
      );
      await page.goto(`http://127.0.0.1:${port}/jobs/enqueued`);
      const all = page.locator("input.select-all");
      const rows = page.locator('input[name="ids"]');
      const checked = () =>
        page.evaluate(() =>
          [...document.querySelectorAll<HTMLInputElement>('input[name="ids"]')]
            .map((row) => row.checked)
        );
      assert.deepEqual(await checked(), [false, false, false]);
      // Hydration may land after the load event: click until the island has taken the click.
      await waitFor(async () => {
        if (!(await checked()).every(Boolean)) await all.click();
        return (await checked()).every(Boolean) && await all.isChecked();
      });
      await rows.nth(1).uncheck();
      await waitFor(() => all.evaluate((box) => (box as HTMLInputElement).indeterminate));
      assert.equal(await all.isChecked(), false, "some, not all: the header box is mixed");
      await all.click();
      assert.deepEqual(await checked(), [true, true, true]);
      await all.click();
      assert.deepEqual(await checked(), [false, false, false], "and clears them all");
      await all.click();
      await Promise.all([page.waitForURL(/done=/), page.click('button[value="delete"]')]);
      for (const id of ids) assert.equal((await tf.get(id))!.state, "Deleted");
      assert.deepEqual(errors, [], "no errors in the browser console");
    } finally {
      await browser.close();
      controller.abort();
      await server.finished;
      await tf.close();
    }
  },
});

/** Polls `check` until it is true, for at most 10 s. */
async function waitFor(check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error("condition not met within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function makeFailed(tf: TaskFlow): Promise<string> {
  const id = await tf.enqueue("import.csv", { file: "orders.csv", rows: 1200 });
  const claimed = claimCommit((await tf.get(id))!, Date.now(), "worker-1");
  await tf.storage.append([{ commits: [claimed] }]);
  await tf.storage.append([{
    commits: [appendCommit(claimed.record, [
      { type: "log", at: Date.now(), message: "reading orders.csv" },
      {
        type: "state",
        at: Date.now(),
        state: "Failed",
        reason: "attempt 1 of 1 failed: row 17: price is not a number",
        data: {
          durationMs: 4_000,
          error: {
            name: "TypeError",
            message: "row 17: price is not a number",
            stack: "TypeError: row 17: price is not a number\n    at parse (jobs.ts:10:11)",
          },
        },
      },
    ])],
  }]);
  return id;
}

Deno.test({
  name: "browser: a burst run while no page was open shows in the realtime chart, time-spaced",
  ignore: !available && !required,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const work = defineJob("burst.ok", () => "done");
    const fail = defineJob("burst.bad", () => {
      throw new Error("boom");
    }, { attempts: 1 });
    const worker = createWorker({ storage: tf.storage, jobs: [work, fail], pollIntervalMs: 20 });
    await worker.start();
    const controller = new AbortController();
    let port = 0;
    const { server } = serveDashboard({
      tf,
      port: 0,
      liveIntervalMs: 250,
      signal: controller.signal,
      onListen: (address) => port = address.port,
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      // Two bursts two seconds apart, with no page open: no poll of the hub sees them happen.
      const first = await tf.enqueueMany(
        Array.from({ length: 12 }, (_, i) => ({ job: work, args: i })),
      );
      await eventually(async () =>
        assert.ok((await tf.getMany(first)).every((r) => r?.state === "Succeeded"))
      );
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      const second = await tf.enqueueMany(
        Array.from({ length: 5 }, (_, i) => ({ job: fail, args: i })),
      );
      await eventually(async () =>
        assert.ok((await tf.getMany(second)).every((r) => r?.state === "Failed"))
      );

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`http://127.0.0.1:${port}/`);
      const chart = 'svg[aria-label^="jobs per second"]';
      const buckets = await page.locator(`${chart} rect.bucket`).evaluateAll((rects) =>
        rects.map((r) => ({
          at: Number(r.getAttribute("data-at")),
          x: Number(r.getAttribute("x")),
          succeeded: Number(r.getAttribute("data-succeeded")),
          failed: Number(r.getAttribute("data-failed")),
        }))
      );
      assert.equal(buckets.reduce((n, b) => n + b.succeeded, 0), 12);
      assert.equal(buckets.reduce((n, b) => n + b.failed, 0), 5);
      const firstAt = buckets.find((b) => b.succeeded > 0)!, lastAt = buckets.at(-1)!;
      assert.ok(lastAt.at - firstAt.at >= 2_000, JSON.stringify(buckets));
      // x follows time: the same number of pixels per second between any two buckets.
      const perSecond = (a: typeof firstAt, b: typeof firstAt) =>
        (b.x - a.x) / ((b.at - a.at) / 1_000);
      assert.ok(
        Math.abs(perSecond(firstAt, lastAt) - (1200 - 36) / 60) < 0.5,
        JSON.stringify(buckets),
      );
      assert.notEqual(await page.locator(`${chart} path.ok-area`).getAttribute("d"), "");
      assert.notEqual(await page.locator(`${chart} path.bad-area`).getAttribute("d"), "");

      // Live: a job run while the page is open appears without a reload.
      await page.waitForFunction(() => document.querySelector(".live.on") !== null, null, {
        timeout: 10_000,
      });
      await tf.enqueue(work, 99);
      await page.waitForFunction(
        (selector) =>
          [...document.querySelectorAll(`${selector} rect.bucket`)]
            .reduce((n, r) => n + Number(r.getAttribute("data-succeeded")), 0) === 13,
        chart,
        { timeout: 10_000 },
      );
      const output = new URL("./output/", import.meta.url).pathname;
      await Deno.mkdir(output, { recursive: true });
      await page.screenshot({ path: `${output}realtime.png`, fullPage: true });
      await page.goto(`http://127.0.0.1:${port}/metrics/jobs/burst.ok`);
      await page.screenshot({ path: `${output}job-metrics.png`, fullPage: true });
    } finally {
      await browser.close();
      controller.abort();
      await server.finished;
      await worker.stop();
      await tf.close();
    }
  },
});
