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
import { claimCommit } from "./helpers.ts";

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
