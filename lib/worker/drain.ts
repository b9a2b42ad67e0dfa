/**
 * @module
 * Draining: run a worker until there is nothing left to do or a time budget is spent. This is
 * how jobs run where no process stays up and no KV queue wakes one (the new Deno Deploy): a
 * `Deno.cron` calls it every minute.
 */

import type { Storage } from "../../storage/storage.ts";
import { systemClock } from "../clock.ts";
import type { JobDefinition } from "../job.ts";
import type { WorkerLogger } from "./config.ts";
import type { RetentionPolicy } from "../retention/policy.ts";
import { createWorker } from "./worker.ts";

/** Options of {@link drain}. */
export interface DrainOptions {
  storage: Storage;
  jobs: readonly JobDefinition<any, any>[];
  queues?: string[];
  concurrency?: number;
  /** Stop claiming after this many ms (default 50,000: within a one-minute cron tick). */
  budgetMs?: number;
  logger?: WorkerLogger;
  /** Clock for the budget, and the worker's clock (default: the system clock). */
  now?: () => number;
  /** The retention the drain's worker stores and prunes with (default: the defaults). */
  retention?: RetentionPolicy | false;
}

/** What a drain did. */
export interface DrainResult {
  /** Handlers started. */
  ran: number;
  succeeded: number;
  failed: number;
  retried: number;
  /** Why it stopped. */
  stopped: "idle" | "budget";
  ms: number;
}

/**
 * Runs due and ready jobs until none is left (nothing ready, nothing due, nothing running) or
 * `budgetMs` has passed; jobs still running then are put back to Enqueued by the shutdown.
 */
export async function drain(options: DrainOptions): Promise<DrainResult> {
  const now = options.now ?? systemClock.now;
  const started = now();
  const budget = options.budgetMs ?? 50_000;
  const queues = options.queues ?? ["default"];
  const worker = createWorker({
    storage: options.storage,
    jobs: options.jobs,
    queues,
    concurrency: options.concurrency ?? 10,
    notifier: false,
    minPollIntervalMs: 5,
    pollIntervalMs: 100,
    shutdownTimeoutMs: 5_000,
    logger: options.logger,
    now: options.now,
    retention: options.retention,
    // The cron drains (and prunes) once a minute: the pass it records says so.
    pruneIntervalMs: 60_000,
  });
  await worker.start();
  let stopped: DrainResult["stopped"] = "budget";
  try {
    while (now() - started < budget - 5_000) {
      await new Promise((r) => setTimeout(r, 100));
      if (worker.inFlight > 0) continue;
      const [ready, due] = await Promise.all([
        Promise.all(queues.map((queue) => options.storage.list({ queue, limit: 1 }))),
        options.storage.due({ state: "Scheduled", before: now(), limit: 1 }),
      ]);
      if (
        ready.every((page) => page.jobs.length === 0) && due.length === 0 && worker.inFlight === 0
      ) {
        stopped = "idle";
        break;
      }
    }
    // A drain is too short for the pruning timer: prune once per drain (once a minute).
    await worker.prune();
  } finally {
    await worker.stop();
  }
  const { started: ran, succeeded, failed, retried } = worker.stats;
  return { ran, succeeded, failed, retried, stopped, ms: now() - started };
}
