/**
 * @module
 * The context a handler receives (`ctx`): its job's id, name, attempt and signal, and the
 * progress, log and atomic writes it makes as the job's holder.
 */

import { InvalidOptionError, SnoozeError } from "../../storage/errors.ts";
import { UnsupportedError } from "../../storage/event_errors.ts";
import type { NewEvent } from "../events.ts";
import type { DependencyOutcome, JobContext, JobRecord } from "../job.ts";
import { recordAtomic } from "./atomic.ts";
import type { AtomicExtra } from "../../storage/feed.ts";

/** Longest log line kept; longer ones are cut. */
export const MAX_LOG_LINE = 4_000;

/** What a handler's context writes for: the job held, its signal, its pending writes. */
export interface HeldJob {
  /** The job's latest record. */
  record: JobRecord;
  /** Aborts the handler's signal. */
  controller: AbortController;
  /** Progress and log writes, in order. */
  chain?: Promise<unknown>;
  /** The handler's `ctx.atomic` writes. */
  atomic?: AtomicExtra[];
}

/** What a handler's context reaches through its worker. */
export interface ContextHost<J extends HeldJob> {
  now(): number;
  /** The outcomes of a job's dependencies (`ctx.dependencies()`). */
  dependencies(record: JobRecord): Promise<Record<string, DependencyOutcome>>;
  /** True when the storage commits a handler's `ctx.atomic` writes (Deno KV). */
  atomicExtras: boolean;
  /** The storage's address, for messages. */
  address: string;
  /** Writes events as the job's holder; false (and the job marked lost) when fenced. */
  appendOwn(job: J, events: NewEvent[]): Promise<boolean>;
}

/** The context of `job`'s handler; its writes are chained in order on `job.chain`. */
export function handlerContext<J extends HeldJob>(worker: ContextHost<J>, job: J): JobContext {
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
    snooze(ms: number): never {
      throw new SnoozeError(ms);
    },
    dependencies: () => worker.dependencies(job.record),
    atomic(fn: (op: Deno.AtomicOperation) => void): void {
      if (!worker.atomicExtras) {
        const hint = "only Deno KV commits a handler's writes with its outcome";
        throw new UnsupportedError("ctx.atomic", worker.address, hint);
      }
      (job.atomic ??= []).push(recordAtomic(fn));
    },
  };
}
