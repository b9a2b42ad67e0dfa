/**
 * @module
 * What every part of a worker shares: its config, its counters, its phase, and the report of
 * storage outages (once per outage, not once per failed write).
 */

import { TaskFlowError } from "../../storage/errors.ts";
import type { WorkerConfig, WorkerStats } from "./config.ts";

/** Where a worker is in its life. */
export type Phase = "new" | "running" | "stopping" | "stopped";

/** The state the parts of one worker share. */
export class WorkerContext {
  /** The resolved options. */
  readonly config: WorkerConfig;
  /** What the worker did since it started. */
  readonly stats: WorkerStats = {
    started: 0,
    succeeded: 0,
    retried: 0,
    failed: 0,
    fenced: 0,
    reaped: 0,
    peak: 0,
  };
  /** Set by the supervisor only. */
  phase: Phase = "new";
  #failing = false;

  /** The shared state of a worker configured by `config`. */
  constructor(config: WorkerConfig) {
    this.config = config;
  }

  /** True while the worker claims work (not yet stopping). */
  get running(): boolean {
    return this.phase === "running";
  }

  /** Reports a storage error, once until {@link WorkerContext.recovered}. */
  failed(error: unknown): void {
    if (!this.#failing) {
      this.#failing = true;
      const code = error instanceof TaskFlowError ? ` [${error.code}]` : "";
      this.config.log(
        "error",
        `${this.config.id}: storage error${code}: ${message(error)}; retrying with backoff`,
      );
    }
  }

  /** Reports that the storage answers again after {@link WorkerContext.failed}. */
  recovered(): void {
    if (this.#failing) {
      this.#failing = false;
      this.config.log("info", `${this.config.id}: storage answers again`);
    }
  }
}

/** The message of anything thrown. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
