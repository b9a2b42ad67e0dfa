/**
 * @module
 * `waitFor`: resolves with a job's final record, woken by the storage's event feed (this
 * process's appends at once, other processes' through the backend's wake-ups); a slow poll
 * covers storages without cross-process wake-ups.
 */

import type { Storage } from "../../storage/storage.ts";
import { InvalidOptionError, JobNotFoundError } from "../../storage/errors.ts";
import { JobDeletedError, JobFailedError, WaitTimeoutError } from "../../storage/event_errors.ts";
import { checkJobId, type JobRecord } from "../job.ts";
import { MAX_TIMER_MS, readOptions } from "../options.ts";

/** Options of `waitFor`. */
export interface WaitOptions {
  /** Give up after this many ms with a `WaitTimeoutError` (default: wait as long as it takes). */
  timeoutMs?: number;
  /** Stop waiting when aborted; the wait rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The fallback poll, for wake-ups a backend cannot deliver (another process on KV Connect). */
export const WAIT_POLL_MS = 1_000;

/** Reads and checks the options of `waitFor`. */
function readWaitOptions(options: unknown): WaitOptions {
  const read = readOptions(options, { call: "waitFor", allowed: ["timeoutMs", "signal"] });
  const { timeoutMs, signal } = read;
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === "number" && timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)
  ) {
    throw new InvalidOptionError("waitFor timeoutMs", timeoutMs, `must be 0 to ${MAX_TIMER_MS} ms`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidOptionError("waitFor signal", signal, "must be an AbortSignal");
  }
  return read as WaitOptions;
}

/** The final record of `record`'s job, or the error `waitFor` throws for it; null if not final. */
function settle(record: JobRecord): JobRecord | null {
  if (record.state === "Succeeded") return record;
  if (record.state === "Failed") throw new JobFailedError(record);
  if (record.state === "Deleted") throw new JobDeletedError(record);
  return null;
}

/**
 * Waits until job `id` is final: resolves with its Succeeded record; rejects with
 * `JobFailedError` (Failed), `JobDeletedError` (Deleted), `WaitTimeoutError`, the signal's
 * reason when aborted, or `JobNotFoundError` when no such job exists.
 */
export async function waitFor(
  storage: Storage,
  id: string,
  options: WaitOptions = {},
): Promise<JobRecord> {
  checkJobId(id);
  const { timeoutMs, signal } = readWaitOptions(options);
  signal?.throwIfAborted();
  let dirty = false;
  let wake = () => {};
  const onAppend = (ids?: readonly string[]) => {
    if (ids && !ids.includes(id)) return;
    dirty = true;
    wake();
  };
  const stops = [
    storage.feed?.listen(onAppend) ?? storage.notifier?.listen(() => onAppend()),
  ];
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  const abort = () => wake();
  signal?.addEventListener("abort", abort);
  try {
    for (;;) {
      dirty = false;
      const record = await storage.get(id);
      if (!record) throw new JobNotFoundError(id);
      const final = settle(record);
      if (final) return final;
      signal?.throwIfAborted();
      const left = deadline - performance.now();
      if (left <= 0) throw new WaitTimeoutError(id, timeoutMs!, record.state);
      if (dirty) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, WAIT_POLL_MS));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = () => {};
    }
  } finally {
    signal?.removeEventListener("abort", abort);
    for (const stop of stops) stop?.();
  }
}
