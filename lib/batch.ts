/**
 * @module
 * Batches: many jobs created together, with one continuation released once when the last of
 * them finishes. Members get deterministic ids (`batch:<id>:<n>`) and are staged as Awaiting
 * until all are written, so a batch that could not be created whole never runs half of itself.
 * Progress is a projection (each member's end-state counts move in its own commits).
 */

import type { BatchCounts, RecurringRecord, Storage } from "../storage/storage.ts";
import {
  ConflictError,
  InvalidOptionError,
  InvalidTransitionError,
  JobExistsError,
  JobNotFoundError,
} from "../storage/errors.ts";
import { appendCommit } from "./changes.ts";
import {
  checkContinueOn,
  createdCommit,
  type EnqueueItem,
  type FirstState,
  type JobWriter,
  prepareJob,
  readItem,
  readItems,
} from "./create.ts";
import { checkLimit, readOptions } from "./options.ts";
import type { ContinueOn } from "./events.ts";
import { checkJobId, type JobRecord, newJobId } from "./job.ts";
import { FINAL_STATES } from "./states.ts";

/** Most jobs in one batch. */
export const MAX_BATCH = 100_000;

/** A stored batch. */
export interface BatchRecord extends RecurringRecord {
  /** Members, `batch:<id>:0` .. `batch:<id>:<total-1>`. */
  total: number;
  /** creating: members being written (none runs); open: running; finished: every member ended
   * and the continuation was released; cancelled: stopped. */
  state: "creating" | "open" | "finished" | "cancelled";
  /** All members were moved from staging (Awaiting) to Enqueued. */
  released: boolean;
  /** The continuation's job id, when there is one. */
  thenId?: string;
  /** Run the continuation after every member succeeded, or after all finished in any way. */
  on: ContinueOn;
  /** When the batch was created (ms since epoch). */
  createdAt: number;
}

/** A batch with its progress. */
export interface BatchStatus {
  /** The stored batch. */
  batch: BatchRecord;
  /** Members now in each end state. */
  counts: BatchCounts;
  /** Members in an end state. */
  done: number;
  /** True once every member is in an end state. */
  finished: boolean;
}

/** Id of member `n` of batch `batchId`. */
export function memberId(batchId: string, n: number): string {
  return `batch:${batchId}:${n}`;
}

/** Id of the continuation of batch `batchId`. */
export function thenId(batchId: string): string {
  return `batch:${batchId}:then`;
}

/** The batch a {@link memberId} or {@link thenId} id belongs to, and which it is. */
export function batchIdOf(id: string): { batchId: string; then: boolean } | undefined {
  const match = /^batch:(.+):(\d+|then)$/.exec(id);
  return match ? { batchId: match[1], then: match[2] === "then" } : undefined;
}

/** Reason a staged member shows while its batch is being created. */
export const STAGED = "waiting for its batch to be created";

/**
 * Reason the continuation shows while it waits: true for its whole wait (while the batch is
 * created and while its members run), so it never goes stale; the job page adds live progress.
 */
export function awaitingReason(batch: Pick<BatchRecord, "id" | "total" | "on">): string {
  const members = batch.total === 1 ? "its 1 member has" : `all ${batch.total} members have`;
  return `awaiting batch ${batch.id}: runs when ${members} ${batch.on}`;
}

/** `TaskFlow.batchStatus`: the batch `id` (checked) and its progress, or null. */
export async function readBatchStatus(storage: Storage, id: string): Promise<BatchStatus | null> {
  checkJobId(thenId(checkJobId(id)));
  return await batchStatus(storage, id);
}

/** `TaskFlow.batches`: the newest batches (at most `limit`, default 200) with their progress. */
export async function listBatches(
  storage: Storage,
  options: { limit?: number } = {},
): Promise<BatchStatus[]> {
  const read = readOptions(options, { call: "batches", allowed: ["limit"] });
  const limit = checkLimit(read.limit, "batches limit") ?? 200;
  const batches = (await storage.batches.list() as BatchRecord[])
    .sort((a, b) => b.createdAt - a.createdAt);
  return await Promise.all(batches.slice(0, limit).map((b) => statusOf(storage, b)));
}

/** The batch and its progress, or null. */
export async function batchStatus(storage: Storage, id: string): Promise<BatchStatus | null> {
  const [batch, counts] = await Promise.all([storage.batches.get(id), storage.batchCounts(id)]);
  return batch ? progressOf(batch as BatchRecord, counts) : null;
}

/** The progress of a batch record already read (one read for its counts). */
export async function statusOf(storage: Storage, batch: BatchRecord): Promise<BatchStatus> {
  return progressOf(batch, await storage.batchCounts(batch.id));
}

function progressOf(batch: BatchRecord, counts: BatchCounts): BatchStatus {
  const done = counts.succeeded + counts.failed + counts.deleted;
  return { batch, counts, done, finished: done >= batch.total };
}

/**
 * Moves staged members (Awaiting) of an open batch to Enqueued, in chunks; idempotent, so a
 * worker's sweep finishes what a crashed producer started. `written` are the members' records
 * as their creator just wrote them (saves reading them back; a member that changed meanwhile
 * fails its compare-and-set and was no longer staged anyway).
 */
export async function releaseMembers(
  storage: Storage,
  batch: BatchRecord,
  now: () => number,
  written?: ReadonlyMap<string, JobRecord>,
): Promise<void> {
  for (let start = 0; start < batch.total; start += 500) {
    const ids = Array.from(
      { length: Math.min(500, batch.total - start) },
      (_, i) => memberId(batch.id, start + i),
    );
    const records = written ? ids.map((id) => written.get(id) ?? null) : await storage.getMany(ids);
    const staged = records.filter((r): r is JobRecord =>
      r?.state === "Awaiting" && r.reason === STAGED
    );
    if (staged.length === 0) continue;
    await storage.append(staged.map((record) => ({
      commits: [
        appendCommit(record, [{
          type: "state",
          at: now(),
          state: "Enqueued",
          reason: `batch ${batch.id} started`,
        }]),
      ],
    })));
  }
}

/**
 * Releases the continuation once every member has finished: Enqueued (or Deleted when `on` is
 * "succeeded" and some member did not succeed). Exactly once: the continuation moves by
 * compare-and-set out of Awaiting. Safe to call any number of times, from anywhere. `written`:
 * see {@link releaseMembers}.
 */
export async function settleBatch(
  storage: Storage,
  id: string,
  now: () => number,
  written?: ReadonlyMap<string, JobRecord>,
): Promise<boolean> {
  const status = await batchStatus(storage, id);
  if (!status || status.batch.state !== "open") return false;
  const { batch, counts } = status;
  if (!batch.released) {
    await releaseMembers(storage, batch, now, written);
    await storage.batches.put(
      { ...batch, version: batch.version + 1, released: true },
      batch.version,
    );
  }
  if (!status.finished) return false;
  const then = batch.thenId ? await storage.get(batch.thenId) : null;
  if (!then || then.state !== "Awaiting") return await markFinished(storage, id);
  const proceed = batch.on === "finished" || counts.succeeded === batch.total;
  const reason = proceed
    ? `batch ${id} finished: ${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.deleted} deleted`
    : `batch ${id} finished with ${counts.failed} failed and ${counts.deleted} deleted; runs only if all succeed`;
  const [result] = await storage.append([{
    commits: [
      appendCommit(then, [{
        type: "state",
        at: now(),
        state: proceed ? "Enqueued" : "Deleted",
        reason,
      }]),
    ],
  }]);
  if (result.ok) await markFinished(storage, id);
  return result.ok;
}

async function markFinished(storage: Storage, id: string): Promise<boolean> {
  const current = await storage.batches.get(id) as BatchRecord | null;
  if (!current || current.state !== "open") return false;
  await storage.batches.put(
    { ...current, version: current.version + 1, state: "finished" },
    current.version,
  );
  return false;
}

/** Settles the batch of `record` when it is a member that has just reached an end state. */
export async function settleMember(
  storage: Storage,
  record: JobRecord,
  now: () => number,
): Promise<void> {
  if (finishedMember(record)) await settleBatch(storage, record.batchId!, now);
}

/** True when `record` is a batch member that has just reached an end state. */
export function finishedMember(record: JobRecord): boolean {
  return record.batchId !== undefined && FINAL_STATES.includes(record.state);
}

/** Options of {@link createBatch}. */
export interface BatchOptions {
  /** A custom batch id. Default: a new time-ordered id. */
  id?: string;
  /** The continuation released when the last member finishes. */
  then?: EnqueueItem;
  /** Run `then` after every member succeeded (default), or after all finished in any way. */
  on?: ContinueOn;
}

/**
 * Creates a batch (see `TaskFlow.batch`): validates every item, stores the batch as
 * "creating", writes the members and the continuation staged (Awaiting), opens the batch and
 * releases the members.
 */
export async function createBatch(
  writer: JobWriter,
  items: readonly EnqueueItem[],
  options: BatchOptions = {},
): Promise<{ id: string; jobIds: string[]; thenId?: string }> {
  const list = readItems(items, "batch");
  if (list.length === 0 || list.length > MAX_BATCH) {
    throw new InvalidOptionError(
      "batch items",
      list.length,
      `must be an array of 1 to ${MAX_BATCH} jobs`,
    );
  }
  const read = readOptions(options, { call: "batch", allowed: ["id", "then", "on"] });
  const on = checkContinueOn(read.on ?? "succeeded");
  const { storage } = writer;
  const id = read.id === undefined ? newJobId(writer.now()) : checkJobId(read.id);
  checkJobId(thenId(checkJobId(id)));
  const first: FirstState = { state: "Awaiting", reason: STAGED };
  // Members and the continuation get their ids from the batch: an id of their own is refused.
  const members = list.map((item, i) =>
    prepareJob(writer, item, {
      first,
      call: "batch",
      where: `items[${i}]`,
      id: false,
      fixedId: memberId(id, i),
    })
  );
  const waiting = awaitingReason({ id, total: list.length, on });
  const thenItem = read.then === undefined ? undefined : readItem(read.then, "batch", "then");
  const then = thenItem
    ? prepareJob(writer, thenItem, {
      first: { state: "Awaiting", reason: waiting },
      call: "batch",
      where: "then",
      id: false,
      fixedId: thenId(id),
    })
    : undefined;
  const at = writer.now();
  const batch: BatchRecord = {
    id,
    version: 1,
    total: list.length,
    state: "creating",
    released: false,
    on,
    createdAt: at,
    ...(then ? { thenId: then.id } : {}),
  };
  if (!await storage.batches.put(batch, 0)) throw new JobExistsError(`batch:${id}`);
  const staged = [
    ...members.map((member) => ({ commits: [createdCommit(member, at, { batchId: id })] })),
    ...then ? [{ commits: [createdCommit(then, at)] }] : [],
  ];
  const results = await storage.append(staged);
  const taken = results.flatMap((r) => r.ok ? [] : r.conflicts);
  if (taken.length) throw new JobExistsError(taken[0]);
  const open = { ...batch, version: 2, state: "open" as const };
  if (!await storage.batches.put(open, 1)) throw new ConflictError(`batch:${id}`, 1);
  // Releases the members (and settles at once if empty), from the records just written.
  const written = new Map(staged.map(({ commits: [commit] }) => [commit.id, commit.record]));
  await settleBatch(storage, id, writer.now, written);
  return { id, jobIds: members.map((m) => m.id), ...(then ? { thenId: then.id } : {}) };
}

/**
 * Cancels a batch: marks it cancelled, then deletes its unfinished members and its
 * continuation through `remove` (the client's delete, without settling).
 */
export async function cancelBatch(
  storage: Storage,
  id: string,
  remove: (jobId: string, reason: string) => Promise<unknown>,
): Promise<BatchStatus> {
  checkJobId(thenId(checkJobId(id)));
  const status = await batchStatus(storage, id);
  if (!status) throw new JobNotFoundError(`batch:${id}`);
  const { batch } = status;
  if (batch.state !== "cancelled") {
    const cancelled = { ...batch, version: batch.version + 1, state: "cancelled" as const };
    if (!await storage.batches.put(cancelled, batch.version)) {
      throw new ConflictError(`batch:${id}`, 1);
    }
  }
  const ids = [
    ...Array.from({ length: batch.total }, (_, i) => memberId(id, i)),
    ...batch.thenId ? [batch.thenId] : [],
  ];
  // A chunk's deletes go together (one group commit); the batch is cancelled already, so
  // there is nothing to settle.
  for (let start = 0; start < ids.length; start += 500) {
    const records = await storage.getMany(ids.slice(start, start + 500));
    await Promise.all(
      records.filter((r): r is JobRecord => r !== null && !FINAL_STATES.includes(r.state))
        .map((record) =>
          remove(record.id, `batch ${id} cancelled`).catch((error) => {
            if (!(error instanceof InvalidTransitionError)) throw error; // finished meanwhile
          })
        ),
    );
  }
  return (await batchStatus(storage, id))!;
}
