/**
 * @module
 * Unique jobs on the dashboard: the job page shows the unique key and how many enqueues the
 * job absorbed (its `deduplicated` events).
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "job page: shows a unique job's key and how many enqueues it absorbed",
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const dashboard = createDashboard({ tf, liveIntervalMs: 0 });
    const get = async (path: string) =>
      await (await dashboard.handler(new Request(`http://127.0.0.1:8000${path}`))).text();
    try {
      const options = { unique: { key: "user<7>" } };
      const id = await tf.enqueue("user.sync", {}, options);
      assert.match(await get(`/job/${id}`), /<dd data-deduplicated="true">0 enqueues absorbed/);
      for (let i = 0; i < 3; i++) assert.equal(await tf.enqueue("user.sync", {}, options), id);
      const page = await get(`/job/${id}`);
      assert.match(page, /<dd data-unique="true" class="mono">user&lt;7><\/dd>/);
      assert.match(page, /<dd data-deduplicated="true">3 enqueues absorbed<\/dd>/);
      const debounce = { key: "d", delayMs: 500, maxWaitMs: 2_000 };
      const bounced = await tf.enqueue("user.sync", { n: 1 }, { debounce });
      await tf.enqueue("user.sync", { n: 2 }, { debounce });
      assert.match(
        await get(`/job/${bounced}`),
        /<dd data-debounced="true">1 enqueue postponed it \(500 ms each, at most 2000 ms after the first\)<\/dd>/,
      );
      const plain = await tf.enqueue("user.sync", {});
      assert.doesNotMatch(await get(`/job/${plain}`), /Deduplicated|Unique key/);
    } finally {
      dashboard.close();
      await tf.close();
    }
  },
});
