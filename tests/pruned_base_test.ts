/**
 * @module
 * The Redis pruned base (storage/redis/pruned_base.ts), summed from collapsed texts read in
 * place, counts exactly what `historyOf` counts from the decoded logs, shortcut or not.
 */

import assert from "node:assert/strict";
import type { JobEvent } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { historyOf, keptBuckets } from "../storage/effects.ts";
import { CorruptRecordError } from "../storage/errors.ts";
import { decodeCollapsed, encodeCollapsed } from "../storage/log_codec.ts";
import { DURATION_FIELDS } from "../storage/redis/append_call.ts";
import { keysOf } from "../storage/redis/keys.ts";
import { PrunedBase } from "../storage/redis/pruned_base.ts";
import { keptStats } from "../storage/stat_hits.ts";
import { RESOLUTIONS } from "../storage/storage.ts";

const T = 1_796_619_237_419;
const NOW = T + 3_600_000;
const k = keysOf("t:");

/** A job created, run, retried once and succeeded, in batch `b1`. */
function log(at = T): JobEvent[] {
  const events = [
    { type: "created", at, name: "n", queue: "q", args: { a: "\n" }, priority: 0, options: {} },
    { type: "state", at, state: "Enqueued" },
    { type: "state", at: at + 5, state: "Processing", data: { serverId: "s", leaseUntil: 1 } },
    {
      type: "state",
      at: at + 7,
      state: "Scheduled",
      data: { runAt: at + 100, retryOf: 1, error: { name: "E", message: "x" }, durationMs: 2 },
    },
    { type: "state", at: at + 100, state: "Enqueued" },
    { type: "log", at: at + 101, message: 'durationMs \\ "' },
    { type: "state", at: at + 102, state: "Processing", data: { serverId: "s", leaseUntil: 1 } },
    { type: "state", at: at + 110, state: "Succeeded", data: { durationMs: 8 } },
  ];
  return events.map((event, i) => ({ ...event, seq: i + 1 })) as unknown as JobEvent[];
}

/** Lines the in-place reading must hand to the whole decoder, or skip, as `historyOf` counts them. */
const ODD = [
  { type: "state", at: T + 200, state: "Failed", data: 0 },
  { type: "state", at: T + 201, state: ".created" },
  { type: "state", at: T + 202, state: "Deleted", reason: "r", data: { durationMs: 3 } },
  { type: "state", at: T + 203, state: "Succeeded", data: { note: '"durationMs"' } },
  { type: "state", at: T + 204, state: "Succeeded", data: 7 },
  { type: "state", at: T + 205, state: "Failed", data: { durationMs: 1.5, result: "}]" } },
  { type: "state", at: T + 206.5, state: "Failed", data: { durationMs: 1.5 }, seq: 40 },
  { type: "state", at: T + 207, state: "Scheduled", data: { durationMs: 1e3 } },
  { type: "state", at: T - 30 * 86_400_000, state: "Succeeded", data: { durationMs: 99 } },
  { type: "created", at: T + 208 },
];

/** The base's increments, by "key field", zeros left out. */
function sums(base: PrunedBase): Map<string, number> {
  const out = new Map<string, number>();
  base.write(k, {
    count: (key, field, n) => {
      if (n) out.set(`${key} ${field}`, (out.get(`${key} ${field}`) ?? 0) + n);
    },
  });
  return out;
}

/** What `historyOf` counts for the same jobs, as the same increments. */
function expected(jobs: Array<[JobRecord, JobEvent[]]>): Map<string, number> {
  const out = new Map<string, number>();
  const add = (key: string, field: string, n: number) => {
    if (n) out.set(`${key} ${field}`, (out.get(`${key} ${field}`) ?? 0) + n);
  };
  for (const [record, events] of jobs) {
    const history = historyOf(record, events);
    for (const total of history.totals) add(k.prunedTotals, total, 1);
    for (const { bucket, ms } of history.durations) {
      add(k.prunedTotals, DURATION_FIELDS[bucket], 1);
      add(k.prunedTotals, "duration_ms", Math.max(0, Math.round(ms)));
    }
    for (const hit of keptBuckets(history.buckets, NOW)) {
      add(k.prunedBucket(hit.resolution, hit.at), hit.kind, 1);
    }
    for (const hit of keptStats(history.stats, NOW)) {
      const key = k.stat(hit.resolution, hit.at).slice(k.prefix.length);
      add(`${k.prefix}pruned:${key}`, hit.field, hit.n);
    }
    for (const { kind, delta } of history.batch?.deltas ?? []) {
      add(k.prunedBatchCount(history.batch!.id), kind, delta);
    }
  }
  return out;
}

Deno.test("pruned base: summed in place, it counts what historyOf counts from the decoded logs", () => {
  const plain = log();
  const record = { ...fold("j1", plain), batchId: "b1" };
  const odd = [...plain, ...ODD.map((e, i) => ({ seq: plain.length + i + 1, ...e }))];
  const cases: Array<[JobRecord, JobEvent[]]> = [
    [record, plain],
    [{ ...record, id: "j2", flowId: "f", batchId: undefined }, log(T + 60_000)],
    [{ ...record, id: "j3", args: "changed" }, plain],
    [{ ...record, id: "j4", state: "Failed" }, odd as unknown as JobEvent[]],
    [{ ...record, id: "j5", batchId: undefined }, plain.slice(0, 1)],
  ];
  const base = new PrunedBase(NOW);
  const decoded: Array<[JobRecord, JobEvent[]]> = [];
  for (const [job, events] of cases) {
    const text = encodeCollapsed(job, events);
    base.add(job, text);
    // The stored text is what counts, as rebuild would read it.
    decoded.push([job, decodeCollapsed(job.id, text).events]);
  }
  const found = sums(base);
  assert.deepEqual(found, expected(decoded));
  // Two jobs in the minute bucket of T, one in the next minute; the old bucket is past its keep.
  const minute = Math.floor((T + 110) / 60_000) * 60_000;
  assert.ok((found.get(`${k.prunedBucket("minute", minute)} succeeded`) ?? 0) >= 2);
  assert.ok(
    ![...found.keys()].some((key) =>
      key.includes(String(Math.floor((T - 30 * 86_400_000) / 3_600_000) * 3_600_000))
    ),
  );
  assert.ok(RESOLUTIONS.minute.keepMs < 30 * 86_400_000);
});

/** Logs whose every line is read in place (their statistics are counted without `statHits`). */
function plainLogs(at = T): JobEvent[][] {
  const created = {
    type: "created",
    at,
    name: "n",
    queue: "q",
    args: null,
    priority: 0,
    options: {},
  };
  const run = (from: number, end: Record<string, unknown>) => [
    { type: "state", at: from, state: "Enqueued" },
    { type: "state", at: from + 40, state: "Processing", data: { serverId: "s", leaseUntil: 1 } },
    { type: "state", at: from + 52, ...end },
  ];
  const logs = [
    [created, ...run(at, { state: "Succeeded", data: { durationMs: 12 } })],
    [
      created,
      ...run(at, { state: "Scheduled", data: { durationMs: 3 } }),
      ...run(at + 900_000, { state: "Failed", data: { durationMs: 1.5 } }),
    ],
    [created, ...run(at - 20 * 86_400_000, { state: "Succeeded" })],
    [
      created,
      { type: "state", at: at + 7_000, state: "Enqueued" },
      { type: "state", at: at + 9_000, state: "Deleted" },
    ],
  ];
  return logs.map((events) =>
    events.map((event, i) => ({ ...event, seq: i + 1 }))
  ) as unknown as JobEvent[][];
}

Deno.test("pruned base: jobs read wholly in place count the statistics historyOf counts", () => {
  const base = new PrunedBase(NOW);
  const decoded: Array<[JobRecord, JobEvent[]]> = [];
  plainLogs().forEach((events, i) => {
    const job = { ...fold(`p${i}`, events), queue: i % 2 ? "q" : "other" };
    const text = encodeCollapsed(job, events);
    base.add(job, text);
    decoded.push([job, decodeCollapsed(job.id, text).events]);
  });
  const found = sums(base);
  assert.deepEqual(found, expected(decoded));
  // The wait and attempt series are both there, in buckets and totals.
  const fields = [...found.keys()].join("\n");
  for (
    const field of [
      "wait|q|",
      "wait|other|",
      "job|n|succeeded:",
      "job|n|snoozed:",
      "job|n|failed:",
      "job|n|ms",
    ]
  ) {
    assert.ok(fields.includes(field), field);
  }
});

Deno.test("pruned base: a line that is no event is a CorruptRecordError naming the job", () => {
  const record = fold("j9", log());
  for (const text of ['{}\n=\n[1,"Succeeded",{"durationMs":oops}]', "{}\n=\n[1,2]", "{}\n{oops"]) {
    assert.throws(() => new PrunedBase(NOW).add(record, text), (error: unknown) => {
      assert.ok(error instanceof CorruptRecordError);
      assert.match(error.message, /job "j9" is corrupt/);
      return true;
    });
  }
});
