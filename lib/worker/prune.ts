/**
 * @module
 * The worker's pruner, run by maintenance: stores this worker's retention policy as the one in
 * force at start, then every `pruneIntervalMs` runs a bounded pass with the policy stored. No
 * leader: every worker prunes, and `remove` is compare-and-set, so racing pruners are harmless.
 */

import type { Storage } from "../../storage/storage.ts";
import { prunePass, type ScanCursors } from "../retention/pass.ts";
import { type PrunePass, recordPrunePass } from "../retention/passes.ts";
import { policyInForce, policyText, publishRetention } from "../retention/store.ts";
import { message, type WorkerContext } from "./context.ts";
import { instruments } from "../telemetry/metrics.ts";

/** Remove calls per state and scan in one pass (each of at most `limits.maxRemovals` jobs). */
const PAGES_PER_PASS = 10;
/** Pages the sweep for jobs' own, shorter keeps reads per state, at most every `SWEEP_EVERY_MS`. */
const SWEEP_PAGES = 1;
/**
 * Least time between two sweeps: it reads jobs that are mostly not due, so a short prune
 * interval must not turn it into a steady stream of reads.
 */
const SWEEP_EVERY_MS = 10_000;
/** Most jobs one pass removes. */
const REMOVALS_PER_PASS = 5_000;

/** Prunes finished jobs on a timer. */
export class Pruner {
  #ctx: WorkerContext;
  #storage: Storage;
  #timer?: ReturnType<typeof setInterval>;
  #running?: Promise<void>;
  #cursors: ScanCursors = new Map();
  /** When the last pass that swept for own keeps started. */
  #sweptAt = -Infinity;
  /** The last problem reported, so that a lasting one is logged once, not every pass. */
  #problem?: string;

  /** A pruner for the worker sharing `ctx`, on `storage`. */
  constructor(ctx: WorkerContext, storage: Storage) {
    this.#ctx = ctx;
    this.#storage = storage;
  }

  /** Stores this worker's policy as the one in force, then prunes every interval. */
  async start(): Promise<void> {
    const { config } = this.#ctx;
    const archive = config.archive !== undefined;
    const { replaced } = await publishRetention(this.#storage, config.retention, {
      archive,
      by: config.id,
      now: config.now(),
    });
    if (replaced) {
      config.log(
        "warn",
        `${config.id}: replaced the retention policy in force (${policyText(replaced)}, stored ` +
          `by ${replaced.by}) with this worker's (${policyText({ ...config.retention, archive })})`,
      );
    }
    this.#timer = setInterval(() => void this.prune(), config.pruneIntervalMs);
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** Runs one pass unless one is running; problems are logged (once while they last). */
  prune(): Promise<void> {
    this.#running ??= this.#pass().finally(() => this.#running = undefined);
    return this.#running;
  }

  async #pass(): Promise<void> {
    const { config } = this.#ctx;
    if (!this.#ctx.running) return;
    try {
      const { policy, archivedBy } = await policyInForce(
        this.#storage,
        config.retention,
        config.archive !== undefined,
      );
      if (archivedBy !== undefined) {
        return this.#report(
          `not pruning: the policy in force (stored by ${archivedBy}) archives jobs before ` +
            "removing them, and this worker has no archive",
        );
      }
      const now = config.now();
      const sweep = now - this.#sweptAt >= SWEEP_EVERY_MS;
      if (sweep) this.#sweptAt = now;
      const { removed, kept, more } = await prunePass(this.#storage, {
        policy,
        archive: config.archive,
        now,
        limit: REMOVALS_PER_PASS,
        pages: PAGES_PER_PASS,
        sweepPages: sweep ? SWEEP_PAGES : 0,
        cursors: this.#cursors,
      });
      this.#problem = undefined;
      const pruned = instruments().pruned;
      for (const [state, n] of Object.entries(removed)) {
        if (n > 0) pruned.add(n, { "taskflow.job.state": state });
      }
      await this.#record({ removed, kept });
      // Behind a busy worker one pass's budget is not enough: go on at once while it removes.
      if (more && removed.succeeded + removed.failed + removed.deleted > 0) this.#catchUp();
    } catch (error) {
      this.#report(
        `pruning failed, retried next pass (nothing of the slice was removed): ${message(error)}`,
      );
    }
  }

  #catchUp(): void {
    setTimeout(() => {
      if (this.#ctx.running) void this.prune();
    }, 0);
  }

  #report(problem: string): Promise<void> {
    if (problem !== this.#problem) {
      this.#problem = problem;
      this.#ctx.config.log("warn", `${this.#ctx.config.id}: ${problem}`);
    }
    return this.#record({ problem });
  }

  /** Records this pass for the dashboard; a status, so a failure to write it is not retried. */
  async #record(outcome: Partial<PrunePass>): Promise<void> {
    const { config } = this.#ctx;
    const pass: PrunePass = {
      at: config.now(),
      by: config.id,
      removed: { succeeded: 0, failed: 0, deleted: 0 },
      kept: 0,
      everyMs: config.pruneIntervalMs,
      ...outcome,
    };
    await recordPrunePass(this.#storage, pass).catch(() => {});
  }
}
