/**
 * @module
 * What a worker reports of each attempt through OpenTelemetry: its CONSUMER span, the queue wait
 * before it, its duration and outcome.
 */

import {
  type Attributes,
  type Context,
  type Counter,
  createNoopMeter,
} from "npm:@opentelemetry/api@1.10.0";
import type { JobRecord } from "../job.ts";
import { instruments, outcomeAttributes, queueAttributes } from "../telemetry/metrics.ts";
import { endAttempt, startAttempt, type TraceLink } from "../telemetry/trace.ts";

/** How an attempt ended, as spans, metrics and logs name it. */
export type AttemptOutcome =
  | "succeeded"
  | "retried"
  | "failed"
  | "discarded"
  | "snoozed"
  | "expired"
  | "fenced"
  | "requeued"
  | "lost";

/** The end of an attempt: its outcome, its error, how long the handler ran. */
export interface AttemptEnd {
  /** How it ended. */
  outcome: AttemptOutcome;
  /** The error of a failed, retried or discarded attempt. */
  error?: unknown;
  /** Ms the handler ran (absent when it never started). */
  durationMs?: number;
}

/** One attempt being observed: the context to run it in, and the call that ends it. */
export interface ObservedAttempt {
  /** The context with the attempt's span active (undefined while no SDK is registered). */
  context?: Context;
  /** Ends the span and records the duration and outcome. */
  end(end: AttemptEnd): void;
}

/**
 * Starts observing the attempt of `record` just claimed; `before` is the record the claim
 * replaced (when it became due: its due time if Scheduled, else when it entered its state).
 */
export function observeAttempt(
  record: JobRecord,
  before: JobRecord | undefined,
  how: { link: TraceLink; serverId: string },
): ObservedAttempt {
  const meters = instruments();
  const dueAt = before ? before.runAt ?? before.stateAt : undefined;
  if (dueAt !== undefined && record.startedAt !== undefined) {
    const wait = Math.max(0, record.startedAt - dueAt) / 1000;
    meters.wait.record(wait, queueAttributes(record.queue));
  }
  const started = startAttempt(record, how);
  return {
    context: started?.context,
    end({ outcome, error, durationMs }) {
      const attributes = outcomeAttributes(record.name, outcome);
      countOutcome(meters.outcomes, attributes);
      if (durationMs !== undefined) meters.duration.record(durationMs / 1000, attributes);
      if (started) endAttempt(started.span, outcome, error);
    },
  };
}

// Outcomes ended together (the jobs of one outcome write settle in one turn) are counted by one
// add per job name and outcome: the SDK hashes the attribute set on every call.
let pending: { counter: Counter; counts: Map<Attributes, number> } | undefined;

// The API's no-op counter (no SDK registered): nothing to gather for it.
const NO_SDK = createNoopMeter().createCounter("taskflow.no_sdk");

function countOutcome(counter: Counter, attributes: Attributes): void {
  if (counter === NO_SDK) return;
  if (pending?.counter !== counter) {
    flushOutcomes();
    pending = { counter, counts: new Map() };
    queueMicrotask(flushOutcomes);
  }
  pending.counts.set(attributes, (pending.counts.get(attributes) ?? 0) + 1);
}

function flushOutcomes(): void {
  if (pending === undefined) return;
  const { counter, counts } = pending;
  pending = undefined;
  for (const [attributes, count] of counts) counter.add(count, attributes);
}

/** The outcome a written attempt of `record` (as written) had. */
export function outcomeOf(record: JobRecord, error: unknown): AttemptOutcome {
  switch (record.state) {
    case "Succeeded":
      return "succeeded";
    case "Failed":
      return (error as { code?: unknown })?.code === "JOB_DISCARDED" ? "discarded" : "failed";
    case "Scheduled":
      return record.retryOf !== undefined ? "retried" : "snoozed";
    case "Deleted":
      return "expired";
    default:
      return "requeued";
  }
}
