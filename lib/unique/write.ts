/**
 * @module
 * Writing unique and debounced jobs. The create commit claims the key "expecting no holder", so
 * a free key costs nothing more than a plain enqueue. When the claim is refused, the current
 * holder is read: if it still holds the key (in one of its unique states, or within its ttl)
 * the enqueue is absorbed by it, a `deduplicated` event, or for a debounced job a `debounced`
 * event (the compare-and-set reschedule with the new arguments); otherwise the create is
 * retried expecting that stale holder, which it replaces. Concurrent absorptions of one holder
 * in this process share one commit, so a thousand duplicates do not queue up behind each other.
 */

import type { AppendResult, Change, Commit, Storage } from "../../storage/storage.ts";
import { ConflictError, JobExistsError } from "../../storage/errors.ts";
import { appendCommit, backoff, MAX_TRIES } from "../changes.ts";
import type { NewEvent, StoredDebounce } from "../events.ts";
import type { JobRecord } from "../job.ts";
import type { Json } from "../payload.ts";
import { UNIQUE_STATES } from "./options.ts";

/** What a unique create needs of its writer (see `JobWriter` in create.ts). */
export interface UniqueWriter {
  readonly storage: Storage;
  readonly now: () => number;
  readonly random?: () => number;
  submit?(change: Change): Promise<AppendResult>;
}

/** An enqueue a holder absorbs: its arguments, and its debounce delay when debounced. */
export interface Incoming {
  args: Json;
  debounce?: StoredDebounce;
}

/** A refused unique create to settle. */
export interface UniqueCreate {
  /** The new job's id. */
  id: string;
  /** The key it claims. */
  key: string;
  /** Builds the create commit at a time, claiming the key from `holder`. */
  commit(at: number, holder: string | null): Commit;
  /** The enqueues it stands for: itself, then its duplicates within the same call. */
  incoming: Incoming[];
  /** Throw {@link JobExistsError} instead of returning the holder's id. */
  error: boolean;
}

/** Most events one absorbing commit appends (one waiter may bring more). */
const MAX_ABSORBED = 100;

/**
 * Settles a unique create whose first claim (expecting no holder) was refused: returns the
 * id of the job that now stands for the enqueue, the new one or the holder that absorbed it.
 */
export async function settleUnique(writer: UniqueWriter, job: UniqueCreate): Promise<string> {
  const { storage } = writer;
  for (let tries = 1; tries <= MAX_TRIES; tries++) {
    const holder = await storage.uniqueHolder(job.key);
    const record = holder === null ? null : await storage.get(holder);
    if (record && holdsKey(record, writer.now())) {
      if (job.error) throw new JobExistsError(record.id, job.key);
      if (await absorb(writer, record, job.incoming)) return record.id;
    } else {
      const result = await submitOf(writer)({ commits: [job.commit(writer.now(), holder)] });
      if (result.ok) return job.id;
    }
    await backoff(tries, writer.random);
  }
  throw new ConflictError(job.key, MAX_TRIES);
}

/**
 * The events with which `holder` absorbs `incoming` at `at`: a `debounced` event (its new
 * arguments and due time, bounded by its `maxWaitMs`) for each debounced enqueue of a debounced
 * job, else a `deduplicated` event.
 */
export function absorbedEvents(
  holder: Pick<JobRecord, "createdAt" | "options">,
  incoming: readonly Incoming[],
  at: number,
): NewEvent[] {
  const bounce = holder.options.debounce;
  const latest = bounce?.maxWaitMs === undefined ? Infinity : holder.createdAt + bounce.maxWaitMs;
  return incoming.map((job): NewEvent =>
    bounce && job.debounce
      ? {
        type: "debounced",
        at,
        args: job.args,
        runAt: Math.min(at + job.debounce.delayMs, latest),
      }
      : { type: "deduplicated", at }
  );
}

/** True while `record` holds its unique key at `now`: in one of its states, or within its ttl. */
export function holdsKey(record: JobRecord, now: number): boolean {
  const unique = record.options.unique;
  if (!unique) return false;
  if ((unique.states ?? UNIQUE_STATES).includes(record.state)) return true;
  return unique.ttlMs !== undefined && now < record.createdAt + unique.ttlMs;
}

function submitOf(writer: UniqueWriter): (change: Change) => Promise<AppendResult> {
  return writer.submit
    ? (change) => writer.submit!(change)
    : (change) => writer.storage.append([change]).then((results) => results[0]);
}

interface Waiter {
  incoming: Incoming[];
  resolve(absorbed: boolean): void;
  reject(error: unknown): void;
}

/** Absorptions waiting per storage and holder; one writer drains each holder's queue. */
const queues = new WeakMap<Storage, Map<string, Waiter[]>>();

/**
 * Appends the events absorbing `incoming` to `holder` while it still holds its key; false when
 * it no longer does (the caller then claims the key). Joins the absorptions of the same holder
 * already waiting in this process.
 */
function absorb(writer: UniqueWriter, holder: JobRecord, incoming: Incoming[]): Promise<boolean> {
  let byHolder = queues.get(writer.storage);
  if (!byHolder) queues.set(writer.storage, byHolder = new Map());
  const waiting = byHolder.get(holder.id);
  return new Promise((resolve, reject) => {
    const waiter = { incoming, resolve, reject };
    if (waiting) return waiting.push(waiter);
    const queue = [waiter];
    byHolder.set(holder.id, queue);
    drain(writer, holder, queue).catch((error) => {
      for (const w of queue.splice(0)) w.reject(error);
    }).finally(() => byHolder.delete(holder.id));
  });
}

async function drain(writer: UniqueWriter, first: JobRecord, queue: Waiter[]): Promise<void> {
  const submit = submitOf(writer);
  let record: JobRecord | null = first;
  let tries = 0;
  while (queue.length) {
    if (!record || !holdsKey(record, writer.now())) {
      for (const w of queue.splice(0)) w.resolve(false);
      return;
    }
    let taken = 0, events = 0;
    while (
      taken < queue.length && (taken === 0 || events + queue[taken].incoming.length <= MAX_ABSORBED)
    ) {
      events += queue[taken++].incoming.length;
    }
    const at = writer.now();
    const incoming = queue.slice(0, taken).flatMap((w) => w.incoming);
    const result = await submit({
      commits: [appendCommit(record, absorbedEvents(record, incoming, at))],
    });
    if (result.ok) {
      for (const w of queue.splice(0, taken)) w.resolve(true);
      tries = 0;
    } else {
      if (++tries > MAX_TRIES) throw new ConflictError(first.id, MAX_TRIES);
      await backoff(tries, writer.random);
    }
    if (queue.length) record = await writer.storage.get(first.id);
  }
}
