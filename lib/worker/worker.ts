/**
 * @module
 * The worker: a supervisor that starts and stops its parts — the claim loop, the runner of
 * claimed jobs, the outcome writer, maintenance and the recurring scheduler — on one config.
 */

import type { Storage } from "../../storage/storage.ts";
import { openStorage } from "../../storage/open.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { ClaimLoop } from "./claim_loop.ts";
import {
  type LogFields,
  resolveConfig,
  type WorkerLogger,
  type WorkerOptions,
  type WorkerStats,
} from "./config.ts";
import { message, WorkerContext } from "./context.ts";
import { BatchSettler, Maintenance } from "./maintenance.ts";
import { OutcomeWriter } from "./outcome_writer.ts";
import { Pool } from "./pool.ts";
import { RecurringScheduler } from "./recurring.ts";
import { Runner } from "./run.ts";

export type { LogFields, WorkerLogger, WorkerOptions, WorkerStats };

/** Creates a worker; call `start()` to run it. */
export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}

/** The parts of a started worker. */
interface Parts {
  storage: Storage;
  writer: OutcomeWriter;
  runner: Runner;
  loop: ClaimLoop;
  maintenance: Maintenance;
  recurring?: RecurringScheduler;
  unlisten?: () => void;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
/** Signals this close together are one signal delivered twice, not a second Ctrl-C. */
const SAME_SIGNAL_MS = 500;

/** A worker process's engine. See {@link createWorker}. */
export class Worker {
  /** This server's id, as shown on the dashboard and in reaping reasons. */
  readonly id: string;
  /** Queues served, in priority order. */
  readonly queues: readonly string[];
  /** Most handlers running at once. */
  readonly concurrency: number;
  /** What this worker did since it started. */
  readonly stats: WorkerStats;
  /** Clock for events and leases. */
  readonly now: () => number;
  /** Random source for retry jitter. */
  readonly random: () => number;
  /** Where the worker reports. */
  readonly log: WorkerLogger;
  /** Heartbeat period in ms. */
  readonly heartbeatMs: number;
  /** Lease length: three heartbeats. */
  readonly leaseMs: number;

  #ctx: WorkerContext;
  #pool: Pool;
  #parts?: Parts;
  #signalHandler?: () => void;
  #stopped?: Promise<void>;
  #closed = Promise.withResolvers<void>();
  /** Resolved by `stop({ now: true })`: stop waiting for handlers. */
  #now = Promise.withResolvers<void>();

  /** Validates the options; nothing runs until {@link Worker.start}. */
  constructor(options: WorkerOptions) {
    const config = resolveConfig(options);
    this.#ctx = new WorkerContext(config);
    this.#pool = new Pool(config.concurrency);
    ({ id: this.id, queues: this.queues, concurrency: this.concurrency } = config);
    ({ now: this.now, random: this.random, log: this.log } = config);
    ({ heartbeatMs: this.heartbeatMs, leaseMs: this.leaseMs } = config);
    this.stats = this.#ctx.stats;
  }

  /** The storage the worker runs on (after `start()`). */
  get storage(): Storage {
    if (!this.#parts) throw new InvalidOptionError("worker", this.id, "is not started");
    return this.#parts.storage;
  }

  /** Names of the jobs this worker can run. */
  get jobNames(): string[] {
    return [...this.#ctx.config.definitions.keys()];
  }

  /** Jobs running (or finishing) now. */
  get inFlight(): number {
    return this.#parts?.runner.size ?? 0;
  }

  /**
   * Runs one pruning pass now with the policy in force (what maintenance does every
   * `pruneIntervalMs`); problems are logged, not thrown. For short-lived workers (a cron drain).
   */
  async prune(): Promise<void> {
    await this.#parts?.maintenance.prune();
  }

  /** Opens storage if needed, registers the server, and starts claiming. */
  async start(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.phase !== "new") {
      throw new InvalidOptionError("worker", this.id, "was already started");
    }
    ctx.phase = "running";
    const { config } = ctx;
    const storage = config.storage ?? await openStorage(config.url);
    const pool = this.#pool;
    const writer = new OutcomeWriter(ctx, storage);
    const batches = new BatchSettler(ctx, storage);
    const runner = new Runner(ctx, storage, {
      pool,
      writes: writer,
      settleBatch: (batchId) => batches.settle(batchId),
    });
    const loop = new ClaimLoop(ctx, storage, { committer: writer.committer, pool, runner });
    const maintenance = new Maintenance(ctx, storage, {
      writer,
      runner,
      onPaused: (paused) => loop.setPaused(paused),
    });
    const parts: Parts = { storage, writer, runner, loop, maintenance };
    this.#parts = parts;
    await maintenance.start();
    if (config.notifier && storage.notifier) {
      parts.unlisten = storage.notifier.listen(() => loop.signal());
    }
    if (config.recurring) {
      parts.recurring = new RecurringScheduler(ctx, storage);
      parts.recurring.start();
    }
    if (config.handleSignals) {
      // Listening until the end: without a listener, a second Ctrl-C would kill the process
      // and leave its jobs Processing until their leases expire.
      let signals = 0, first = 0;
      this.#signalHandler = () => {
        // One signal can arrive twice at once (a supervisor signals the whole process group and
        // `deno task` forwards it too): only a later one is a second Ctrl-C.
        if (signals === 1 && config.monotonic() - first < SAME_SIGNAL_MS) return;
        signals++;
        if (signals === 1) {
          first = config.monotonic();
          const wait = formatMs(config.shutdownTimeoutMs);
          const running = this.inFlight === 1
            ? "1 running handler"
            : `${this.inFlight} running handlers`;
          this.log(
            "info",
            `${this.id}: signal received, shutting down: waiting up to ${wait} for ${running}; ` +
              "press Ctrl-C again to abort them now (their jobs go back to Enqueued)",
          );
          void this.stop();
        } else if (signals === 2) {
          this.log(
            "info",
            `${this.id}: second signal: aborting ${this.inFlight} handlers now and putting their ` +
              "jobs back to Enqueued",
          );
          void this.stop({ now: true });
        }
      };
      for (const signal of SIGNALS) Deno.addSignalListener(signal, this.#signalHandler);
    }
    loop.start();
  }

  /**
   * Stops claiming, waits up to `shutdownTimeoutMs` for running handlers, aborts the rest and
   * puts their jobs back to Enqueued ("server shutdown"), then removes the server record.
   * With `now` it does not wait (also when a stop is already waiting): handlers are aborted at
   * once and their jobs requeued.
   */
  stop(options: { now?: boolean } = {}): Promise<void> {
    if (options.now) this.#now.resolve();
    this.#stopped ??= this.#shutdown().finally(() => {
      if (this.#signalHandler) {
        for (const signal of SIGNALS) Deno.removeSignalListener(signal, this.#signalHandler);
      }
      this.#closed.resolve();
    });
    return this.#stopped;
  }

  /** Resolves once the worker has stopped (by `stop()` or a signal). */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  async #shutdown(): Promise<void> {
    const ctx = this.#ctx;
    const parts = this.#parts;
    if (ctx.phase === "new" || !parts) {
      ctx.phase = "stopped";
      return;
    }
    ctx.phase = "stopping";
    const { storage, writer, runner, loop, maintenance, recurring } = parts;
    // A loop waiting for a free slot wakes up and sees the worker stopping.
    this.#pool.wake();
    loop.signal();
    parts.unlisten?.();
    await loop.stopped();
    await runner.requeueQueued();
    const timeout = this.#ctx.config.shutdownTimeoutMs;
    const drained = await settlesWithin(this.#pool.idle(), timeout, this.#now.promise);
    if (!drained) {
      runner.abortAll();
      // Handlers that honour their signal settle now and requeue themselves; the rest are
      // requeued below and their late results fenced off.
      await settlesWithin(this.#pool.idle(), Math.min(1_000, timeout));
      await runner.requeueAll();
    }
    await runner.settled();
    runner.close();
    await writer.flush();
    await maintenance.stop();
    await recurring?.stop();
    try {
      await storage.removeServer(this.id);
    } catch (error) {
      this.log("warn", `${this.id}: could not remove the server record: ${message(error)}`);
    }
    if (!this.#ctx.config.storage) await storage.close();
    ctx.phase = "stopped";
  }
}

/** True when `promise` settles within `ms` (and before `interrupt`, if given). */
async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
  interrupt?: Promise<unknown>,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const races = [promise.then(() => true), timeout];
  if (interrupt) races.push(interrupt.then(() => false));
  try {
    return await Promise.race(races);
  } finally {
    clearTimeout(timer);
  }
}

/** `15000` → "15 s", `250` → "250 ms". */
function formatMs(ms: number): string {
  return ms >= 1_000 && ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;
}
