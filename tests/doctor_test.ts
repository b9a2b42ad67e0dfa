/**
 * @module
 * Corrupted storage: the doctor reports it, the dashboard names it instead of crashing, a worker
 * carries on, and rebuild repairs what the event logs can.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import { doctor } from "../lib/doctor.ts";
import { defineJob } from "../lib/job.ts";
import { rebuild } from "../lib/rebuild.ts";
import { createWorker } from "../lib/worker/worker.ts";
import type { KvStorage } from "../storage/kv/mod.ts";
import { type Row, withRecord } from "../storage/kv/rows.ts";
import { appendCommit } from "../lib/changes.ts";
import { claimCommit, eventually, TestClock } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Runs `fn` on a TaskFlow over KV storage in a file `name` of a temp dir, then removes both. */
async function withKvTaskFlow(
  name: string,
  fn: (tf: TaskFlow, url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-doctor-" });
  const url = `kv:${dir}/${name}`;
  const tf = await TaskFlow.open(url);
  try {
    await fn(tf, url);
  } finally {
    await tf.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "doctor: corrupt records are reported, survived, and rebuilt from their events",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withKvTaskFlow("doc.sqlite", async (tf, url) => {
      const [garbled, orphan, edited, healthy] = await tf.enqueueMany(
        Array.from({ length: 4 }, (_, i) => ({ job: "doc.job", args: { i } })),
      );
      // A job's row holds its record and its log: each is damaged apart from the other.
      const kv = (tf.storage as KvStorage).kv;
      const row = async (id: string) => (await kv.get<Row>(["taskflow", "job", id])).value!;
      await kv.set(["taskflow", "job", garbled], [["not a job record {"], (await row(garbled))[1]]);
      await kv.set(["taskflow", "job", orphan], withRecord([null, []], (await tf.get(orphan))!));
      const record = (await tf.get(edited))!;
      await kv.set(
        ["taskflow", "job", edited],
        withRecord(await row(edited), { ...record, queue: "tampered" }),
      );

      const report = await doctor(tf.storage);
      const problems = Object.fromEntries(report.findings.map((f) => [f.id, f.problem]));
      assert.match(problems[orphan], /event log is missing/);
      assert.match(problems[edited], /differs from its events in queue/);
      assert.match(
        problems.counters,
        /Enqueued: the counter says 4, the index lists 3 readable jobs/,
      );

      const cli = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "doctor", "--storage", url],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const printed = new TextDecoder().decode(cli.stdout);
      assert.equal(cli.code, 1);
      assert.match(printed, new RegExp(`${orphan}: its event log is missing`));
      assert.match(printed, /3 jobs examined .*: \d+ problems/);

      const dashboard = createDashboard({ tf });
      try {
        const page = await dashboard.handler(new Request(`http://127.0.0.1/job/${garbled}`));
        const body = await page.text();
        assert.equal(page.status, 500);
        assert.match(body, /is corrupt: the stored record is not a job record/);
        assert.match(body, /deno task rebuild/);
        const list = await dashboard.handler(new Request("http://127.0.0.1/jobs/enqueued"));
        assert.equal(list.status, 200, "a listing skips what it cannot read");
        await list.body?.cancel();
      } finally {
        dashboard.close();
      }

      const job = defineJob("doc.job", () => "ok");
      const worker = createWorker({ storage: tf.storage, jobs: [job], logger: () => {} });
      await worker.start();
      await eventually(async () => assert.equal((await tf.get(healthy))!.state, "Succeeded"));
      await worker.stop();

      const rebuilt = await rebuild(tf.storage);
      assert.equal((await tf.get(garbled))!.name, "doc.job", "rebuilt from its events");
      assert.equal((await tf.get(edited))!.queue, "default");
      // The orphan lost its first events; the worker then ran it, so its log starts at #3.
      assert.deepEqual(rebuilt.skipped, [orphan]);
      assert.equal(await tf.get(orphan), null, "a broken log leaves nothing to rebuild from");
      assert.deepEqual((await doctor(tf.storage)).findings, []);
    }),
});

Deno.test({
  name: "doctor: names the Processing jobs whose server stopped heartbeating, in the CLI too",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withKvTaskFlow("orphans.sqlite", async (tf, url) => {
      const [live, dead, late] = await tf.enqueueMany(
        Array.from({ length: 3 }, (_, i) => ({ job: "doc.job", args: { i } })),
      );
      const claim = async (id: string, server: string, at: number, leaseMs: number) => {
        const [result] = await tf.storage.append([{
          commits: [claimCommit((await tf.get(id))!, at, server, leaseMs)],
        }]);
        assert.ok(result.ok);
      };
      const now = Date.now();
      await claim(live, "w-live", now, 60_000);
      await claim(dead, "w-dead", now - 20_000, 15_000); // its lease ran out 5 s ago
      await claim(late, "w-dead", now, 12_000);
      await tf.storage.heartbeat({
        server: {
          id: "w-live",
          hostname: "test",
          pid: 1,
          queues: ["default"],
          concurrency: 1,
          startedAt: now,
          lastSeen: now,
          inFlight: 1,
        },
        ttlMs: 60_000,
        leases: [live],
        leaseUntil: now + 60_000,
      });

      const clock = new TestClock(now);
      const report = await doctor(tf.storage, { now: clock.now });
      assert.deepEqual(report.findings, [{
        id: "orphans",
        problem: `2 jobs whose server stopped heartbeating: ${dead} (server w-dead, lease ` +
          `expired 5 s ago), ${late} (server w-dead, lease expires in 12 s); a live worker puts ` +
          "them back to Enqueued once their lease runs out",
      }]);

      const cli = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "doctor", "--storage", url],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const printed = new TextDecoder().decode(cli.stdout);
      assert.equal(cli.code, 1, printed);
      assert.match(
        printed,
        new RegExp(
          `orphans: 2 jobs whose server stopped heartbeating: ${dead} \\(server w-dead, lease ` +
            `expired \\d+ s ago\\)`,
        ),
      );

      await tf.storage.removeServer("w-live");
      const alone = await doctor(tf.storage, { now: clock.now });
      assert.match(alone.findings[0].problem, /^3 jobs whose server stopped heartbeating: /);
      assert.match(alone.findings[0].problem, /no worker is running to put them back/);
    }),
});

Deno.test({
  name:
    "doctor: jobs pruned by retention are no problem; a continuation stranded by a gone parent is",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const job = defineJob("doc.ok", () => "ok");
    const worker = createWorker({ storage: tf.storage, jobs: [job], logger: () => {} });
    try {
      await worker.start();
      // Continuations keep themselves forever, so their parents and members go and they stay.
      const parent = await tf.enqueue(job, {});
      const child = await tf.continueWith(parent, job, {}, { keep: false });
      const batch = await tf.batch(
        [{ job, args: { i: 1 } }, { job, args: { i: 2 } }],
        { then: { job, args: {}, options: { keep: false } } },
      );
      await eventually(async () => {
        for (const id of [child, batch.thenId!]) {
          assert.equal((await tf.get(id))?.state, "Succeeded");
        }
      });
      await worker.stop();
      const pruned = await tf.prune({ now: Date.now() + 2 * 86_400_000 });
      assert.deepEqual(pruned.ids.sort(), [parent, ...batch.jobIds].sort());
      assert.equal((await tf.get(child))?.parentId, parent);
      assert.deepEqual((await doctor(tf.storage)).findings, []);

      // A parent gone while its continuation still waits (never the pruner's doing).
      const idle = await tf.enqueue(job, {}, { queue: "idle" });
      const stranded = await tf.continueWith(idle, job, {});
      const record = (await tf.get(idle))!;
      const [deleted] = await tf.storage.append([{
        commits: [appendCommit(record, [{ type: "state", at: Date.now(), state: "Deleted" }])],
      }]);
      assert.ok(deleted.ok);
      const gone = await tf.storage.remove([{ id: idle, version: record.version + 1 }]);
      assert.deepEqual(gone.removed, [idle]);
      const report = await doctor(tf.storage);
      assert.deepEqual(report.findings.map((f) => f.id), [stranded]);
      assert.match(
        report.findings[0].problem,
        new RegExp(`Awaiting for job ${idle}, which does not exist`),
      );
    } finally {
      await worker.stop();
      await tf.close();
    }
  },
});
