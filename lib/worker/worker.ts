/**
 * @module
 * The worker: claims ready jobs into a bounded pool, runs their handlers, and commits their
 * outcomes in groups. Heartbeats extend leases; any live worker reaps expired leases; a stale
 * worker's late writes fail compare-and-set (fencing).
 */

import type { Change, Commit, Storage } from "../../storage/storage.ts";
import type { Lease } from "../projection.ts";
import { openStorage } from "../../storage/open.ts";
import { appendCommit, releases, withContinuations } from "../changes.ts";
import {
  InvalidOptionError,
  StorageUnavailableError,
  TaskFlowError,
  UnknownJobError,
} from "../../storage/errors.ts";
import type { NewEvent } from "../events.ts";
import { type BatchRecord, settleBatch } from "../batch.ts";
import { TaskFlow } from "../client.ts";
import { GroupCommitter } from "../group_commit.ts";
import { scheduleRecurring } from "../recurring.ts";
import { DEFAULT_QUEUE, isJobDefinition, type JobDefinition, type JobRecord } from "../job.ts";
import { Pool } from "./pool.ts";
import { type RunHost, runJob, type Running } from "./run.ts";

/** Messages a worker reports (errors of storage, fenced results, ...). */
export type WorkerLogger = (level: "info" | "warn" | "error", message: string) => void;

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** An open storage, or `url` to open one (closed again by `stop()`). */
  storage?: Storage;
  /** Storage URL, used when `storage` is absent (default: see `defaultStorageUrl`). */
  url?: string;
  /** The jobs this worker can run: definitions, or a module namespace exporting them. */
  jobs: readonly JobDefinition<any, any>[] | Record<string, unknown>;
  /** Queues to take jobs from, in priority order (default `["default"]`). */
  queues?: string[];
  /** Most handlers running at once (default 10). */
  concurrency?: number;
  /** Longest wait between polls when idle, in ms (default 500). */
  pollIntervalMs?: number;
  /** Shortest wait between polls, reached when busy (default 25). */
  minPollIntervalMs?: number;
  /** Heartbeat period in ms (default 5,000); a server is dead after 3 missed beats. */
  heartbeatMs?: number;
  /** How long a shutdown waits for running handlers before aborting them (default 15,000). */
  shutdownTimeoutMs?: number;
  /** Use the storage's wake-ups (KV queue messages, ...) besides polling (default true). */
  notifier?: boolean;
  /** Enqueue due occurrences of recurring jobs (default true; every worker may, each runs once). */
  recurring?: boolean;
  /** Stop gracefully on SIGINT/SIGTERM (default false; the CLI turns it on). */
  handleSignals?: boolean;
  /** Server id (default: hostname, pid and a random suffix). */
  id?: string;
  /** Clock for event times, due times and leases (tests inject one). */
  now?: () => number;
  /** Random source for retry jitter (tests inject one). */
  random?: () => number;
  /** Where the worker reports (default: console). */
  logger?: WorkerLogger;
}

/** Counters of what a worker did since it started. */
export interface WorkerStats {
  /** Handlers started. */
  started: number;
  /** Jobs that ended Succeeded. */
  succeeded: number;
  /** Attempts that ended in a retry. */
  retried: number;
  /** Jobs that ended Failed. */
  failed: number;
  /** Results discarded because the job changed under the worker (deleted, requeued, reaped). */
  fenced: number;
  /** Jobs of dead servers moved back to Enqueued. */
  reaped: number;
  /** Most handlers that ran at once. */
  peak: number;
}

/** Most Scheduled jobs one turn of the claim loop promotes. */
const DUE_PAGE = 200;

const defaultLogger: WorkerLogger = (level, message) => {
  (level === "info" ? console.log : console.error)(`[taskflow ${level}] ${message}`);
};

/** Creates a worker; call `start()` to run it. */
export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}

/** A worker process's engine. See {@link createWorker}. */
export class Worker {
  /** This server's id, as shown on the dashboard and in reaping reasons. */
  readonly id: string;
  /** Queues served, in priority order. */
  readonly queues: readonly string[];
  /** Most handlers running at once. */
  readonly concurrency: number;
  /** What this worker did since it started. */
  readonly stats: WorkerStats = {
    started: 0,
    succeeded: 0,
    retried: 0,
    failed: 0,
    fenced: 0,
    reaped: 0,
    peak: 0,
  };
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

  #options: WorkerOptions;
  #definitions = new Map<string, JobDefinition>();
  #storage?: Storage;
  #committer?: GroupCommitter;
  #pool: Pool;
  #running = new Map<string, Running>();
  #finishing = new Set<Promise<void>>();
  #state: "new" | "running" | "stopping" | "stopped" = "new";
  #wake?: () => void;
  /** A wake-up arrived while the loop was reading: it must not sleep through it. */
  #woken = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #loopDone?: Promise<void>;
  #unlisten?: () => void;
  #signalHandler?: () => void;
  #startedAt = 0;
  #failing = false;
  #stopped?: Promise<void>;
  #recurringClient?: TaskFlow;
  /** When the loop last read due jobs (performance.now()), and the next due time it saw. */
  #due = { checked: -Infinity, next: Infinity };
  /** Paused queues, refreshed with every heartbeat. */
  #paused = new Set<string>();
  #lastSweep = 0;
  /** Batches being settled; true when another member ended meanwhile (settle once more). */
  #settling = new Map<string, boolean>();
  /** Jobs a stale Processing index listed, already reported. */
  #misindexed = new Set<string>();
  #recurringTimer?: ReturnType<typeof setTimeout>;
  /** Whether the claim loop's turn in progress may hold outcomes (see #holdOutcomes). */
  #holding = false;
  #recurringRun?: Promise<unknown>;
  #closed = Promise.withResolvers<void>();

  /** Validates the options; nothing runs until {@link Worker.start}. */
  constructor(options: WorkerOptions) {
    this.#options = options;
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
      throw new InvalidOptionError(
        "concurrency",
        concurrency,
        "must be an integer from 1 to 10000",
      );
    }
    this.concurrency = concurrency;
    this.queues = options.queues ?? [DEFAULT_QUEUE];
    if (!Array.isArray(this.queues) || this.queues.length === 0) {
      throw new InvalidOptionError("queues", options.queues, "must list at least one queue");
    }
    for (
      const [name, value] of [
        ["heartbeatMs", options.heartbeatMs],
        ["pollIntervalMs", options.pollIntervalMs],
        ["minPollIntervalMs", options.minPollIntervalMs],
        ["shutdownTimeoutMs", options.shutdownTimeoutMs],
      ] as const
    ) {
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        throw new InvalidOptionError(name, value, "must be a number of ms, 0 or more");
      }
    }
    const list = Array.isArray(options.jobs) ? options.jobs : Object.values(options.jobs ?? {});
    for (const job of list) {
      if (isJobDefinition(job)) this.#definitions.set(job.name, job);
    }
    this.#pool = new Pool(concurrency);
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
    this.leaseMs = this.heartbeatMs * 3;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? defaultLogger;
    const host = safeHostname();
    this.id = options.id ?? `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  }

  /** The storage the worker runs on (after `start()`). */
  get storage(): Storage {
    if (!this.#storage) throw new InvalidOptionError("worker", this.id, "is not started");
    return this.#storage;
  }

  /** Names of the jobs this worker can run. */
  get jobNames(): string[] {
    return [...this.#definitions.keys()];
  }

  /** Jobs running (or finishing) now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** Opens storage if needed, registers the server, and starts claiming. */
  async start(): Promise<void> {
    if (this.#state !== "new") {
      throw new InvalidOptionError("worker", this.id, "was already started");
    }
    this.#state = "running";
    this.#storage = this.#options.storage ?? await openStorage(this.#options.url);
    this.#committer = new GroupCommitter(this.#storage);
    this.#startedAt = Date.now();
    await this.#beat();
    if (this.#options.notifier !== false && this.#storage.notifier) {
      this.#unlisten = this.#storage.notifier.listen(() => this.#signal());
    }
    this.#timers.push(setInterval(() => this.#maintain(), this.heartbeatMs));
    if (this.#options.recurring !== false) void this.#scheduleRecurring();
    if (this.#options.handleSignals) {
      this.#signalHandler = () => {
        this.log("info", `${this.id}: signal received, shutting down`);
        void this.stop();
      };
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        Deno.addSignalListener(signal, this.#signalHandler);
      }
    }
    this.#loopDone = this.#loop();
  }

  /**
   * Stops claiming, waits up to `shutdownTimeoutMs` for running handlers, aborts the rest and
   * puts their jobs back to Enqueued ("server shutdown"), then removes the server record.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutdown().finally(() => this.#closed.resolve());
    return this.#stopped;
  }

  /** Resolves once the worker has stopped (by `stop()` or a signal). */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  async #shutdown(): Promise<void> {
    if (this.#state === "new") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopping";
    // A loop waiting for a free slot wakes up and sees the worker stopping.
    this.#pool.wake();
    this.#signal();
    this.#unlisten?.();
    if (this.#signalHandler) {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        Deno.removeSignalListener(signal, this.#signalHandler);
      }
    }
    await this.#loopDone;
    const timeout = this.#options.shutdownTimeoutMs ?? 15_000;
    const drained = await settlesWithin(this.#pool.idle(), timeout);
    if (!drained) {
      for (const job of this.#running.values()) {
        job.shuttingDown = true;
        job.controller.abort(new Error("server shutdown"));
      }
      // Handlers that honour their signal settle now and requeue themselves; the rest are
      // requeued below and their late results fenced off.
      await settlesWithin(this.#pool.idle(), Math.min(1_000, timeout));
      await Promise.all([...this.#running.values()].map((job) => this.#requeueShutdown(job)));
    }
    await Promise.all(this.#finishing);
    await this.#committer!.flush();
    for (const timer of this.#timers) clearInterval(timer);
    clearTimeout(this.#recurringTimer);
    await this.#recurringRun;
    try {
      await this.#storage!.removeServer(this.id);
    } catch (error) {
      this.log("warn", `${this.id}: could not remove the server record: ${message(error)}`);
    }
    if (!this.#options.storage) await this.#storage!.close();
    this.#state = "stopped";
  }

  /** What a running job may do through its worker (see run.ts). */
  #host: RunHost = {
    now: () => this.now(),
    random: () => this.random(),
    log: (level, text) => this.log(level, text),
    stats: this.stats,
    resultLimit: () => this.#storage!.limits.result,
    appendOwn: (job, events) => this.#appendOwn(job, events),
    requeueShutdown: (job) => this.#requeueShutdown(job),
    done: (job) => this.#running.delete(job.record.id),
    settleBatch: (batchId) => this.#settle(batchId),
  };

  /**
   * Settles a batch after one of its members ended. Members ending while a settle of their batch
   * runs share one more settle after it (it reads the counts afresh), instead of one each.
   */
  #settle(batchId: string): void {
    if (this.#settling.has(batchId)) {
      this.#settling.set(batchId, true);
      return;
    }
    this.#settling.set(batchId, false);
    (async () => {
      do {
        this.#settling.set(batchId, false);
        await settleBatch(this.#storage!, batchId, this.now);
      } while (this.#settling.get(batchId));
    })().catch((error) => this.log("warn", `batch ${batchId}: could not settle: ${message(error)}`))
      .finally(() => this.#settling.delete(batchId));
  }

  /** Puts a job abandoned by shutdown back to Enqueued (unless it changed meanwhile). */
  async #requeueShutdown(job: Running): Promise<void> {
    if (job.lost) return;
    job.lost = true;
    job.shuttingDown = true;
    job.abandon?.();
    const events: NewEvent[] = [{
      type: "state",
      at: this.now(),
      state: "Enqueued",
      reason: "server shutdown",
    }];
    await this.#submit(appendCommit(job.record, events)).catch((error) => {
      this.log("warn", `job ${job.record.id}: could not requeue on shutdown: ${message(error)}`);
    });
    this.#running.delete(job.record.id);
  }

  /** Group-commits one job's commit with its continuation releases; false when fenced. */
  async #submit(commit: Commit): Promise<boolean> {
    for (let tries = 0; tries < 20; tries++) {
      const change: Change = releases(commit)
        ? await withContinuations(this.#storage!, commit, this.now())
        : { commits: [commit] };
      const result = await this.#committer!.submit(change);
      if (result.ok) return true;
      if (result.conflicts.includes(commit.id)) return false;
      // Only a continuation moved meanwhile: re-read the children and try again.
    }
    return false;
  }

  /** Writes events of a running job as its holder; marks the job lost when fenced. */
  async #appendOwn(job: Running, events: NewEvent[]): Promise<boolean> {
    if (job.lost) return false;
    const commit = appendCommit(job.record, events);
    let ok: boolean;
    try {
      ok = await this.#submit(commit);
    } catch (error) {
      if (!this.#outage(error)) throw error;
      ok = await this.#untilStored(() => this.#submit(commit), error);
    }
    if (ok) job.record = commit.record;
    else this.#lose(job, "the job changed while it ran (deleted, requeued or reaped)");
    return ok;
  }

  /**
   * Retries a running job's write that failed with `failure` while the storage is unavailable,
   * so that an outage delays outcomes instead of dropping them (the job would sit in Processing
   * until its lease expired, then run again) and is reported once by #failed rather than once
   * per job. Gives up when the worker stops; if the lease expired meanwhile, the write is fenced
   * as usual.
   */
  async #untilStored<T>(write: () => Promise<T>, failure: StorageUnavailableError): Promise<T> {
    for (let delay = 50;; delay = Math.min(delay * 2, 2_000)) {
      this.#failed(failure);
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        return await write();
      } catch (error) {
        if (!this.#outage(error)) throw error;
        failure = error;
      }
    }
  }

  /** A write failed because the storage is unavailable, and the worker still runs: retry it. */
  #outage(error: unknown): error is StorageUnavailableError {
    return error instanceof StorageUnavailableError && this.#state === "running";
  }

  #lose(job: Running, reason: string): void {
    if (job.lost) return;
    job.lost = true;
    job.controller.abort(new Error(reason));
  }

  async #loop(): Promise<void> {
    try {
      await this.#claimLoop();
    } finally {
      // Whatever ended the loop, held outcomes are written (a stop waits for them).
      this.#committer!.release();
    }
  }

  async #claimLoop(): Promise<void> {
    let idle = this.#options.minPollIntervalMs ?? 25;
    while (this.#state === "running") {
      // Not a race with a promise of the worker's lifetime: every race would leave a reaction
      // on it until the worker stops (a leak per turn of the loop).
      // Outcomes are held only while the next claim is near (see #holdOutcomes), not while
      // this loop waits for a slot: a long wait would hold progress writes too.
      if (this.#pool.free === 0) this.#committer!.release();
      this.#holding = true;
      await this.#pool.whenFree(this.#holdOutcomes);
      // Let the other handlers that finished in this turn free their slots too, so one claim
      // fills several slots (only when busy: an idle worker claims at once).
      if (this.#pool.busy > 0) await new Promise((r) => setTimeout(r, 0));
      if (this.#state !== "running") break;
      // Due jobs are read when one may have come due: after a wake-up, at the earliest due
      // time seen, and at least every minimum poll interval (not on every busy turn).
      const dueCheck = this.#woken || this.now() >= this.#due.next ||
        performance.now() - this.#due.checked >= (this.#options.minPollIntervalMs ?? 25);
      this.#woken = false;
      let progress = false;
      try {
        // Independent reads: sent together they cost one round trip.
        const asked = this.#pool.free;
        const queues = this.#activeQueues();
        const reading = Promise.all([
          dueCheck ? this.#readDue() : undefined,
          this.#claim(asked, queues),
        ]);
        this.#committer!.release();
        const [due, claim] = await reading;
        let promoted = 0;
        if (due) {
          // Promotions go through the group commit and are awaited: nothing may be held.
          this.#committer!.release();
          this.#due = { checked: performance.now(), next: due.next };
          const drained = claim.claimed < asked && !claim.contended;
          promoted = await this.#promote(due.ready, drained ? queues : []);
        }
        progress = promoted > 0 || claim.claimed > 0 || claim.contended;
        this.#recovered();
      } catch (error) {
        this.#holding = false;
        this.#committer!.release();
        this.#failed(error);
        await this.#sleep(Math.min(5_000, (this.#options.pollIntervalMs ?? 500) * 2));
        continue;
      }
      if (progress) {
        idle = this.#options.minPollIntervalMs ?? 25;
        continue;
      }
      const untilDue = this.#due.next - this.now();
      await this.#sleep(Math.max(0, Math.min(idle, untilDue)));
      idle = Math.min(idle * 2, this.#options.pollIntervalMs ?? 500);
    }
  }

  /**
   * With a one-call claim, outcomes are held from the moment claimed jobs start (or a slot this
   * loop waits for frees up) until this loop has started its next claim. The storage then runs
   * the claim while this worker encodes the outcomes, and the outcomes while it starts the
   * claimed jobs; outcomes written first made the claim wait behind them, and the two sides
   * took turns instead of overlapping (timeline of a run with fast jobs: every outcome call was
   * sent before the claim). A finished job's outcome may already be submitted when this runs:
   * the group commit looks at the hold again before it writes. The claim reaches the connection
   * first because it is started first and takes fewer steps to it than the released outcomes
   * (on Redis: one await against two); when it does not (a cold claim that peeks first), the
   * outcomes simply go first, as before. Only for the turn in progress (`#holding`): a turn that
   * failed must not hold what its claim started while the loop backs off.
   */
  #holdOutcomes = (): void => {
    if (this.#holding && this.#storage?.claim && this.#state === "running") {
      this.#committer!.hold();
    }
  };

  #signal(): void {
    this.#woken = true;
    this.#wake?.();
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Scheduled jobs due now, and when the next one not yet due is. */
  async #readDue(): Promise<{ ready: JobRecord[]; next: number }> {
    const now = this.now();
    const horizon = now + (this.#options.pollIntervalMs ?? 500);
    const due = await this.#storage!.due({ state: "Scheduled", before: horizon, limit: DUE_PAGE });
    const ready = due.filter((job) => (job.runAt ?? 0) <= now);
    // A full page of due jobs may hide more of them: look again on the next turn.
    const next = due.length === DUE_PAGE && ready.length === due.length
      ? now
      : due.find((job) => (job.runAt ?? 0) > now)?.runAt ?? Infinity;
    return { ready, next };
  }

  /**
   * Moves due jobs to Enqueued. `drained` are the queues the claim of the same turn found empty
   * (all it asked for, or none): due jobs of those queues go straight to Processing in free
   * slots, in the same commit, in claim order (queue order, then priority, then due time). They
   * would be claimed next anyway, a read and a write later. Jobs promoted only are claimed by
   * the next turn, which follows at once since promoting counts as progress.
   */
  async #promote(due: JobRecord[], drained: readonly string[]): Promise<number> {
    const now = this.now();
    const lease = this.#lease(now);
    const rank = new Map(drained.map((queue, i) => [queue, i]));
    const direct = new Set(
      due.filter((job) => rank.has(job.queue))
        .sort((a, b) =>
          rank.get(a.queue)! - rank.get(b.queue)! || b.priority - a.priority ||
          (a.runAt ?? 0) - (b.runAt ?? 0)
        )
        .slice(0, this.#pool.free),
    );
    const commits = due.map((job) => {
      const events: NewEvent[] = [{
        type: "state",
        at: now,
        state: "Enqueued",
        reason: job.retryOf ? `retry after attempt ${job.retryOf}` : "due",
      }];
      if (!direct.has(job)) return appendCommit(job, events);
      return appendCommit(job, [...events, this.#processing(now, lease)], lease);
    });
    const results = await Promise.all(
      commits.map((commit) => this.#committer!.submit({ commits: [commit] })),
    );
    results.forEach((result, i) => {
      if (result.ok && commits[i].record.state === "Processing") this.#startJob(commits[i].record);
    });
    return results.filter((result) => result.ok).length;
  }

  /** The served queues that are not paused (as of the last heartbeat). */
  #activeQueues(): string[] {
    return this.queues.filter((queue) => !this.#paused.has(queue));
  }

  async #claim(
    free: number,
    queues: string[],
  ): Promise<{ claimed: number; contended: boolean }> {
    if (queues.length === 0) return { claimed: 0, contended: false };
    if (this.#storage!.claim) return await this.#claimNatively(free, queues);
    let claimed = 0, contended = false;
    for (const queue of queues) {
      if (claimed >= free) break;
      const page = await this.#storage!.list({ queue, limit: free - claimed });
      const build = this.#claimBuilder();
      const commits = page.jobs.map(build).filter((commit): commit is Commit => commit !== null);
      const results = await Promise.all(
        commits.map((commit) => this.#committer!.submit({ commits: [commit] })),
      );
      results.forEach((result, i) => {
        if (!result.ok) {
          contended = true;
          return;
        }
        claimed++;
        this.#startJob(commits[i].record);
      });
    }
    return { claimed, contended };
  }

  /** Builds the commit moving an Enqueued job to Processing under a fresh lease (else null). */
  #claimBuilder(): (job: JobRecord) => Commit | null {
    const now = this.now();
    const lease = this.#lease(now);
    return (job) =>
      job.state !== "Enqueued" ? null : appendCommit(job, [this.#processing(now, lease)], lease);
  }

  #lease(now: number): Lease {
    return { serverId: this.id, until: now + this.leaseMs };
  }

  /** The event of a claim under `lease`. */
  #processing(at: number, lease: Lease): NewEvent {
    return {
      type: "state",
      at,
      state: "Processing",
      data: { serverId: this.id, leaseUntil: lease.until },
    };
  }

  /** Claims through the backend's own claim (one round trip on Redis); lib still builds commits. */
  async #claimNatively(
    free: number,
    queues: string[],
  ): Promise<{ claimed: number; contended: boolean }> {
    const result = await this.#storage!.claim!({ queues, limit: free }, this.#claimBuilder());
    if (result.claimed.length) this.#holdOutcomes();
    for (const commit of result.claimed) this.#startJob(commit.record);
    return { claimed: result.claimed.length, contended: result.contended };
  }

  #startJob(record: JobRecord): void {
    const job: Running = {
      record,
      controller: new AbortController(),
      lost: false,
      shuttingDown: false,
    };
    this.#running.set(record.id, job);
    this.stats.started++;
    const definition = this.#definitions.get(record.name);
    const finishing = runJob(
      this.#host,
      this.#pool,
      job,
      definition,
      () => new UnknownJobError(record.name, this.jobNames),
    )
      .catch((error) => this.log("error", `job ${record.id}: ${message(error)}`))
      .finally(() => {
        this.#finishing.delete(finishing);
        this.stats.peak = this.#pool.peak;
      });
    this.#finishing.add(finishing);
  }

  /**
   * Enqueues due recurring occurrences, then sleeps until the next one is due (at most one
   * heartbeat, so new and changed definitions are seen soon).
   */
  async #scheduleRecurring(): Promise<void> {
    if (this.#state !== "running") return;
    let nextDue = Infinity;
    try {
      this.#recurringClient ??= new TaskFlow(this.#storage!, { now: this.now });
      const run = scheduleRecurring(this.#recurringClient);
      this.#recurringRun = run;
      ({ nextDue } = await run);
    } catch (error) {
      this.#failed(error);
    } finally {
      this.#recurringRun = undefined;
    }
    if (this.#state !== "running") return;
    const wait = Math.max(0, Math.min(nextDue - this.now(), this.heartbeatMs));
    this.#recurringTimer = setTimeout(() => void this.#scheduleRecurring(), wait);
  }

  /**
   * Finishes what a crashed producer or worker left: releases staged members of open batches
   * and continuations of finished ones (each step is idempotent).
   */
  async #sweepBatches(): Promise<void> {
    // Recovery only (members settle their batch as they finish): once a minute is plenty.
    if (Date.now() - this.#lastSweep < 60_000) return;
    this.#lastSweep = Date.now();
    for (const batch of await this.#storage!.batches.list() as BatchRecord[]) {
      if (batch.state === "open") await settleBatch(this.#storage!, batch.id, this.now);
    }
  }

  /** Heartbeat, lease extension, reaping and pruning; runs every heartbeat. */
  async #maintain(): Promise<void> {
    // Beats go on while stopping: running jobs keep their leases, and a job deleted meanwhile
    // still gets its signal aborted.
    if (this.#state !== "running" && this.#state !== "stopping") return;
    try {
      await this.#beat();
      if (this.#state !== "running") return;
      await this.#reap();
      await this.#sweepBatches();
      if (Math.random() < this.heartbeatMs / 600_000) await this.#storage!.prune(Date.now());
      this.#recovered();
    } catch (error) {
      this.#failed(error);
    }
  }

  async #beat(): Promise<void> {
    const paused = await this.#storage!.pausedQueues();
    const resumed = [...this.#paused].some((queue) => !paused.includes(queue));
    this.#paused = new Set(paused);
    if (resumed) this.#signal();
    const leases = [...this.#running.values()].filter((job) => !job.lost).map((job) =>
      job.record.id
    );
    const { lost } = await this.#storage!.heartbeat({
      server: {
        id: this.id,
        hostname: safeHostname(),
        pid: Deno.pid,
        queues: [...this.queues],
        concurrency: this.concurrency,
        startedAt: this.#startedAt,
        lastSeen: Date.now(),
        inFlight: this.#running.size,
      },
      ttlMs: this.heartbeatMs * 3,
      leases,
      leaseUntil: this.now() + this.leaseMs,
    });
    for (const id of lost) {
      const job = this.#running.get(id);
      if (job) this.#lose(job, "the job was deleted, requeued or reaped while it ran");
    }
  }

  async #reap(): Promise<void> {
    const now = this.now();
    const expired = await this.#storage!.due({ state: "Processing", before: now, limit: 100 });
    await Promise.all(expired.map(async (job) => {
      if (job.serverId === this.id && this.#running.has(job.id)) return;
      if (job.state !== "Processing") {
        // Only a damaged index lists it (a write lost below the storage API): requeueing would
        // run a finished job again. Reported once; `deno task doctor` names it, rebuild repairs.
        if (!this.#misindexed.has(job.id)) {
          this.#misindexed.add(job.id);
          this.log(
            "warn",
            `job ${job.id} is listed under Processing but is ${job.state}: not reaped ` +
              "(run deno task doctor)",
          );
        }
        return;
      }
      const lease = await this.#storage!.lease(job.id);
      if (!lease || lease.until > now) return;
      const reason = `server ${lease.serverId} stopped heartbeating; lease expired at ` +
        new Date(lease.until).toISOString();
      const ok = await this.#submit(
        appendCommit(job, [{ type: "state", at: now, state: "Enqueued", reason }]),
      );
      if (ok) {
        this.stats.reaped++;
        this.log("warn", `job ${job.id} reaped: ${reason}`);
      }
    }));
  }

  #failed(error: unknown): void {
    if (!this.#failing) {
      this.#failing = true;
      const code = error instanceof TaskFlowError ? ` [${error.code}]` : "";
      this.log(
        "error",
        `${this.id}: storage error${code}: ${message(error)}; retrying with backoff`,
      );
    }
  }

  #recovered(): void {
    if (this.#failing) {
      this.#failing = false;
      this.log("info", `${this.id}: storage answers again`);
    }
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function safeHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}

/** True when `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
