/**
 * @module
 * Typed errors of the event API: waiting for a job (`waitFor`), reading the feed (`watch`) and
 * a handler's own atomic writes (`ctx.atomic`).
 */

import { TaskFlowError } from "./errors.ts";
import type { ErrorInfo } from "../lib/events.ts";
import type { JobRecord } from "../lib/job.ts";

/** `waitFor`: the job ended Failed; `record` is its final record, `error` what failed. */
export class JobFailedError extends TaskFlowError {
  /** The job's final record. */
  readonly record: JobRecord;
  /** The error of its last attempt, when one was recorded. */
  readonly error?: ErrorInfo;
  /** Builds the error from the Failed job's record. */
  constructor(record: JobRecord) {
    const why = record.error?.message ?? record.reason ?? "no error recorded";
    super("JOB_FAILED", `job ${JSON.stringify(record.id)} failed: ${why}`, {
      id: record.id,
      error: record.error,
    });
    this.record = record;
    this.error = record.error;
  }
}

/** `waitFor`: the job was deleted; `record` is its final record. */
export class JobDeletedError extends TaskFlowError {
  /** The job's final record. */
  readonly record: JobRecord;
  /** Builds the error from the Deleted job's record. */
  constructor(record: JobRecord) {
    super(
      "JOB_DELETED",
      `job ${JSON.stringify(record.id)} was deleted${record.reason ? `: ${record.reason}` : ""}`,
      { id: record.id, reason: record.reason },
    );
    this.record = record;
  }
}

/** `waitFor`: the job was not final within `timeoutMs`. */
export class WaitTimeoutError extends TaskFlowError {
  /** Builds the error for job `id`, still in `state` after `timeoutMs`. */
  constructor(id: string, timeoutMs: number, state: string) {
    super(
      "WAIT_TIMEOUT",
      `job ${JSON.stringify(id)} was still ${state} after ${timeoutMs} ms`,
      { id, timeoutMs, state },
    );
  }
}

/**
 * `watch`: the cursor points before the feed's window (its entries were dropped), so resuming
 * from it would skip events. Start again from the job records, or from `"start"`.
 */
export class CursorExpiredError extends TaskFlowError {
  /** Builds the error for `cursor`, naming the oldest position still kept. */
  constructor(cursor: string, oldest: string) {
    super(
      "CURSOR_EXPIRED",
      `feed cursor ${JSON.stringify(cursor)} is older than the feed's window ` +
        `(oldest kept: ${JSON.stringify(oldest)}); events after it were dropped`,
      { cursor, oldest },
    );
  }
}

/** The backend cannot do what was asked (e.g. `ctx.atomic` off Deno KV). */
export class UnsupportedError extends TaskFlowError {
  /** Builds the error for `what`, on the storage at `address`. */
  constructor(what: string, address: string, hint: string) {
    super("UNSUPPORTED", `${what} is not supported on ${address}: ${hint}`, { what, address });
  }
}

/**
 * A handler's `ctx.atomic` checks failed when its outcome was committed: nothing of it was
 * written and the attempt counts as failed (it is retried like any other failure).
 */
export class AtomicCheckError extends TaskFlowError {
  /** Builds the error for job `id`. */
  constructor(id: string) {
    super(
      "ATOMIC_CHECK_FAILED",
      `job ${JSON.stringify(id)}: a check added by ctx.atomic failed; its writes and the ` +
        `outcome were not committed`,
      { id },
    );
  }
}
