/**
 * @module
 * A worker's maintenance, every heartbeat: the server record and lease extension, reaping
 * expired leases of dead servers, sweeping batches a crash left open, and dropping old time
 * buckets; and, every `pruneIntervalMs`, the retention pass (the {@link Pruner}).
 */

import type { Commit, Storage } from "../../storage/storage.ts";
import { type BatchRecord, settleBatch } from "../batch.ts";
import { appendCommit } from "../changes.ts";
import type { JobEvent } from "../events.ts";
import { systemClock } from "../clock.ts";
import { safeHostname } from "./config.ts";
import { message, type WorkerContext } from "./context.ts";
import type { OutcomeWriter } from "./outcome_writer.ts";
import { sweepExpired } from "./expire.ts";
import { Pruner } from "./prune.ts";
import { sweepWorkflows } from "../workflows/sweep.ts";
import { lose, type Runner } from "./run.ts";

/** How often batches are swept: recovery only (members settle their batch as they finish). */
const SWEEP_MS = 60_000;
/** How often expired jobs are looked for (a claimed one is deleted unrun meanwhile anyway). */
const EXPIRY_SWEEP_MS = 1_000;
/** Pruning runs on one heartbeat in this many ms of heartbeats, on average, per worker. */
const PRUNE_EVERY_MS = 600_000;
/** Leases read per page while watching them. */
const LEASE_PAGE = 500;
/** Most jobs reaped in one round (the rest wait for the next heartbeat). */
const REAPS_PER_ROUND = 100;

/** A lease as a reaper first saw it, and when, on the reaper's monotonic clock. */
interface Watched {
  serverId: string;
  until: number;
  since: number;
  /** The holder's lease length, once read from the job's log. */
  windowMs?: number;
}

/** The lease length the job's holder set when it claimed the job, from its log. */
function leaseLength(events: readonly JobEvent[]): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i];
    if (event.type !== "state" || event.state !== "Processing") continue;
    const length = (event.data?.leaseUntil ?? 0) - event.at;
    return length > 0 ? length : undefined;
  }
  return undefined;
}

/** Heartbeat, reaping, batch sweeps and pruning of one worker. */
export class Maintenance {
  #ctx: WorkerContext;
  #storage: Storage;
  #writer: OutcomeWriter;
  #runner: Runner;
  #onPaused: (paused: string[]) => void;
  #timer?: ReturnType<typeof setInterval>;
  #pruner: Pruner;
  #startedAt = 0;
  #lastSweep = -Infinity;
  #lastExpirySweep = -Infinity;
  /** Jobs a stale Processing index listed, already reported. */
  #misindexed = new Set<string>();
  /** Leases of other workers' jobs, as first seen unchanged. */
  #watched = new Map<string, Watched>();
  /**
   * The round of each kind running now: a slow round is never joined by another of its kind,
   * and stop waits for them (a beat would re-register the server).
   */
  #rounds = new Map<"beat" | "sweep", Promise<void>>();

  /** Maintenance of the worker sharing `ctx`; `onPaused` gets the paused queues each beat. */
  constructor(
    ctx: WorkerContext,
    storage: Storage,
    parts: { writer: OutcomeWriter; runner: Runner; onPaused: (paused: string[]) => void },
  ) {
    this.#ctx = ctx;
    this.#storage = storage;
    this.#writer = parts.writer;
    this.#runner = parts.runner;
    this.#onPaused = parts.onPaused;
    this.#pruner = new Pruner(ctx, storage);
  }

  /** Registers the server (the first beat), then maintains every heartbeat. */
  async start(): Promise<void> {
    // The server record's times are wall-clock: the storage expires it against its own clock.
    this.#startedAt = systemClock.now();
    await this.#beat();
    this.#timer = setInterval(() => {
      this.#round("beat", () => this.#beatRound());
      this.#round("sweep", () => this.#sweepRound());
    }, this.#ctx.config.heartbeatMs);
    await this.#pruner.start();
  }

  /**
   * Starts a round of `kind` unless one still runs. Overlapping beats of one worker contend for
   * the same leases (on PostgreSQL their row locks queued behind each other until nothing moved),
   * and beats apart from the sweeps keep leases fresh while a long sweep runs.
   */
  #round(kind: "beat" | "sweep", run: () => Promise<void>): void {
    if (this.#rounds.has(kind)) return;
    this.#rounds.set(kind, run().finally(() => this.#rounds.delete(kind)));
  }

  /** Runs one pruning pass now (as every `pruneIntervalMs`), unless one is running. */
  prune(): Promise<void> {
    return this.#pruner.prune();
  }

  /** Stops the heartbeats and the pruner (waiting for a pass in progress). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#rounds.values());
    await this.#pruner.stop();
  }

  /** The heartbeat with its lease extension; runs every heartbeat. */
  async #beatRound(): Promise<void> {
    // Beats go on while stopping: running jobs keep their leases, and a job deleted meanwhile
    // still gets its signal aborted.
    const { phase } = this.#ctx;
    if (phase !== "running" && phase !== "stopping") return;
    try {
      await this.#beat();
      this.#ctx.recovered();
    } catch (error) {
      this.#ctx.failed(error);
    }
  }

  /** Reaping, batch and expiry sweeps, time-bucket pruning; runs every heartbeat. */
  async #sweepRound(): Promise<void> {
    if (!this.#ctx.running) return;
    try {
      await this.#reap();
      await this.#sweepBatches();
      await this.#sweepExpired();
      await this.#prune();
      this.#ctx.recovered();
    } catch (error) {
      this.#ctx.failed(error);
    }
  }

  async #beat(): Promise<void> {
    const { config } = this.#ctx;
    this.#onPaused(await this.#storage.pausedQueues());
    const { lost } = await this.#storage.heartbeat({
      server: {
        id: config.id,
        hostname: safeHostname(),
        pid: Deno.pid,
        queues: [...config.queues],
        concurrency: config.concurrency,
        startedAt: this.#startedAt,
        lastSeen: systemClock.now(),
        inFlight: this.#runner.size,
      },
      ttlMs: config.heartbeatMs * 3,
      leases: this.#runner.leases(),
      leaseUntil: config.now() + config.leaseMs,
    });
    for (const id of lost) {
      const job = this.#runner.get(id);
      if (job) lose(job, "the job was deleted, requeued or reaped while it ran");
    }
  }

  /**
   * Reaps leases that stayed unchanged for a lease's length of this worker's monotonic time.
   * A live holder's heartbeats change its leases, whatever the clocks of the hosts say; an
   * expiry is never compared with this host's wall clock.
   */
  async #reap(): Promise<void> {
    const { config } = this.#ctx;
    const now = config.monotonic();
    const seen = new Set<string>();
    const due: [string, Watched][] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#storage.leases({ cursor, limit: LEASE_PAGE });
      for (const { id, serverId, until } of page.leases) {
        if (serverId === config.id && this.#runner.get(id)) continue;
        seen.add(id);
        const known = this.#watched.get(id);
        if (!known || known.serverId !== serverId || known.until !== until) {
          // The holder's lease length stays known across its heartbeats.
          const windowMs = known?.serverId === serverId ? known.windowMs : undefined;
          this.#watched.set(id, { serverId, until, since: now, windowMs });
        } else if (now - known.since >= Math.max(config.leaseMs, known.windowMs ?? 0)) {
          due.push([id, known]);
        }
      }
      cursor = page.cursor;
    } while (cursor);
    for (const id of this.#watched.keys()) if (!seen.has(id)) this.#watched.delete(id);
    await Promise.all(due.slice(0, REAPS_PER_ROUND).map(([id, known]) => this.#reapOne(id, known)));
  }

  /** Reaps job `id` if it is Processing under the lease `known`, unchanged for long enough. */
  async #reapOne(id: string, known: Watched): Promise<void> {
    const { config, stats } = this.#ctx;
    const job = await this.#storage.get(id);
    if (!job) return;
    if (job.state !== "Processing") {
      // Only a damaged index lists it (a write lost below the storage API): requeueing would
      // run a finished job again. Reported once; `deno task doctor` names it, rebuild repairs.
      if (!this.#misindexed.has(id)) {
        this.#misindexed.add(id);
        config.log(
          "warn",
          `job ${id} is listed under Processing but is ${job.state}: not reaped ` +
            "(run deno task doctor)",
        );
      }
      return;
    }
    if (known.windowMs === undefined) {
      // The holder's own lease length (a duration on its clock, so no skew in it): a holder
      // beating more slowly than this worker is waited for as long as it promised.
      known.windowMs = leaseLength(await this.#storage.events(id)) ?? config.leaseMs;
      if (config.monotonic() - known.since < known.windowMs) return;
    }
    const lease = await this.#storage.lease(id);
    if (!lease || lease.serverId !== known.serverId || lease.until !== known.until) return;
    const waited = Math.round(config.monotonic() - known.since);
    const at = new Date(lease.until);
    const reason = `server ${lease.serverId} stopped heartbeating; lease expired at ` +
      `${isNaN(at.getTime()) ? lease.until : at.toISOString()} by its clock, ` +
      `unchanged for ${waited} ms`;
    const ok = await this.#writer.submit(
      appendCommit(job, [{ type: "state", at: config.now(), state: "Enqueued", reason }]),
    );
    this.#watched.delete(id);
    if (ok) {
      stats.reaped++;
      config.log("warn", `job ${id} reaped: ${reason}`, { jobId: id });
    }
  }

  /**
   * Finishes what a crashed producer or worker left: releases staged members of open batches
   * and continuations of finished ones (each step is idempotent).
   */
  async #sweepBatches(): Promise<void> {
    const now = this.#ctx.config.now();
    if (now - this.#lastSweep < SWEEP_MS) return;
    this.#lastSweep = now;
    for (const batch of await this.#storage.batches.list() as BatchRecord[]) {
      if (batch.state === "open") await settleBatch(this.#storage, batch.id, this.#ctx.config.now);
    }
    await sweepWorkflows(this.#storage, this.#ctx.config.now);
  }

  /** Deletes expired jobs of the served queues before they are claimed (see expire.ts). */
  async #sweepExpired(): Promise<void> {
    const { config } = this.#ctx;
    const now = config.monotonic();
    if (now - this.#lastExpirySweep < EXPIRY_SWEEP_MS) return;
    this.#lastExpirySweep = now;
    const submit = (commit: Commit) => this.#writer.submit(commit);
    await sweepExpired(this.#storage, submit, { queues: config.queues, now: config.now() });
  }

  /** Drops expired time buckets, drawn so that all workers together prune now and then. */
  async #prune(): Promise<void> {
    const { config } = this.#ctx;
    if (config.random() < config.heartbeatMs / PRUNE_EVERY_MS) {
      await this.#storage.prune(config.now());
    }
  }
}

/** Settles the batches of members that ended, coalescing members that end close together. */
export class BatchSettler {
  #ctx: WorkerContext;
  #storage: Storage;
  /** Batches being settled; true when another member ended meanwhile (settle once more). */
  #settling = new Map<string, boolean>();

  /** A settler for the worker sharing `ctx`, on `storage`. */
  constructor(ctx: WorkerContext, storage: Storage) {
    this.#ctx = ctx;
    this.#storage = storage;
  }

  /**
   * Settles a batch after one of its members ended. Members ending while a settle of their batch
   * runs share one more settle after it (it reads the counts afresh), instead of one each.
   */
  settle(batchId: string): void {
    if (this.#settling.has(batchId)) {
      this.#settling.set(batchId, true);
      return;
    }
    this.#settling.set(batchId, false);
    (async () => {
      do {
        this.#settling.set(batchId, false);
        await settleBatch(this.#storage, batchId, this.#ctx.config.now);
      } while (this.#settling.get(batchId));
    })().catch((error) =>
      this.#ctx.config.log("warn", `batch ${batchId}: could not settle: ${message(error)}`)
    ).finally(() => this.#settling.delete(batchId));
  }
}
