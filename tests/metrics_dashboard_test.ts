/**
 * @module
 * The dashboard's statistics: the Metrics pages per job name, the overview's charts from the
 * storage's buckets (realtime on a time axis, history and waits refreshed live), and the
 * Prometheus exposition at `/metrics` (families, histograms, per-name and per-queue series).
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import type { TaskFlow } from "../lib/client.ts";
import { LiveHub } from "../lib/dashboard/hub.ts";
import { claimCommit, type TestClock } from "./helpers.ts";
import { dashboardSetup } from "./dashboard_helpers.ts";

/** One attempt of a new job: enqueued, started `waitMs` later, ended `ms` after that. */
async function attempt(
  tf: TaskFlow,
  clock: TestClock,
  name: string,
  { waitMs = 0, ms, end = "Succeeded", queue = "default" }: {
    waitMs?: number;
    ms: number;
    end?: "Succeeded" | "Failed";
    queue?: string;
  },
): Promise<void> {
  const id = await tf.enqueue(name, {}, { queue });
  clock.advance(waitMs);
  const claim = claimCommit((await tf.get(id))!, clock.t);
  await tf.storage.append([{ commits: [claim] }]);
  clock.advance(ms);
  const state = { type: "state" as const, at: clock.t, state: end, data: { durationMs: ms } };
  await tf.storage.append([{ commits: [appendCommit(claim.record, [state])] }]);
}

Deno.test("metrics pages: every job name that ran, its statistics per window", async () => {
  const a = await dashboardSetup();
  try {
    for (let i = 0; i < 3; i++) await attempt(a.tf, a.clock, "mail.send", { ms: 40 });
    await attempt(a.tf, a.clock, "mail.send", { ms: 40, end: "Failed" });
    await attempt(a.tf, a.clock, "reports/monthly", { ms: 3 });
    const list = await a.get("/metrics/jobs?window=1h");
    assert.equal(list.status, 200);
    assert.match(list.text, /<tr data-name="mail.send">/);
    assert.match(list.text, /href="\/metrics\/jobs\/reports%2Fmonthly"/);
    assert.match(list.text, /data-stat="failure-rate">25.0 %/);
    assert.match(list.text, /data-stat="succeeded">3</);
    assert.equal((await a.get("/metrics/jobs?window=2h")).status, 400);

    const page = await a.get("/metrics/jobs/mail.send");
    assert.equal(page.status, 200);
    for (const window of ["1h", "24h", "7d", "all"]) {
      assert.match(page.text, new RegExp(`<tr data-window="${window}">`));
    }
    // 4 attempts of 40 ms, all in the 25–50 ms bucket: p50 halfway, p95 and p99 near its top.
    assert.match(page.text, /data-stat="p50">38 ms/);
    assert.match(page.text, /data-stat="p99">50 ms/);
    assert.match(page.text, /aria-label="attempt durations, last 24 hours"/);
    assert.match(page.text, /data-bucket="3" data-count="4"/);
    assert.equal((await a.get("/metrics/jobs/reports%2Fmonthly")).status, 200);
    assert.equal((await a.get("/metrics/jobs/never.ran")).status, 404);
    // Retention removes the jobs, never their statistics.
    const done = await a.tf.storage.finished({ state: "Succeeded", before: a.clock.t + 1 });
    await a.tf.storage.remove(done.jobs.map(({ id, version }) => ({ id, version })));
    assert.match((await a.get("/metrics/jobs/mail.send")).text, /data-stat="succeeded">3</);
  } finally {
    a.close();
    await a.tf.close();
  }
});

Deno.test("metrics pages: the overview's realtime chart puts buckets on a time axis", async () => {
  const a = await dashboardSetup();
  try {
    await attempt(a.tf, a.clock, "x", { ms: 1 });
    a.clock.advance(7_000);
    await attempt(a.tf, a.clock, "x", { ms: 1, end: "Failed" });
    a.clock.advance(1_000);
    const page = await a.get("/");
    const rects = [...page.text.matchAll(/<rect class="bucket" x="([\d.]+)"[^>]*data-at="(\d+)"/g)]
      .map((m) => ({ x: Number(m[1]), at: Number(m[2]) }));
    assert.equal(rects.length, 2, page.text);
    // 7 seconds apart on a 60-second axis of 1164 units.
    assert.ok(Math.abs((rects[1].x - rects[0].x) - 7 * 1_164 / 60) < 0.2, JSON.stringify(rects));
    assert.match(page.text, /data-succeeded="0" data-failed="1"/);
    assert.match(page.text, /aria-label="time from enqueued to started, per minute/);
  } finally {
    a.close();
    await a.tf.close();
  }
});

Deno.test("metrics pages: the hub reads the history again, so the charts move live", async () => {
  const a = await dashboardSetup();
  const hub = new LiveHub(a.tf, 0, 0);
  try {
    const sum = (points: { succeeded: number }[]) => points.reduce((n, p) => n + p.succeeded, 0);
    const before = await hub.snapshot();
    assert.equal(sum(before.history.hours), 0);
    await attempt(a.tf, a.clock, "x", { waitMs: 250, ms: 1 });
    const after = await hub.snapshot();
    assert.equal(sum(after.history.hours), 1);
    assert.equal(sum(after.history.days), 1);
    assert.equal(after.history.waits.at(-1)?.started, 1);
    assert.equal(sum(after.series), 1);
    // A hub with the default period keeps the history it read for that long.
    const slow = new LiveHub(a.tf, 0);
    await slow.snapshot();
    await attempt(a.tf, a.clock, "x", { ms: 1 });
    assert.equal(sum((await slow.snapshot()).history.hours), 1);
    assert.equal(sum((await slow.snapshot()).series), 2);
    slow.close();
  } finally {
    hub.close();
    a.close();
    await a.tf.close();
  }
});

Deno.test("metrics pages: /metrics exports per-name and per-queue histograms and outcomes", async () => {
  const a = await dashboardSetup();
  try {
    for (let i = 0; i < 3; i++) {
      await attempt(a.tf, a.clock, "mail.send", { waitMs: 200, ms: 40, queue: "mail" });
    }
    await attempt(a.tf, a.clock, "reports/monthly", { ms: 3, end: "Failed" });
    await a.tf.storage.heartbeat({
      server: {
        id: "srv-1",
        hostname: 'h"1\\',
        pid: 1,
        queues: ["mail"],
        concurrency: 8,
        startedAt: a.clock.t,
        lastSeen: a.clock.t,
        inFlight: 2,
      },
      ttlMs: 60_000,
      leases: [],
      leaseUntil: 0,
    });
    const { text } = await a.get("/metrics");
    const lines = text.trimEnd().split("\n");
    // Every sample is `name{labels} value` under its family's HELP and TYPE.
    const typed = new Set<string>();
    for (const line of lines) {
      const type = /^# TYPE (\w+) (counter|gauge|histogram)$/.exec(line);
      if (type) typed.add(type[1]);
      if (line.startsWith("#")) continue;
      const sample = /^(\w+?)(_bucket|_sum|_count)?(\{.*\})? (-?[\d.e+]+)$/.exec(line);
      assert.ok(sample, `not a sample: ${line}`);
      assert.ok(typed.has(sample[1]) || typed.has(sample[1] + (sample[2] ?? "")), line);
    }
    const family = "taskflow_job_attempt_duration_seconds";
    assert.match(text, new RegExp(`# TYPE ${family} histogram`));
    assert.ok(lines.includes(`${family}_bucket{name="mail.send",le="0.025"} 0`));
    assert.ok(lines.includes(`${family}_bucket{name="mail.send",le="0.05"} 3`));
    assert.ok(lines.includes(`${family}_bucket{name="mail.send",le="+Inf"} 3`));
    assert.ok(lines.includes(`${family}_sum{name="mail.send"} 0.12`));
    assert.ok(lines.includes(`${family}_count{name="mail.send"} 3`));
    assert.ok(lines.includes(`${family}_count{name="reports/monthly"} 1`));
    assert.ok(
      lines.includes('taskflow_job_outcomes_total{name="mail.send",outcome="succeeded"} 3'),
    );
    assert.ok(
      lines.includes('taskflow_job_outcomes_total{name="reports/monthly",outcome="failed"} 1'),
    );
    assert.ok(lines.includes('taskflow_queue_wait_seconds_bucket{queue="mail",le="0.1"} 0'));
    assert.ok(lines.includes('taskflow_queue_wait_seconds_bucket{queue="mail",le="0.25"} 3'));
    assert.ok(lines.includes('taskflow_queue_wait_seconds_sum{queue="mail"} 0.6'));
    assert.ok(lines.includes('taskflow_queue_wait_seconds_count{queue="default"} 1'));
    assert.ok(
      lines.includes('taskflow_server_jobs_in_flight{server="srv-1",hostname="h\\"1\\\\"} 2'),
    );
    assert.ok(lines.includes('taskflow_server_concurrency{server="srv-1",hostname="h\\"1\\\\"} 8'));
    assert.ok(lines.includes('taskflow_jobs{queue="mail",state="Succeeded"} 3'));
  } finally {
    a.close();
    await a.tf.close();
  }
});
