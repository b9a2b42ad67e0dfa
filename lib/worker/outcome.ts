/**
 * @module
 * What happens to a job after its handler settles: Succeeded with its result, a retry
 * (Scheduled with the attempt recorded), a snooze (Scheduled, the attempt given back), or
 * Failed. Pure decisions, no I/O.
 */

import {
  ArgsNotSerializableError,
  PayloadTooLargeError,
  SnoozeError,
  TaskFlowError,
} from "../../storage/errors.ts";
import type { ErrorInfo, NewEvent } from "../events.ts";
import { DEFAULT_ATTEMPTS, type JobDefinition, type JobRecord } from "../job.ts";
import { checkSize, toJson } from "../payload.ts";
import { retryDelay } from "./retry.ts";

/** Longest error message and stack kept with a job (a KV value holds at most 64 KiB). */
export const MAX_MESSAGE = 2_000;
export const MAX_STACK = 6_000;

/** How the handler ended. */
export type Settled =
  | { ok: true; value: unknown }
  | { ok: false; error: unknown; retry: boolean };

/** Facts the decision needs besides the job and its definition. */
export interface OutcomeContext {
  now: number;
  durationMs: number;
  resultLimit: number;
  random: () => number;
}

/** Converts anything thrown into the stored error summary. */
export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: error.name, message: clip(error.message, MAX_MESSAGE) };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") info.code = code;
    if (error.stack) info.stack = clip(error.stack, MAX_STACK);
    return info;
  }
  let text: string;
  try {
    text = typeof error === "string" ? error : JSON.stringify(error) ?? String(error);
  } catch {
    text = String(error);
  }
  return { name: "NonErrorThrown", message: clip(text, MAX_MESSAGE) };
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** Attempts allowed for `record`: its own option, else its definition's, else 10. */
export function maxAttempts(record: JobRecord, definition?: JobDefinition): number {
  return record.options.attempts ?? definition?.defaults.attempts ?? DEFAULT_ATTEMPTS;
}

/** The events that close the attempt of `record` that ended as `settled`. */
export function outcomeEvents(
  record: JobRecord,
  definition: JobDefinition | undefined,
  settled: Settled,
  context: OutcomeContext,
): NewEvent[] {
  const { now: at, durationMs } = context;
  if (settled.ok) {
    let result;
    try {
      result = settled.value === undefined ? undefined : toJson(settled.value, "result");
      if (result !== undefined) checkSize("result", result, context.resultLimit);
    } catch (error) {
      if (!(error instanceof ArgsNotSerializableError || error instanceof PayloadTooLargeError)) {
        throw error;
      }
      // The handler's work is done; running it again would repeat its side effects.
      return [{
        type: "state",
        at,
        state: "Failed",
        reason: `the handler's return value cannot be stored: ${error.message}`,
        data: { error: errorInfo(error), durationMs },
      }];
    }
    const data = result === undefined ? { durationMs } : { result, durationMs };
    return [{ type: "state", at, state: "Succeeded", data }];
  }
  const snooze = snoozeMs(settled.error);
  if (snooze !== undefined) {
    return [{
      type: "state",
      at,
      state: "Scheduled",
      reason: `snoozed for ${formatMs(snooze)} by the handler`,
      data: { runAt: at + snooze, snoozed: true, durationMs },
    }];
  }
  const error = errorInfo(settled.error);
  const attempts = maxAttempts(record, definition);
  const discarded = settled.error instanceof TaskFlowError &&
    settled.error.code === "JOB_DISCARDED";
  if (!settled.retry || discarded || record.attempt >= attempts) {
    const why = discarded
      ? "discarded by the handler"
      : !settled.retry
      ? "not retryable"
      : `attempt ${record.attempt} of ${attempts} failed`;
    return [{
      type: "state",
      at,
      state: "Failed",
      reason: `${why}: ${error.message}`,
      data: { error, durationMs },
    }];
  }
  const backoff = record.options.backoff ?? definition?.defaults.backoff;
  const delay = Math.round(retryDelay(backoff, record.attempt, settled.error, context.random));
  return [{
    type: "state",
    at,
    state: "Scheduled",
    reason: `attempt ${record.attempt} of ${attempts} failed, retry in ${
      formatMs(delay)
    }: ${error.message}`,
    data: { runAt: at + delay, retryOf: record.attempt, error, durationMs },
  }];
}

/** The ms of a snooze (a {@link SnoozeError}, also one rebuilt from a Web Worker), else undefined. */
function snoozeMs(error: unknown): number | undefined {
  if (error instanceof SnoozeError) return Math.round(error.ms);
  if (!(error instanceof TaskFlowError) || error.code !== "JOB_SNOOZED") return undefined;
  const ms = error.details.ms;
  return typeof ms === "number" && ms > 0 ? Math.round(ms) : undefined;
}

function formatMs(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
