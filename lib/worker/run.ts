/**
 * @module
 * Running claimed jobs: the jobs a worker holds, each one's handler context and timeout, and
 * committing its outcome.
 */

import type { Commit, Storage } from "../../storage/storage.ts";
import { AttemptsExhaustedError, JobTimeoutError, UnknownJobError } from "../../storage/errors.ts";
import { appendCommit } from "../changes.ts";
import type { DependencyOutcome, JobDefinition, JobRecord } from "../job.ts";
import { readDependencies } from "../workflows/results.ts";
import { finishedMember } from "../batch.ts";
import { maxAttempts, outcomeEvents, type Settled } from "./outcome.ts";
import type { Pool } from "./pool.ts";
import type { NewEvent } from "../events.ts";
import type { Json } from "../payload.ts";
import type { WorkerLogger, WorkerStats } from "./config.ts";
import { message, type WorkerContext } from "./context.ts";
import { MAX_TIMER_MS } from "../options.ts";
import { EXPIRED_REASON, isExpired } from "../expiry.ts";
import { IsolatePool } from "./isolate/pool.ts";
import type { AtomicExtra } from "../../storage/feed.ts";
import { AtomicCheckError } from "../../storage/event_errors.ts";
import type { Context } from "npm:@opentelemetry/api@1.10.0";
import { within } from "../telemetry/trace.ts";
import { type AttemptEnd, observeAttempt, outcomeOf } from "./observe.ts";
import { reportInFlight } from "../telemetry/metrics.ts";
import { handlerContext } from "./handler_context.ts";
import { type AttemptContext, type AttemptMiddleware, runChain } from "../middleware/mod.ts";

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
  /** The handler's `ctx.atomic` writes, committed with Succeeded (Deno KV). */
  atomic?: AtomicExtra[];
  /** The attempt's trace context, when traced: its handler and its log lines run in it. */
  trace?: Context;
  /** Its pool slot frees only once its outcome is written (resolved then): see Runner.start. */
  written?: PromiseWithResolvers<void>;
  /** It has taken a pool slot (a job claimed ahead waits for one). */
  begun?: boolean;
}

/** Marks `job` lost: nothing more is written for it, and its handler's signal aborts. */
export function lose(job: Running, reason: string): void {
  if (job.lost) return;
  job.lost = true;
  job.controller.abort(new Error(reason));
}

/** Where the writes of held jobs go (the worker's outcome writer). */
export interface JobWrites {
  /** Writes events of a held job; false (and the job marked lost) when fenced. */
  appendOwn(job: Running, events: NewEvent[], sent?: () => void): Promise<boolean>;
  /** Writes one commit with its continuation releases; false when fenced. */
  submit(commit: Commit): Promise<boolean>;
}

/** The jobs a worker holds: starts each claimed one in the pool and forgets it once written. */
export class Runner {
  #ctx: WorkerContext;
  #pool: Pool;
  #writes: JobWrites;
  #running = new Map<string, Running>();
  #finishing = new Set<Promise<void>>();
  #host: RunHost;
  /** Web Workers for isolated jobs, started with the worker when it has any. */
  #isolate?: IsolatePool;
  /** Stops reporting this worker's jobs in flight. */
  #unreport?: () => void;

  /** Runs jobs of `storage` in `pool`; `settleBatch` is told when a batch member ends. */
  constructor(
    ctx: WorkerContext,
    storage: Storage,
    parts: { pool: Pool; writes: JobWrites; settleBatch: (batchId: string) => void },
  ) {
    const { pool, writes, settleBatch } = parts;
    this.#ctx = ctx;
    this.#pool = pool;
    this.#writes = writes;
    const { config } = ctx;
    this.#host = {
      now: () => config.now(),
      random: () => config.random(),
      log: (level, text, fields) => config.log(level, text, fields),
      serverId: config.id,
      middleware: config.middleware,
      stats: ctx.stats,
      resultLimit: () => storage.limits.result,
      dependencies: (record) => readDependencies(storage, record),
      atomicExtras: storage.atomicExtras === true,
      address: storage.address,
      orderedCalls: storage.orderedCalls === true,
      appendOwn: (job, events, sent) => writes.appendOwn(job, events, sent),
      requeueShutdown: (job) => this.requeueShutdown(job),
      done: (job) => {
        this.#running.delete(job.record.id);
        job.written?.resolve();
      },
      settleBatch,
      isolated: (name) => {
        const module = config.isolated.get(name);
        return module === undefined || !this.#isolate ? undefined : { module, pool: this.#isolate };
      },
    };
    if (config.isolated.size > 0) {
      // Web Workers start and import their modules while the worker registers and claims.
      this.#isolate = new IsolatePool(config.isolateWorkers, config.log);
      this.#isolate.warm([...new Set(config.isolated.values())]);
    }
  }

  /** Terminates the Web Workers of isolated jobs (once every job has settled). */
  close(): void {
    this.#unreport?.();
    this.#isolate?.close();
  }

  /** Jobs held now (running, or writing their outcome). */
  get size(): number {
    return this.#running.size;
  }

  /** The held job `id`, if any. */
  get(id: string): Running | undefined {
    return this.#running.get(id);
  }

  /** Ids of the held jobs whose leases are still this worker's. */
  leases(): string[] {
    return [...this.#running.values()].filter((job) => !job.lost).map((job) => job.record.id);
  }

  /**
   * Starts the handler of a job just claimed (a pool slot or a place ahead must be free; in a
   * place ahead it starts when a slot frees); `before` is its record before the claim (for the
   * queue wait metric). `untilWritten`: its slot stays taken until its outcome is written (on
   * an ordered storage: handed to it), not only until its handler settles (a queue's global
   * limit counts the job until then: a claim sent sooner would find it full).
   */
  start(record: JobRecord, before?: JobRecord, options: { untilWritten?: boolean } = {}): void {
    const job: Running = {
      record,
      controller: new AbortController(),
      lost: false,
      shuttingDown: false,
      written: options.untilWritten ? Promise.withResolvers<void>() : undefined,
    };
    this.#running.set(record.id, job);
    this.#unreport ??= reportInFlight(this.#ctx.config.id, () => this.#running.size);
    const { config, stats } = this.#ctx;
    stats.started++;
    const definition = config.definitions.get(record.name);
    const observed = observeAttempt(record, before, {
      link: config.traceLink,
      serverId: config.id,
    });
    job.trace = observed.context;
    const finishing = runJob(
      this.#host,
      this.#pool,
      job,
      definition,
      () => new UnknownJobError(record.name, [...config.definitions.keys()]),
    )
      .then((end) => observed.end(end), (error) => {
        observed.end({ outcome: "lost", error });
        config.log("error", `job ${record.id}: ${message(error)}`, { jobId: record.id });
      })
      .finally(() => {
        this.#finishing.delete(finishing);
        stats.peak = this.#pool.peak;
      });
    this.#finishing.add(finishing);
  }

  /** Shutdown ran out of time: aborts every held job's signal. */
  abortAll(): void {
    for (const job of this.#running.values()) {
      job.shuttingDown = true;
      job.controller.abort(new Error("server shutdown"));
    }
  }

  /** Puts back the jobs claimed ahead that have no slot yet: a stopping worker starts none. */
  async requeueQueued(): Promise<void> {
    this.#pool.dropQueued();
    const waiting = [...this.#running.values()].filter((job) => !job.begun);
    await Promise.all(waiting.map((job) => this.requeueShutdown(job, true)));
  }

  /** Puts every job still held back to Enqueued (see {@link Runner.requeueShutdown}). */
  async requeueAll(): Promise<void> {
    await Promise.all([...this.#running.values()].map((job) => this.requeueShutdown(job)));
  }

  /**
   * Puts a job abandoned by shutdown back to Enqueued (unless it changed meanwhile); one whose
   * handler never started (`unstarted`) gets its attempt back.
   */
  async requeueShutdown(job: Running, unstarted = false): Promise<void> {
    if (job.lost) return;
    job.lost = true;
    job.shuttingDown = true;
    job.abandon?.();
    const events: NewEvent[] = [{
      type: "state",
      at: this.#ctx.config.now(),
      state: "Enqueued",
      reason: "server shutdown",
      ...unstarted ? { data: { unstarted: true } } : {},
    }];
    await this.#writes.submit(appendCommit(job.record, events)).catch((error) => {
      this.#ctx.config.log(
        "warn",
        `job ${job.record.id}: could not requeue on shutdown: ${message(error)}`,
        { jobId: job.record.id },
      );
    });
    this.#running.delete(job.record.id);
  }

  /** Resolves once every started job has settled and written its outcome. */
  async settled(): Promise<void> {
    await Promise.all(this.#finishing);
  }
}

/** What a running job may do through the worker that claimed it. */
interface RunHost {
  now(): number;
  random(): number;
  log: WorkerLogger;
  stats: WorkerStats;
  /** This worker's id. */
  serverId: string;
  /** The attempt middleware, first outermost. */
  middleware: readonly AttemptMiddleware[];
  resultLimit(): number;
  /** The outcomes of a job's dependencies (`ctx.dependencies()`). */
  dependencies(record: JobRecord): Promise<Record<string, DependencyOutcome>>;
  /** True when the storage commits a handler's `ctx.atomic` writes (Deno KV). */
  atomicExtras: boolean;
  /** The storage's address, for messages. */
  address: string;
  /** The storage runs calls in the order they are made: a write handed to it precedes a claim. */
  orderedCalls: boolean;
  /** Writes events as the job's holder; false (and the job marked lost) when fenced. */
  appendOwn(job: Running, events: NewEvent[], sent?: () => void): Promise<boolean>;
  requeueShutdown(job: Running): Promise<void>;
  /** The job is settled and written: forget it. */
  done(job: Running): void;
  /** A batch member ended: release the batch's continuation if it was the last. */
  settleBatch(batchId: string): void;
  /** Where job `name` runs isolated: the module to import and the pool; else undefined. */
  isolated(name: string): { module: string; pool: IsolatePool } | undefined;
}

/**
 * Runs `job` in a pool slot (taken synchronously, before the first await) and commits its
 * outcome. The slot is held until the handler settles, even after a timeout.
 */
async function runJob(
  worker: RunHost,
  pool: Pool,
  job: Running,
  definition: JobDefinition | undefined,
  unknown: () => Error,
): Promise<AttemptEnd> {
  // Claimed after its expiry (a sweep had not deleted it yet): it never runs.
  if (isExpired(job.record.options, job.record.startedAt ?? worker.now())) {
    await expire(worker, job);
    return { outcome: "expired" };
  }
  let started = worker.now();
  const settled = await new Promise<Settled>((resolve) => {
    job.abandon = () =>
      resolve({ ok: false, error: new Error("abandoned at shutdown"), retry: false });
    void pool.run(async () => {
      job.begun = true;
      // Claimed ahead, and lost (deleted, requeued by a stop) before a slot freed: never run.
      if (job.lost) {
        return resolve({ ok: false, error: job.controller.signal.reason, retry: false });
      }
      const timeoutMs = job.record.options.timeoutMs ?? definition?.defaults.timeoutMs;
      let cancel: (() => void) | undefined;
      // The timeout and the duration count from the handler's start: an isolated job may first
      // wait for a free Web Worker.
      const begin = () => {
        started = worker.now();
        if (timeoutMs === undefined) return;
        cancel = startTimer(timeoutMs, () => {
          const error = new JobTimeoutError(timeoutMs);
          job.controller.abort(error);
          resolve({ ok: false, error, retry: true });
        });
      };
      // Only the handler runs in the attempt's context: the outcome's writes are the worker's.
      resolve(await within(job.trace, () => invoke(worker, job, { definition, unknown, begin })));
      cancel?.();
      await job.written?.promise;
    });
  });
  const durationMs = Math.round(worker.now() - started);
  let error = settled.ok ? undefined : settled.error;
  if (job.chain) await job.chain;
  try {
    if (job.lost && job.shuttingDown) return { outcome: "requeued", error, durationMs };
    if (job.lost) {
      worker.stats.fenced++;
      const text = `job ${job.record.id}: outcome discarded, the job changed while it ran`;
      within(job.trace, () => worker.log("warn", text, { jobId: job.record.id }));
      return { outcome: "fenced", error, durationMs };
    }
    if (job.shuttingDown && !settled.ok) {
      await worker.requeueShutdown(job);
      return { outcome: "requeued", error, durationMs };
    }
    const outcome = (settled: Settled) => {
      const now = worker.now();
      return outcomeEvents(job.record, definition, settled, {
        now,
        durationMs: Math.round(now - started),
        resultLimit: worker.resultLimit(),
        random: worker.random,
      });
    };
    let written: boolean;
    // On an ordered storage the next claim may go as soon as this outcome has been sent.
    const sent = job.written && worker.orderedCalls ? () => job.written!.resolve() : undefined;
    try {
      written = await worker.appendOwn(job, outcome(settled), sent);
    } catch (failed) {
      // A check the handler added by ctx.atomic failed: nothing of it was written.
      if (!(failed instanceof AtomicCheckError)) throw failed;
      job.atomic = undefined;
      error = failed;
      written = await worker.appendOwn(job, outcome({ ok: false, error, retry: true }));
    }
    if (!written) {
      worker.stats.fenced++;
      return { outcome: "fenced", error, durationMs };
    }
    const state = job.record.state;
    if (finishedMember(job.record)) worker.settleBatch(job.record.batchId!);
    if (state === "Succeeded") worker.stats.succeeded++;
    else if (state === "Failed") worker.stats.failed++;
    else if (state === "Scheduled" && job.record.retryOf !== undefined) worker.stats.retried++;
    const ended = outcomeOf(job.record, error);
    // A snooze is not a failure: its SnoozeError stays off the span.
    return { outcome: ended, error: ended === "snoozed" ? undefined : error, durationMs };
  } finally {
    worker.done(job);
  }
}

/** Deletes a job claimed after its expiry, without running its handler. */
async function expire(worker: RunHost, job: Running): Promise<void> {
  try {
    const at = worker.now();
    const deleted: NewEvent = { type: "state", at, state: "Deleted", reason: EXPIRED_REASON };
    if (await worker.appendOwn(job, [deleted]) && finishedMember(job.record)) {
      worker.settleBatch(job.record.batchId!);
    }
  } finally {
    worker.done(job);
  }
}

/**
 * Calls `fire` after `ms` (measured on the monotonic clock), for any `ms`: a single
 * `setTimeout` longer than 2^31−1 ms fires at once, so long waits are chained in `chunkMs`
 * steps. Returns the cancel function.
 */
export function startTimer(ms: number, fire: () => void, chunkMs = MAX_TIMER_MS): () => void {
  const end = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const left = end - performance.now();
    if (left <= 0) return fire();
    timer = setTimeout(arm, Math.min(left, chunkMs));
  };
  timer = setTimeout(arm, Math.min(ms, chunkMs));
  return () => clearTimeout(timer);
}

async function invoke(
  worker: RunHost,
  job: Running,
  how: { definition: JobDefinition | undefined; unknown: () => Error; begin: () => void },
): Promise<Settled> {
  const { record } = job;
  const { definition, begin } = how;
  if (!definition) return { ok: false, error: how.unknown(), retry: false };
  const allowed = maxAttempts(record, definition);
  if (record.attempt > allowed) {
    return { ok: false, error: new AttemptsExhaustedError(record.attempt, allowed), retry: false };
  }
  const ctx = handlerContext(worker, job);
  const isolated = worker.isolated(record.name);
  const attempt: AttemptContext = {
    job: record,
    context: ctx,
    args: record.args,
    serverId: worker.serverId,
  };
  // An isolated handler's error that must not be retried (its settled result says so).
  let final: unknown;
  const handler = async (): Promise<unknown> => {
    if (isolated) {
      const { module, pool } = isolated;
      const { id: jobId, name, attempt: n } = record;
      // An isolated handler gets its dependencies' outcomes read before it starts.
      const dependencies = record.dependsOn ? await ctx.dependencies() : undefined;
      const task = {
        module,
        name,
        jobId,
        attempt: n,
        args: attempt.args as Json,
        ...dependencies ? { dependencies } : {},
      };
      const settled = await pool.run(task, { ...ctx, begin });
      if (settled.ok) return settled.value;
      if (!settled.retry) final = settled.error;
      throw settled.error;
    }
    begin();
    return await definition.handler(attempt.args, ctx);
  };
  try {
    const value = worker.middleware.length
      ? await runChain(worker.middleware, attempt, handler)
      : await handler();
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error, retry: final === undefined || error !== final };
  }
}
