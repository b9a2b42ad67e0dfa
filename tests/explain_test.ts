/**
 * @module
 * `explain`: every reason it gives, each shown on a job put in that situation (memory and KV,
 * the reads are the client's), and the CLI's `explain` command.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { appendCommit, createCommit } from "../lib/changes.ts";
import type { JobRecord } from "../lib/job.ts";
import type { Reason } from "../lib/explain/explain.ts";
import type { Commit, ServerInfo, Storage } from "../storage/storage.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { claimCommit, TestClock } from "./helpers.ts";
import { dashboardSetup } from "./dashboard_helpers.ts";

const T0 = Date.UTC(2026, 11, 7, 12);

function server(id: string, queues: string[]): ServerInfo {
  return {
    id,
    hostname: "h",
    pid: 1,
    queues,
    concurrency: 1,
    startedAt: T0,
    lastSeen: T0,
    inFlight: 0,
  };
}

/** Registers one explain case on memory and on KV in memory. */
function explainCase(title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>): void {
  const backends: [string, () => Promise<Storage>][] = [
    ["memory", () => Promise.resolve(new MemoryStorage())],
    ["kv", () => KvStorage.open(":memory:", "kv::memory:")],
  ];
  for (const [name, open] of backends) {
    Deno.test(`explain ${name}: ${title}`, async () => {
      const clock = new TestClock(T0);
      const tf = new TaskFlow(await open(), { now: clock.now });
      try {
        await fn(tf, clock);
      } finally {
        await tf.close();
      }
    });
  }
}

async function reasons(tf: TaskFlow, id: string): Promise<Reason[]> {
  const explanation = await tf.explain(id);
  assert.equal(explanation.summary.startsWith(`${explanation.state}: `), true);
  assert.equal(explanation.summary.includes(explanation.reasons[0].text), true);
  return explanation.reasons;
}

function find<K extends Reason["kind"]>(list: Reason[], kind: K): Extract<Reason, { kind: K }> {
  const reason = list.find((r) => r.kind === kind);
  assert.ok(reason, `no ${kind} reason in ${JSON.stringify(list)}`);
  return reason as Extract<Reason, { kind: K }>;
}

const live = (tf: TaskFlow, id = "srv-1", queues = ["default"]) =>
  tf.storage.heartbeat({ server: server(id, queues), ttlMs: 60_000, leases: [], leaseUntil: 0 });

explainCase("an Enqueued job: ready, or no live worker serves its queue", async (tf) => {
  const id = await tf.enqueue("report.build", {});
  const none = find(await reasons(tf, id), "no_worker");
  assert.match(none.text, /no live worker serves queue default \(no worker is running\)/);
  await live(tf, "srv-1", ["mail"]);
  assert.match(find(await reasons(tf, id), "no_worker").text, /serve mail/);
  await live(tf, "srv-2", ["default"]);
  const now = await reasons(tf, id);
  assert.equal(now.some((r) => r.kind === "no_worker"), false);
  assert.equal(find(now, "ready").queue, "default");
  assert.match(
    find(now, "attempts").text,
    /attempt 1 of 10: if it fails, retried about 30 s later/,
  );
});

explainCase("a paused queue", async (tf) => {
  await live(tf);
  const id = await tf.enqueue("report.build", {});
  await tf.pauseQueue("default");
  const list = await reasons(tf, id);
  assert.equal(find(list, "paused").text, "queue default is paused");
  assert.equal(list.some((r) => r.kind === "ready"), false);
});

explainCase("queue limits (flow control's wait reasons)", async (tf) => {
  await live(tf);
  await tf.queues.configure("default", { concurrency: 1 });
  const running = await tf.enqueue("report.build", { n: 1 });
  await tf.storage.append([{ commits: [claimCommit((await tf.get(running))!, T0, "srv-1")] }]);
  const waiting = await tf.enqueue("report.build", { n: 2 });
  assert.match(find(await reasons(tf, waiting), "limit").text, /concurrency limit 1/);
});

explainCase("a Scheduled job: its due time, and a retry's schedule", async (tf, clock) => {
  await live(tf);
  const later = await tf.schedule("report.build", {}, { delayMs: 90_000 });
  const due = find(await reasons(tf, later), "due");
  assert.equal(due.at, T0 + 90_000);
  assert.equal(due.text, "due in 90 s");
  clock.advance(120_000);
  assert.equal(find(await reasons(tf, later), "due").text, "due since 30 s ago");
  const id = await tf.enqueue("report.build", {}, { attempts: 3 });
  const claim = claimCommit((await tf.get(id))!, clock.now());
  await tf.storage.append([{ commits: [claim] }]);
  const retry = createRetry(claim.record, clock.now());
  await tf.storage.append([{ commits: [retry] }]);
  const reason = find(await reasons(tf, id), "retry");
  assert.equal(reason.attempt, 1);
  assert.equal(reason.attempts, 3);
  assert.match(reason.text, /retry after attempt 1 of 3 failed \(smtp down\): due in 45 s/);
  assert.match(find(await reasons(tf, id), "attempts").text, /attempt 2 of 3/);
});

explainCase(
  "Processing: running on a live worker, or its worker gone and the lease's expiry",
  async (tf, clock) => {
    await live(tf, "srv-1");
    const id = await tf.enqueue("report.build", {});
    await tf.storage.append([{
      commits: [claimCommit((await tf.get(id))!, clock.now(), "srv-1")],
    }]);
    const running = find(await reasons(tf, id), "running");
    assert.equal(running.serverId, "srv-1");
    assert.match(running.text, /running on srv-1 since 0 ms ago, lease until in 30 s/);
    const other = await tf.enqueue("report.build", { n: 2 });
    await tf.storage.append([{
      commits: [claimCommit((await tf.get(other))!, clock.now(), "srv-dead")],
    }]);
    const gone = find(await reasons(tf, other), "worker_gone");
    assert.equal(gone.serverId, "srv-dead");
    assert.equal(gone.leaseUntil, T0 + 30_000);
    assert.match(
      gone.text,
      /its worker srv-dead is gone: its lease expires in 30 s, then a live worker puts it back/,
    );
  },
);

explainCase("Awaiting: a continuation's parent, a batch, staged members", async (tf) => {
  const parent = await tf.enqueue("report.build", {});
  const child = await tf.continueWith(parent, "report.mail", {}, { on: "finished" });
  const reason = find(await reasons(tf, child), "parent");
  assert.deepEqual(reason.ids, [parent]);
  assert.equal(reason.text, `waits for parent ${parent} (Enqueued): runs when it finishes`);
  const { id, thenId } = await tf.batch(
    [{ job: "img.resize", args: { n: 1 } }, { job: "img.resize", args: { n: 2 } }],
    { then: { job: "album.notify", args: {} } },
  );
  const batch = find(await reasons(tf, thenId!), "batch");
  assert.deepEqual([batch.batchId, batch.done, batch.total], [id, 0, 2]);
  assert.match(batch.text, /0 of 2 finished; runs when all succeed/);
  const staged = createCommit("batch:open:0", {
    type: "created",
    at: T0,
    name: "img.resize",
    queue: "default",
    args: {},
    priority: 0,
    options: {},
    batchId: "open",
  }, [{ type: "state", at: T0, state: "Awaiting", reason: "waiting for its batch to be created" }]);
  await tf.storage.append([{ commits: [staged] }]);
  assert.equal(find(await reasons(tf, "batch:open:0"), "staged").batchId, "open");
});

explainCase("Awaiting: dependencies still running (record.dependsOn)", async (tf) => {
  const a = await tf.enqueue("step.a", {}), b = await tf.enqueue("step.b", {});
  await tf.delete(a);
  const commit = createCommit("joined", {
    type: "created",
    at: T0,
    name: "step.join",
    queue: "default",
    args: {},
    priority: 0,
    options: {},
  }, [{ type: "state", at: T0, state: "Awaiting", reason: "waits for its dependencies" }]);
  commit.record.dependsOn = [a, b];
  await tf.storage.append([{ commits: [commit] }]);
  const reason = find(await reasons(tf, "joined"), "dependencies");
  assert.deepEqual(reason.ids, [b]);
  assert.equal(reason.text, `waits for 1 of 2 dependencies: ${b} (Enqueued)`);
  // Once none holds it (before its release is written), its own reason is what is left.
  await tf.delete(b);
  assert.deepEqual(await reasons(tf, "joined"), [
    { kind: "awaiting", text: "waits for its dependencies" },
  ]);
});

explainCase("expiry, final states, and a missing job", async (tf, clock) => {
  const id = await tf.enqueue("report.build", {}, { expiresInMs: 60_000 });
  const expires = find(await reasons(tf, id), "expires");
  assert.equal(expires.at, T0 + 60_000);
  await tf.delete(id, { reason: "not needed" });
  clock.advance(5_000);
  const [finished] = await reasons(tf, id);
  assert.deepEqual(finished, { kind: "finished", text: "deleted 5 s ago: not needed", at: T0 });
  await assert.rejects(() => tf.explain("nope"), { code: "JOB_NOT_FOUND" });
  await assert.rejects(() => tf.explain("no pe"), { code: "INVALID_NAME" });
});

/** The commit a worker writes when attempt 1 failed and a retry is due in 45 s. */
function createRetry(record: JobRecord, at: number): Commit {
  return appendCommit(record, [{
    type: "state",
    at,
    state: "Scheduled",
    reason: "attempt 1 of 3 failed",
    data: { runAt: at + 45_000, retryOf: 1, error: { name: "Error", message: "smtp down" } },
  }]);
}

Deno.test({
  name: "explain: the job page shows the explanation, one line per reason",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { tf, get, close } = await dashboardSetup();
    try {
      const id = await tf.enqueue("report.build", {}, { queue: "reports" });
      await tf.pauseQueue("reports");
      const { status, text } = await get(`/job/${id}`);
      assert.equal(status, 200);
      const section = /<section class="explanation"[^>]*>([\s\S]*?)<\/section>/.exec(text)?.[1];
      assert.ok(section, "the explanation section");
      assert.match(section, /<li data-reason="paused">queue reports is paused<\/li>/);
      assert.match(section, /data-reason="no_worker">no live worker serves queue reports/);
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  name: "explain: deno task explain <id> prints the state and one line per reason",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-explain-" });
    const url = `kv:${dir}/e.sqlite`;
    try {
      const tf = await TaskFlow.open(url);
      const id = await tf.schedule("report.build", {}, { delayMs: 3_600_000 });
      await tf.close();
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "explain", id, "--storage", url],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(output.stdout);
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.match(text, new RegExp(`^${id}: Scheduled\\n  due: due in 60 min\\n`));
      assert.match(text, /\n {2}no_worker: no live worker serves queue default/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
