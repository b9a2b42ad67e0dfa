/**
 * @module
 * A worker's maintenance, every heartbeat: the server record and lease extension, reaping
 * expired leases of dead servers, sweeping batches a crash left open, and pruning.
 */

import type { Storage } from "../../storage/storage.ts";
import { type BatchRecord, settleBatch } from "../batch.ts";
import { appendCommit } from "../changes.ts";
import { systemClock } from "../clock.ts";
import { safeHostname } from "./config.ts";
import { message, type WorkerContext } from "./context.ts";
import type { OutcomeWriter } from "./outcome_writer.ts";
import { lose, type Runner } from "./run.ts";

/** How often batches are swept: recovery only (members settle their batch as they finish). */
const SWEEP_MS = 60_000;
/** Pruning runs on one heartbeat in this many ms of heartbeats, on average, per worker. */
const PRUNE_EVERY_MS = 600_000;

/** Heartbeat, reaping, batch sweeps and pruning of one worker. */
export class Maintenance {
  #ctx: WorkerContext;
  #storage: Storage;
  #writer: OutcomeWriter;
  #runner: Runner;
  #onPaused: (paused: string[]) => void;
  #timer?: ReturnType<typeof setInterval>;
  #startedAt = 0;
  #lastSweep = -Infinity;
  /** Jobs a stale Processing index listed, already reported. */
  #misindexed = new Set<string>();

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
  }

  /** Registers the server (the first beat), then maintains every heartbeat. */
  async start(): Promise<void> {
    // The server record's times are wall-clock: the storage expires it against its own clock.
    this.#startedAt = systemClock.now();
    await this.#beat();
    this.#timer = setInterval(() => this.#maintain(), this.#ctx.config.heartbeatMs);
  }

  /** Stops the heartbeats. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** Heartbeat, lease extension, reaping and pruning; runs every heartbeat. */
  async #maintain(): Promise<void> {
    // Beats go on while stopping: running jobs keep their leases, and a job deleted meanwhile
    // still gets its signal aborted.
    const { phase } = this.#ctx;
    if (phase !== "running" && phase !== "stopping") return;
    try {
      await this.#beat();
      if (!this.#ctx.running) return;
      await this.#reap();
      await this.#sweepBatches();
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

  async #reap(): Promise<void> {
    const { config, stats } = this.#ctx;
    const now = config.now();
    const expired = await this.#storage.due({ state: "Processing", before: now, limit: 100 });
    await Promise.all(expired.map(async (job) => {
      if (job.serverId === config.id && this.#runner.get(job.id)) return;
      if (job.state !== "Processing") {
        // Only a damaged index lists it (a write lost below the storage API): requeueing would
        // run a finished job again. Reported once; `deno task doctor` names it, rebuild repairs.
        if (!this.#misindexed.has(job.id)) {
          this.#misindexed.add(job.id);
          config.log(
            "warn",
            `job ${job.id} is listed under Processing but is ${job.state}: not reaped ` +
              "(run deno task doctor)",
          );
        }
        return;
      }
      const lease = await this.#storage.lease(job.id);
      if (!lease || lease.until > now) return;
      const reason = `server ${lease.serverId} stopped heartbeating; lease expired at ` +
        new Date(lease.until).toISOString();
      const ok = await this.#writer.submit(
        appendCommit(job, [{ type: "state", at: now, state: "Enqueued", reason }]),
      );
      if (ok) {
        stats.reaped++;
        config.log("warn", `job ${job.id} reaped: ${reason}`);
      }
    }));
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
