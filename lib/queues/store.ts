/**
 * @module
 * Queue limits stored in `storage.settings` (one record per queue, id `queue:<name>`), so every
 * worker and dashboard obeys and shows the same ones; written by compare-and-set.
 */

import type { Counts, RecurringRecord, Storage } from "../../storage/storage.ts";
import type { JobRecord } from "../job.ts";
import type { LimiterUse } from "./limiter.ts";
import { useOf, waitText } from "./wait.ts";
import { ConflictError } from "../../storage/errors.ts";
import { checkQueueName } from "../job.ts";
import {
  configOf,
  isUnlimited,
  mergeConfig,
  type QueueConfig,
  type QueueConfigUpdate,
  type QueueSettings,
  readConfigUpdate,
} from "./config.ts";

/** The settings record id of a queue's limits. */
export function queueSettingsId(name: string): string {
  return `queue:${name}`;
}

const PREFIX = "queue:";
const TRIES = 10;

function settingsOf(record: RecurringRecord): QueueSettings {
  return {
    name: record.id.slice(PREFIX.length),
    ...configOf(record),
    updatedAt: Number(record.updatedAt) || 0,
  };
}

/**
 * Queue limits: `configure`, `get`, `list` (reached as `tf.queues`).
 *
 * @example
 * ```ts
 * import { TaskFlow } from "../mod.ts";
 * const tf = await TaskFlow.open("memory:");
 * await tf.queues.configure("mail", { concurrency: 5, rateLimit: { max: 100, perMs: 1_000 } });
 * await tf.queues.configure("mail", { rateLimit: null }); // removes the rate limit only
 * console.log(await tf.queues.get("mail")); // { name: "mail", concurrency: 5, updatedAt: ... }
 * await tf.close();
 * ```
 */
export class QueuesApi {
  #client: { readonly storage: Storage; readonly now: () => number };

  /** Wraps a client (its storage and clock). */
  constructor(client: { readonly storage: Storage; readonly now: () => number }) {
    this.#client = client;
  }

  /**
   * Changes a queue's limits and returns them as stored. A given field replaces the stored one,
   * `null` removes that limit (`partition: null` all partition limits), an absent field keeps
   * what is stored; a queue left with no limit has no record (`get` returns null).
   */
  async configure(name: string, update: QueueConfigUpdate): Promise<QueueSettings> {
    checkQueueName(name);
    const read = readConfigUpdate(update);
    const { storage, now } = this.#client;
    const id = queueSettingsId(name);
    for (let tries = 0; tries < TRIES; tries++) {
      const current = await storage.settings.get(id);
      const config = mergeConfig(current ? configOf(current) : {}, read);
      const updatedAt = now();
      if (isUnlimited(config)) {
        if (!current || await storage.settings.delete(id, current.version)) {
          return { name, updatedAt };
        }
        continue;
      }
      const record: RecurringRecord = {
        ...config,
        id,
        version: (current?.version ?? 0) + 1,
        updatedAt,
      };
      if (await storage.settings.put(record, current?.version ?? 0)) return settingsOf(record);
    }
    throw new ConflictError(`settings:${id}`, TRIES);
  }

  /** A queue's limits, or null when it has none. */
  async get(name: string): Promise<QueueSettings | null> {
    checkQueueName(name);
    const record = await this.#client.storage.settings.get(queueSettingsId(name));
    return record ? settingsOf(record) : null;
  }

  /**
   * Current use of a queue's limits (jobs running, starts in the rate window), or null when
   * it has none. `counts` saves a read when the caller has them.
   */
  async use(name: string, counts?: Counts): Promise<LimiterUse | null> {
    const settings = await this.get(name);
    if (!settings) return null;
    const { storage, now } = this.#client;
    return await useOf(storage, name, { config: limitsOf(settings), now: now(), counts });
  }

  /** Why an Enqueued job waits under its queue's limits, in words; undefined when none holds it. */
  async waiting(job: JobRecord): Promise<string | undefined> {
    if (job.state !== "Enqueued") return undefined;
    const settings = await this.get(job.queue);
    if (!settings) return undefined;
    const { storage, now } = this.#client;
    return await waitText(storage, job, { config: limitsOf(settings), now: now() });
  }

  /** Every queue that has limits, by name. */
  async list(): Promise<QueueSettings[]> {
    const records = await this.#client.storage.settings.list();
    return records.filter((r) => r.id.startsWith(PREFIX)).map(settingsOf)
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }
}

/** The limits of `config` alone (without name and time), e.g. to compare or print. */
export function limitsOf(settings: QueueSettings | null): QueueConfig {
  if (!settings) return {};
  const { name: _name, updatedAt: _at, ...config } = settings;
  return config;
}
