/**
 * @module
 * A worker's recurring scheduler: enqueues due occurrences of recurring jobs, then sleeps until
 * the next one is due (at most one heartbeat, so new and changed definitions are seen soon).
 */

import type { Storage } from "../../storage/storage.ts";
import type { JobWriter } from "../create.ts";
import { scheduleRecurring } from "../recurring.ts";
import type { WorkerContext } from "./context.ts";

/** Runs {@link scheduleRecurring} on the worker's storage and clock while the worker runs. */
export class RecurringScheduler {
  #ctx: WorkerContext;
  #writer: JobWriter;
  #timer?: ReturnType<typeof setTimeout>;
  #run?: Promise<unknown>;
  /** Broken definitions already reported by this worker (id and message). */
  #reported = new Set<string>();

  /** A scheduler for the worker sharing `ctx`, creating jobs in `storage`. */
  constructor(ctx: WorkerContext, storage: Storage) {
    this.#ctx = ctx;
    this.#writer = { storage, now: ctx.config.now, random: ctx.config.random };
  }

  /** Runs the first step now; each step schedules the next. */
  start(): void {
    void this.#step();
  }

  /** Stops scheduling and waits for a step in progress. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    await this.#run;
  }

  async #step(): Promise<void> {
    if (!this.#ctx.running) return;
    let nextDue = Infinity;
    try {
      const run = scheduleRecurring(this.#writer);
      this.#run = run;
      const step = await run;
      nextDue = step.nextDue;
      // Only the worker whose compare-and-set marked a definition reports it: once per fleet.
      for (const { id, message } of step.broken) {
        if (this.#reported.has(`${id}\n${message}`)) continue;
        this.#reported.add(`${id}\n${message}`);
        this.#ctx.config.log(
          "error",
          `recurring job ${id} is skipped until it is changed (upsert, resume or trigger): ${message}`,
        );
      }
    } catch (error) {
      this.#ctx.failed(error);
    } finally {
      this.#run = undefined;
    }
    if (!this.#ctx.running) return;
    const { now, heartbeatMs } = this.#ctx.config;
    const wait = Math.max(0, Math.min(nextDue - now(), heartbeatMs));
    this.#timer = setTimeout(() => void this.#step(), wait);
  }
}
