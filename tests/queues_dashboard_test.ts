/**
 * @module
 * Queue limits on the dashboard: the Queues page shows each queue's stored limits and changes
 * them with a POST form (CSRF-checked, refused in read-only mode), through `tf.queues`.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import type { SecurityConfig } from "../lib/dashboard/security.ts";
import { claimCommit } from "./helpers.ts";

const ORIGIN = "http://127.0.0.1:8000";
const opts = { sanitizeOps: false, sanitizeResources: false };

/** A dashboard on memory storage: `get`, and `post` with the page's CSRF token. */
async function app(security: Partial<SecurityConfig> = {}) {
  const tf = await TaskFlow.open("memory:");
  const dashboard = createDashboard({ tf, security, liveIntervalMs: 0 });
  const first = await dashboard.handler(new Request(`${ORIGIN}/queues`));
  await first.body?.cancel();
  const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")?.[1] ?? "";
  const get = async (path: string) =>
    await (await dashboard.handler(new Request(`${ORIGIN}${path}`))).text();
  const post = (form: Record<string, string>) =>
    dashboard.handler(
      new Request(`${ORIGIN}/queues`, {
        method: "POST",
        body: new URLSearchParams(form),
        headers: { origin: ORIGIN, cookie: `tf_csrf=${csrf}` },
        redirect: "manual",
      }),
    ).then(async (response) => ({
      status: response.status,
      location: response.headers.get("location") ?? "",
      text: await response.text(),
    }));
  return { tf, get, post, csrf, close: () => dashboard.close() };
}

/** The limits cell of `queue` in the Queues page, as text. */
function limitsCell(html: string, queue: string): string {
  const cell = new RegExp(`<td data-limits="${queue}">(.*?)</td>`, "s").exec(html);
  assert.ok(cell, `no limits cell for ${queue}`);
  return cell[1];
}

Deno.test({
  ...opts,
  name: "queues page: shows stored limits and saves them from the form",
  fn: async () => {
    const a = await app();
    try {
      await a.tf.enqueue("mail.send", {}, { queue: "mail" });
      await a.tf.queues.configure("bulk", { rateLimit: { max: 5, perMs: 60_000 } });
      let page = await a.get("/queues");
      assert.match(limitsCell(page, "mail"), /no limits/);
      // A queue with limits and no job yet is listed too.
      assert.match(limitsCell(page, "bulk"), /rate 5\/min/);
      assert.match(limitsCell(page, "bulk"), /name="rate"[^>]*value="5\/min"/);
      const saved = await a.post({
        _csrf: a.csrf,
        action: "limits",
        queue: "mail",
        concurrency: "5",
        rate: "100/1s",
        "partition-concurrency": "1",
        "partition-rate": "",
      });
      assert.equal(saved.status, 303);
      assert.match(
        new URL(saved.location, ORIGIN).searchParams.get("done") ?? "",
        /Limits of mail: concurrency 5, rate 100\/s/,
      );
      const { updatedAt: _, ...mail } = (await a.tf.queues.get("mail"))!;
      assert.deepEqual(mail, {
        name: "mail",
        concurrency: 5,
        rateLimit: { max: 100, perMs: 1_000 },
        partition: { concurrency: 1 },
      });
      page = await a.get("/queues");
      assert.match(
        limitsCell(page, "mail"),
        /concurrency 5, rate 100\/s, per partition: concurrency 1/,
      );
      assert.doesNotMatch(page, /not enforced/, "partition limits are enforced now");
      // The form holds every limit: a blank field removes that one.
      await a.post({ _csrf: a.csrf, action: "limits", queue: "bulk", rate: "" });
      assert.equal(await a.tf.queues.get("bulk"), null);
      const metrics = await a.get("/metrics");
      for (
        const line of [
          'taskflow_queue_limit{queue="mail",scope="queue",limit="concurrency"} 5',
          'taskflow_queue_limit{queue="mail",scope="queue",limit="rate_max"} 100',
          'taskflow_queue_limit{queue="mail",scope="queue",limit="rate_window_seconds"} 1',
          'taskflow_queue_limit{queue="mail",scope="partition",limit="concurrency"} 1',
        ]
      ) assert.ok(metrics.includes(`\n${line}\n`), line);
      assert.doesNotMatch(metrics, /queue="bulk"/, "bulk's limits were removed");
      // The "another queue" form names its queue.
      await a.post({ _csrf: a.csrf, action: "limits", queue: "new", concurrency: "2" });
      assert.equal((await a.tf.queues.get("new"))?.concurrency, 2);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "job page: shows the job's partition key",
  fn: async () => {
    const a = await app();
    try {
      const keyed = await a.tf.enqueue("mail.send", {}, { partition: "acme<1>" });
      assert.match(await a.get(`/job/${keyed}`), /<dd data-partition="true">acme&lt;1><\/dd>/);
      const plain = await a.tf.enqueue("mail.send", {});
      assert.doesNotMatch(await a.get(`/job/${plain}`), /Partition/);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "queues page: bad limits, a missing CSRF token and read-only mode write nothing",
  fn: async () => {
    const a = await app();
    try {
      for (
        const [form, message] of <[Record<string, string>, RegExp][]> [
          [{ concurrency: "0" }, /invalid concurrency &quot;0&quot;: must be a whole number/],
          [{ concurrency: "-1" }, /invalid concurrency &quot;-1&quot;/],
          [{ rate: "100" }, /invalid rate &quot;100&quot;: must be MAX\/PERIOD/],
          [{ rate: "0/1s" }, /invalid rate &quot;0\/1s&quot;: MAX must be from 1/],
          [{ "partition-rate": "1/2d" }, /invalid partition rate &quot;1\/2d&quot;: PERIOD/],
        ]
      ) {
        const answer = await a.post({ _csrf: a.csrf, action: "limits", queue: "mail", ...form });
        assert.equal(answer.status, 400, JSON.stringify(form));
        assert.match(answer.text, message);
      }
      const badName = await a.post({ _csrf: a.csrf, action: "limits", queue: "a b" });
      assert.equal(badName.status, 400);
      const noToken = await a.post({ action: "limits", queue: "mail", concurrency: "3" });
      assert.equal(noToken.status, 403);
      assert.deepEqual(await a.tf.queues.list(), []);
    } finally {
      a.close();
    }
    const ro = await app({ readOnly: true });
    try {
      await ro.tf.queues.configure("mail", { concurrency: 3 });
      const page = await ro.get("/queues");
      assert.match(limitsCell(page, "mail"), /concurrency 3/);
      assert.doesNotMatch(page, /Save limits/);
      const refused = await ro.post({ _csrf: ro.csrf, action: "limits", queue: "mail" });
      assert.equal(refused.status, 403);
      assert.equal((await ro.tf.queues.get("mail"))?.concurrency, 3);
    } finally {
      ro.close();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "a job held by its queue's limit says why on its page and in the API; use is shown and exported",
  fn: async () => {
    const a = await app();
    try {
      await a.tf.queues.configure("mail", { concurrency: 1, rateLimit: { max: 10, perMs: 1_000 } });
      const [first, second] = await a.tf.enqueueMany([
        { job: "mail.send", args: 1, options: { queue: "mail" } },
        { job: "mail.send", args: 2, options: { queue: "mail" } },
      ]);
      const record = (await a.tf.get(first))!;
      await a.tf.storage.append([{ commits: [claimCommit(record, a.tf.now())] }]);
      const api = JSON.parse(await a.get(`/api/jobs/${second}`));
      assert.equal(api.waiting, "queue mail at its concurrency limit 1");
      assert.equal(JSON.parse(await a.get(`/api/jobs/${first}`)).waiting, undefined);
      assert.match(await a.get(`/job/${second}`), /waits: queue mail at its concurrency limit 1/);
      assert.match(limitsCell(await a.get("/queues"), "mail"), /1 of 1 running/);
      const metrics = await a.get("/metrics");
      assert.match(metrics, /taskflow_queue_limit_use\{queue="mail",use="running"\} 1/);
      assert.match(metrics, /taskflow_queue_limit_use\{queue="mail",use="rate_starts"\} 0/);
    } finally {
      await a.close();
      await a.tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "a job held by its partition's limit names the partition on its page and in the API",
  fn: async () => {
    const a = await app();
    try {
      await a.tf.queues.configure("mail", { partition: { concurrency: 1 } });
      const [first, second, other] = await a.tf.enqueueMany([
        { job: "mail.send", args: 1, options: { queue: "mail", partition: "acme" } },
        { job: "mail.send", args: 2, options: { queue: "mail", partition: "acme" } },
        { job: "mail.send", args: 3, options: { queue: "mail", partition: "beta" } },
      ]);
      assert.equal(JSON.parse(await a.get(`/api/jobs/${second}`)).waiting, undefined);
      const record = (await a.tf.get(first))!;
      await a.tf.storage.append([{ commits: [claimCommit(record, a.tf.now())] }]);
      const text = "partition acme at its limit: 1 running at once in queue mail";
      assert.equal(JSON.parse(await a.get(`/api/jobs/${second}`)).waiting, text);
      assert.match(await a.get(`/job/${second}`), new RegExp(`waits: ${text}`));
      assert.equal(JSON.parse(await a.get(`/api/jobs/${other}`)).waiting, undefined);
    } finally {
      await a.close();
      await a.tf.close();
    }
  },
});
