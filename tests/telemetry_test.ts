/**
 * @module
 * A job's stored `traceparent` is read back (to open its attempts' spans, or to join its trace)
 * only when it is a valid W3C trace context.
 */

import assert from "node:assert/strict";
import { parseTraceparent } from "../lib/telemetry/trace.ts";

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
