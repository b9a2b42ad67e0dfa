/**
 * @module
 * Writing unique jobs. The create commit claims the key "expecting no holder", so a free key
 * costs nothing more than a plain enqueue. When the claim is refused, the current holder is
 * read: if it still holds the key (in one of its unique states, or within its ttl) the enqueue
 * is absorbed, a `deduplicated` event on the holder; otherwise the create is retried expecting
 * that stale holder, which it replaces. Concurrent absorptions of one holder in this process
 * share one compare-and-set commit, so a thousand duplicates do not queue up behind each other.
 */

import type { AppendResult, Change, Commit, Storage } from "../../storage/storage.ts";
import { ConflictError, JobExistsError } from "../../storage/errors.ts";
import { appendCommit, backoff, MAX_TRIES } from "../changes.ts";
import type { NewEvent } from "../events.ts";
import type { JobRecord } from "../job.ts";
import { UNIQUE_STATES } from "./options.ts";

/** What a unique create needs of its writer (see `JobWriter` in create.ts). */
export interface UniqueWriter {
  readonly storage: Storage;
  readonly now: () => number;
  readonly random?: () => number;
  submit?(change: Change): Promise<AppendResult>;
}

/** A refused unique create to settle: its commit builder and what duplicates it carries. */
export interface UniqueCreate {
  /** The new job's id. */
  id: string;
  /** The key it claims. */
  key: string;
  /** Builds the create commit at a time, claiming the key from `holder`. */
  commit(at: number, holder: string | null): Commit;
  /** Enqueues absorbed besides itself (duplicates within the same call). */
  duplicates: number;
  /** Throw {@link JobExistsError} instead of returning the holder's id. */
  error: boolean;
}

/** Most `deduplicated` events one commit appends (the rest go in the next one). */
const MAX_ABSORBED = 100;

/**
 * Settles a unique create whose first claim (expecting no holder) was refused: returns the
 * id of the job that now stands for the enqueue, the new one or the holder that absorbed it.
 */
export async function settleUnique(writer: UniqueWriter, job: UniqueCreate): Promise<string> {
  const { storage } = writer;
  const submit = writer.submit
    ? (change: Change) => writer.submit!(change)
    : (change: Change) => storage.append([change]).then((results) => results[0]);
  for (let tries = 1; tries <= MAX_TRIES; tries++) {
    const holder = await storage.uniqueHolder(job.key);
    const record = holder === null ? null : await storage.get(holder);
    if (record && holdsKey(record, writer.now())) {
      if (job.error) throw new JobExistsError(record.id, job.key);
      if (await absorb(writer, record, job.duplicates + 1)) return record.id;
    } else {
      const result = await submit({ commits: [job.commit(writer.now(), holder)] });
      if (result.ok) return job.id;
    }
    await backoff(tries, writer.random);
  }
  throw new ConflictError(job.key, MAX_TRIES);
}

interface Waiter {
  count: number;
  resolve(absorbed: boolean): void;
  reject(error: unknown): void;
}

/** Absorptions waiting per storage and holder; one writer drains each holder's queue. */
const queues = new WeakMap<Storage, Map<string, Waiter[]>>();

/**
 * Appends `count` `deduplicated` events to `holder` while it still holds its key; false when
 * it no longer does (the caller then claims the key). Joins the absorptions of the same
 * holder already waiting in this process.
 */
function absorb(writer: UniqueWriter, holder: JobRecord, count: number): Promise<boolean> {
  let byHolder = queues.get(writer.storage);
  if (!byHolder) queues.set(writer.storage, byHolder = new Map());
  const waiting = byHolder.get(holder.id);
  return new Promise((resolve, reject) => {
    const waiter = { count, resolve, reject };
    if (waiting) return waiting.push(waiter);
    const queue = [waiter];
    byHolder.set(holder.id, queue);
    drain(writer, holder, queue).catch((error) => {
      for (const w of queue.splice(0)) w.reject(error);
    }).finally(() => byHolder.delete(holder.id));
  });
}

async function drain(writer: UniqueWriter, first: JobRecord, queue: Waiter[]): Promise<void> {
  const { storage } = writer;
  const submit = writer.submit
    ? (change: Change) => writer.submit!(change)
    : (change: Change) => storage.append([change]).then((results) => results[0]);
  let record: JobRecord | null = first;
  let tries = 0;
  while (queue.length) {
    if (!record || !holdsKey(record, writer.now())) {
      for (const w of queue.splice(0)) w.resolve(false);
      return;
    }
    // Up to MAX_ABSORBED events from the front of the queue (a big waiter spans commits).
    const parts: Array<[Waiter, number]> = [];
    let events = 0;
    for (const w of queue) {
      if (events === MAX_ABSORBED) break;
      const part = Math.min(w.count, MAX_ABSORBED - events);
      parts.push([w, part]);
      events += part;
    }
    const at = writer.now();
    const added: NewEvent[] = Array.from({ length: events }, () => ({ type: "deduplicated", at }));
    const result = await submit({ commits: [appendCommit(record, added)] });
    if (result.ok) {
      for (const [w, part] of parts) w.count -= part;
      while (queue.length && queue[0].count === 0) queue.shift()!.resolve(true);
      record = null;
      tries = 0;
    } else {
      if (++tries > MAX_TRIES) throw new ConflictError(first.id, MAX_TRIES);
      await backoff(tries, writer.random);
    }
    if (queue.length) record = await storage.get(first.id);
  }
}

/** True while `record` holds its unique key at `now`: in one of its states, or within its ttl. */
export function holdsKey(record: JobRecord, now: number): boolean {
  const unique = record.options.unique;
  if (!unique) return false;
  if ((unique.states ?? UNIQUE_STATES).includes(record.state)) return true;
  return unique.ttlMs !== undefined && now < record.createdAt + unique.ttlMs;
}
