/**
 * @module
 * A job's stored `traceparent` is read back (to open its attempts' spans, or to join its trace)
 * only when it is a valid W3C trace context; attempts ended together are each counted.
 */

import assert from "node:assert/strict";
import type { JobRecord } from "../lib/job.ts";
import { METRIC_NAMES } from "../lib/telemetry/metrics.ts";
import { parseTraceparent } from "../lib/telemetry/trace.ts";
import { type AttemptOutcome, observeAttempt } from "../lib/worker/observe.ts";
import { installSdk } from "./otel_helpers.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

Deno.test("a stored traceparent is read back only when it is a valid W3C context", () => {
  const sc = parseTraceparent(`00-${TRACE}-${SPAN}-01`, "vendor=a");
  assert.equal(sc?.traceId, TRACE);
  assert.equal(sc?.spanId, SPAN);
  assert.equal(sc?.traceFlags, 1);
  assert.equal(sc?.isRemote, true);
  assert.equal(sc?.traceState?.get("vendor"), "a");
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags, 0);
  for (
    const bad of [
      `ff-${TRACE}-${SPAN}-01`, // a version that is never valid
      `00-${"0".repeat(32)}-${SPAN}-01`, // all-zero trace id
      `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero span id
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper-case hex
      `00-${TRACE}-${SPAN}`,
      "",
    ]
  ) assert.equal(parseTraceparent(bad), undefined, bad);
});

Deno.test("attempts ended in one turn are each counted, by job name and outcome", async () => {
  const sdk = installSdk();
  try {
    const record = (id: string, name: string) =>
      ({ id, name, queue: "default", attempt: 1, state: "Processing", stateAt: 0 }) as JobRecord;
    const how = { link: "parent" as const, serverId: "w1" };
    const ends: [string, string, AttemptOutcome][] = [
      ["a", "mail", "succeeded"],
      ["b", "mail", "succeeded"],
      ["c", "mail", "failed"],
      ["d", "report", "succeeded"],
    ];
    const observed = ends.map(([id, name]) => observeAttempt(record(id, name), undefined, how));
    ends.forEach(([, , outcome], i) => observed[i].end({ outcome, durationMs: 1 }));
    await Promise.resolve(); // the turn's counts are added once it ends
    const counted = (await sdk.points(METRIC_NAMES.outcomes)).map((p) =>
      `${p.attributes["taskflow.job.name"]} ${p.attributes["taskflow.job.outcome"]} ${p.value}`
    ).sort();
    assert.deepEqual(counted, ["mail failed 1", "mail succeeded 2", "report succeeded 1"]);
    assert.equal(sdk.spans().length, 4);
  } finally {
    await sdk.uninstall();
  }
});
