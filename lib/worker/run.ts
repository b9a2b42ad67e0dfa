/**
 * @module
 * Running one claimed job: its handler context, its timeout, and committing its outcome.
 */

import {
  AttemptsExhaustedError,
  InvalidOptionError,
  JobTimeoutError,
} from "../../storage/errors.ts";
import type { JobContext, JobDefinition, JobRecord } from "../job.ts";
import { finishedMember } from "../batch.ts";
import { maxAttempts, outcomeEvents, type Settled } from "./outcome.ts";
import type { Pool } from "./pool.ts";
import type { NewEvent } from "../events.ts";
import type { WorkerLogger, WorkerStats } from "./worker.ts";

/** Longest log line kept; longer ones are cut. */
export const MAX_LOG_LINE = 4_000;

/** A job a worker holds: its latest record (as this worker last wrote it) and its signal. */
export interface Running {
  record: JobRecord;
  controller: AbortController;
  /** The job changed under this worker: nothing more may be written for it. */
  lost: boolean;
  /** The worker is shutting down: a failure requeues instead of counting as an attempt. */
  shuttingDown: boolean;
  /** Progress and log writes, in order; the outcome waits for them. */
  chain?: Promise<unknown>;
  /** Gives up waiting for a handler that ignores its abort signal (shutdown). */
  abandon?: () => void;
}

/** What a running job may do through the worker that claimed it. */
export interface RunHost {
  now(): number;
  random(): number;
  log: WorkerLogger;
  stats: WorkerStats;
  resultLimit(): number;
  /** Writes events as the job's holder; false (and the job marked lost) when fenced. */
  appendOwn(job: Running, events: NewEvent[]): Promise<boolean>;
  requeueShutdown(job: Running): Promise<void>;
  /** The job is settled and written: forget it. */
  done(job: Running): void;
  /** A batch member ended: release the batch's continuation if it was the last. */
  settleBatch(batchId: string): void;
}

/**
 * Runs `job` in a pool slot (taken synchronously, before the first await) and commits its
 * outcome. The slot is held until the handler settles, even after a timeout.
 */
export async function runJob(
  worker: RunHost,
  pool: Pool,
  job: Running,
  definition: JobDefinition | undefined,
  unknown: () => Error,
): Promise<void> {
  const started = performance.now();
  const settled = await new Promise<Settled>((resolve) => {
    job.abandon = () =>
      resolve({ ok: false, error: new Error("abandoned at shutdown"), retry: false });
    void pool.run(async () => {
      const timeoutMs = job.record.options.timeoutMs ?? definition?.defaults.timeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const error = new JobTimeoutError(timeoutMs);
          job.controller.abort(error);
          resolve({ ok: false, error, retry: true });
        }, timeoutMs);
      }
      resolve(await invoke(worker, job, definition, unknown));
      clearTimeout(timer);
    });
  });
  if (job.chain) await job.chain;
  try {
    if (job.lost && job.shuttingDown) return; // requeued by the shutdown
    if (job.lost) {
      worker.stats.fenced++;
      worker.log("warn", `job ${job.record.id}: outcome discarded, the job changed while it ran`);
      return;
    }
    if (job.shuttingDown && !settled.ok) return await worker.requeueShutdown(job);
    const events = outcomeEvents(job.record, definition, settled, {
      now: worker.now(),
      durationMs: Math.round(performance.now() - started),
      resultLimit: worker.resultLimit(),
      random: worker.random,
    });
    if (!await worker.appendOwn(job, events)) {
      worker.stats.fenced++;
      return;
    }
    const state = job.record.state;
    if (finishedMember(job.record)) worker.settleBatch(job.record.batchId!);
    if (state === "Succeeded") worker.stats.succeeded++;
    else if (state === "Failed") worker.stats.failed++;
    else if (state === "Scheduled") worker.stats.retried++;
  } finally {
    worker.done(job);
  }
}

async function invoke(
  worker: RunHost,
  job: Running,
  definition: JobDefinition | undefined,
  unknown: () => Error,
): Promise<Settled> {
  const { record } = job;
  if (!definition) return { ok: false, error: unknown(), retry: false };
  const allowed = maxAttempts(record, definition);
  if (record.attempt > allowed) {
    return { ok: false, error: new AttemptsExhaustedError(record.attempt, allowed), retry: false };
  }
  try {
    const value = await definition.handler(record.args, context(worker, job));
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error, retry: true };
  }
}

function context(worker: RunHost, job: Running): JobContext {
  const write = (event: NewEvent): Promise<void> => {
    const next = (job.chain ?? Promise.resolve()).then(() => worker.appendOwn(job, [event]));
    job.chain = next.catch(() => {});
    return next.then(() => {});
  };
  return {
    jobId: job.record.id,
    name: job.record.name,
    attempt: job.record.attempt,
    signal: job.controller.signal,
    progress(value: number): Promise<void> {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return Promise.reject(new InvalidOptionError("progress", value, "must be a finite number"));
      }
      return write({ type: "progress", at: worker.now(), value });
    },
    log(message: string): Promise<void> {
      let text = String(message);
      if (text.length > MAX_LOG_LINE) text = `${text.slice(0, MAX_LOG_LINE)}… (cut)`;
      if (!text.isWellFormed()) text = text.toWellFormed();
      return write({ type: "log", at: worker.now(), message: text });
    },
  };
}
