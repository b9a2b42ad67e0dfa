/**
 * @module
 * A worker's copy of the queue limits (settings `queue:<name>`), read again in the background
 * once it is older than a second, so a claim never waits for it after the first one.
 */

import type { Storage } from "../../storage/storage.ts";
import { configOf, type QueueConfig } from "./config.ts";

const PREFIX = "queue:";

/** How long a read of the queue limits is used before the next one starts. */
export const LIMITS_REFRESH_MS = 1_000;

/** The queue limits as last read, refreshed in the background. */
export class QueueLimits {
  #storage: Storage;
  #clock: () => number;
  #refreshMs: number;
  #configs = new Map<string, QueueConfig>();
  #readAt = -Infinity;
  #reading?: Promise<void>;
  #loaded = false;

  /** Limits of `storage`'s queues; `clock` is monotonic (ms). */
  constructor(storage: Storage, options: { clock: () => number; refreshMs?: number }) {
    this.#storage = storage;
    this.#clock = options.clock;
    this.#refreshMs = options.refreshMs ?? LIMITS_REFRESH_MS;
  }

  /** Whether the limits were read at least once. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Reads the limits now (a read already under way is shared). */
  load(): Promise<void> {
    this.#reading ??= this.#read().finally(() => this.#reading = undefined);
    return this.#reading;
  }

  /** A queue's limits as last read (an empty config when it has none). */
  get(queue: string): QueueConfig {
    this.#refresh();
    return this.#configs.get(queue) ?? {};
  }

  /**
   * The global concurrency limits of `queues` as last read, or undefined when none has one
   * (the claim then takes exactly the path it takes without limits).
   */
  caps(queues: readonly string[]): Record<string, number> | undefined {
    this.#refresh();
    let caps: Record<string, number> | undefined;
    for (const queue of queues) {
      const max = this.#configs.get(queue)?.concurrency;
      if (max !== undefined) (caps ??= {})[queue] = max;
    }
    return caps;
  }

  /** Starts a background read when the last one is stale; a failed read keeps the old limits. */
  #refresh(): void {
    if (this.#clock() - this.#readAt < this.#refreshMs) return;
    this.#readAt = this.#clock();
    this.load().catch(() => {});
  }

  async #read(): Promise<void> {
    const records = await this.#storage.settings.list();
    const configs = new Map<string, QueueConfig>();
    for (const record of records) {
      if (record.id.startsWith(PREFIX)) {
        configs.set(record.id.slice(PREFIX.length), configOf(record));
      }
    }
    this.#configs = configs;
    this.#readAt = this.#clock();
    this.#loaded = true;
  }
}
