/**
 * @module
 * A KV listing reads its jobs' rows by one range over their ids and by key for what the range
 * missed: the records come back whole and in the listing's order, however the ids are spread.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { KvStorage } from "../storage/kv/mod.ts";

const noop = defineJob("kv-reads.noop", () => {});

Deno.test("kv reads: a ready listing spread among other jobs' rows has every record, in order", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  const tf = new TaskFlow(storage);
  try {
    // Queue "a" gets every fifth job: 30 of them among 120 others, a range of 150 rows.
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const queue = i % 5 === 0 ? "a" : "b";
      const id = await tf.enqueue(noop, { i }, { queue, priority: i === 75 ? 5 : 0 });
      if (queue === "a") ids.push(id);
    }
    // The priority job first, then the others in the order they were enqueued.
    const expected = [ids[15], ...ids.filter((_, k) => k !== 15)];
    const page = await storage.list({ queue: "a", limit: 30 });
    assert.deepEqual(page.jobs.map((job) => job.id), expected);
    for (const job of page.jobs) assert.deepEqual(job, await storage.get(job.id));
    assert.deepEqual(page.jobs.map((job) => (job.args as { i: number }).i), [
      75,
      ...Array.from({ length: 30 }, (_, k) => 5 * k).filter((i) => i !== 75),
    ]);
  } finally {
    await tf.close();
  }
});
