/**
 * @module
 * Creating jobs: validating a job's name, arguments and options, then building and writing the
 * commit that creates it. The client, the recurring scheduler and batches all create through here.
 */

import type { AppendResult, Change, Commit, Storage } from "../storage/storage.ts";
import {
  ConflictError,
  InvalidOptionError,
  JobExistsError,
  JobNotFoundError,
} from "../storage/errors.ts";
import { appendCommit, backoff, createCommit, MAX_TRIES, releaseCommits } from "./changes.ts";
import type {
  BackoffSpec,
  ContinueOn,
  CreatedEvent,
  DependencyFailure,
  NewEvent,
  StoredOptions,
} from "./events.ts";
import {
  checkJobId,
  DEFAULT_QUEUE,
  type JobDefinition,
  jobOf,
  newJobId,
  readJobOptions,
} from "./job.ts";
import { checkDelay, checkTime, guard, readOptions } from "./options.ts";
import { checkSize, toJson } from "./payload.ts";
import type { JobKeep } from "./retention/keep.ts";
import { partitionOf } from "./queues/partition.ts";
import { expiryOf } from "./expiry.ts";
import type { State } from "./states.ts";
import {
  type DebounceOptions,
  flowOf,
  type FlowSpec,
  type UniqueOptions,
} from "./unique/options.ts";
import { activeTrace } from "./telemetry/trace.ts";
import { absorbedEvents, type Incoming, settleUnique } from "./unique/write.ts";

/** A job to enqueue: its definition, or just its name (producers need no handler code). */
export type JobRef = JobDefinition<any, any> | string;

/** Options of one enqueue; absent ones come from the job's definition. */
export interface EnqueueOptions {
  /** A custom job id (refused with `JOB_EXISTS` if taken). Default: a new time-ordered id. */
  id?: string;
  /** Queue the job goes to. */
  queue?: string;
  /** Higher runs first within its queue; −1000..1000, default 0. */
  priority?: number;
  /** Total attempts allowed, first run included. */
  attempts?: number;
  /** Delay rule between attempts. */
  backoff?: BackoffSpec;
  /** Abort the handler and fail the attempt after this many ms. */
  timeoutMs?: number;
  /** How long the job is kept once finished, overriding the retention policy. */
  keep?: JobKeep;
  /** The partition key (1–128 characters, e.g. a tenant id) the queue's partition limits apply to. */
  partition?: string;
  /**
   * At most one job with this key while it is pending: a duplicate enqueue creates nothing and
   * returns the existing job's id (or throws `JobExistsError` with `onDuplicate: "error"`).
   */
  unique?: Omit<UniqueOptions, "key"> & { key?: string };
  /**
   * Run once per key, `delayMs` after the last enqueue with it and with its arguments (at most
   * `maxWaitMs` after the first): enqueues meanwhile reschedule the one pending job.
   */
  debounce?: Omit<DebounceOptions, "key"> & { key: string };
  /** Not started within this many ms, the job never runs: it goes to Deleted, "expired". */
  expiresInMs?: number;
  /** Not started by this time (a `Date` or ms since epoch), the job never runs (as above). */
  expiresAt?: Date | number;
  /**
   * Ids of jobs this one waits for (`enqueue`, `schedule`, `enqueueMany`, flow nodes): it stays
   * Awaiting until every one is in a final state (one already final counts at once).
   */
  dependsOn?: string[];
  /** When a dependency ends Failed or Deleted: `"fail"` (default), `"delete"` or `"run"`. */
  onDependencyFailure?: DependencyFailure;
  /**
   * `enqueue` and `schedule` only: the caller's open transaction of the storage's driver
   * (PostgreSQL: a `pg` `Client` or `PoolClient` after BEGIN); the job exists if and only if it
   * commits. Other storages refuse it with `TRANSACTION_NOT_SUPPORTED`.
   */
  transaction?: unknown;
}

/** When a scheduled job becomes due: after `delayMs`, or at `at`. */
export type ScheduleOptions =
  & EnqueueOptions
  & ({ delayMs: number; at?: never } | { at: Date | number; delayMs?: never });

/** Options of a continuation. */
export interface ContinueOptions extends EnqueueOptions {
  /** Run after the parent succeeded (default), or after it reached any end state. */
  on?: ContinueOn;
}

/** One item of `TaskFlow.enqueueMany` or of a batch. */
export interface EnqueueItem {
  /** The job to enqueue: its definition or its name. */
  job: JobRef;
  /** The arguments passed to the handler (must be JSON-serializable). */
  args: unknown;
  /** Options of this enqueue. */
  options?: EnqueueOptions;
}

/**
 * Most continuations and dependents one job may have together (all are released in its own
 * commit); fan-out beyond that belongs in batches.
 */
export const MAX_CONTINUATIONS = 64;

/** What jobs are created through: a storage, its clock, and optionally a group committer. */
export interface JobWriter {
  /** The storage written to. */
  readonly storage: Storage;
  /** The clock that stamps the events. */
  readonly now: () => number;
  /** Jitter of the wait after a lost race (default `Math.random`). */
  readonly random?: () => number;
  /** Writes one change (a group committer); without it, `storage.append` is called directly. */
  submit?(change: Change): Promise<AppendResult>;
}

/** The state a new job starts in. */
export interface FirstState {
  /** Enqueued, Scheduled or Awaiting. */
  state: State;
  /** Scheduled: when it becomes due. */
  runAt?: number;
  /** Why it waits (staged batch members). */
  reason?: string;
}

/** A job validated and ready to write; its events get their time when written. */
export interface PreparedJob {
  /** The job's id. */
  id: string;
  /** The caller chose the id, so it may already be taken. */
  custom: boolean;
  /** The created event, without its time. */
  created: Omit<CreatedEvent, "seq">;
  /** The state it starts in. */
  first: FirstState;
  /** A unique or debounced job: its key, and how it treats a duplicate enqueue. */
  unique?: FlowSpec;
}

/**
 * Validates `item` (name, arguments, options; nothing is written) and settles its id, queue,
 * priority and stored options from the item and its definition's defaults. `call` names the
 * call and `where` the item in error messages; `extra` are option keys the call itself handled
 * (e.g. `delayMs`); `id: false` refuses a custom id (batch members, recurring occurrences get
 * theirs from the caller through `fixedId`).
 */
export function prepareJob(
  writer: JobWriter,
  item: EnqueueItem,
  how: {
    first: FirstState;
    call?: string;
    where?: string;
    extra?: readonly string[];
    id?: boolean;
    fixedId?: string;
  },
): PreparedJob {
  const { job, args } = item;
  const { first, call = "enqueue", where = "options", extra = [], fixedId } = how;
  const { name, defaults } = jobOf(job);
  const options = readJobOptions(item.options, {
    call,
    where,
    extra: how.id === false ? [...extra, "expiresAt"] : ["id", "expiresAt", ...extra],
  });
  if (typeof options.backoff === "function") {
    throw new InvalidOptionError(
      `${where}.backoff`,
      "function",
      "a function cannot be stored; set it in defineJob",
    );
  }
  const custom = fixedId ?? options.id;
  const id = custom === undefined ? newJobId(writer.now()) : checkJobId(custom);
  const json = toJson(args, "args");
  checkSize("args", json, writer.storage.limits.args);
  const stored: StoredOptions = {};
  const attempts = options.attempts ?? defaults.attempts;
  if (attempts !== undefined) stored.attempts = attempts;
  const retry = options.backoff ??
    (typeof defaults.backoff === "function" ? undefined : defaults.backoff);
  if (retry !== undefined) stored.backoff = retry as BackoffSpec;
  const timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
  if (timeoutMs !== undefined) stored.timeoutMs = timeoutMs;
  const keep = options.keep ?? defaults.keep;
  if (keep !== undefined) stored.keep = keep;
  const expiresAt = expiryOf(options, defaults, { where, now: writer.now() });
  if (expiresAt !== undefined) stored.expiresAt = expiresAt;
  const partition = partitionOf(options.partition, defaults.partition, { args: json, name, where });
  if (partition !== undefined) stored.partition = partition;
  const flow = flowOf(options, defaults, {
    name,
    args: json,
    where,
    call,
    custom: options.id !== undefined,
    fixed: how.id === false,
  });
  if (flow) {
    stored.unique = flow.unique;
    if (flow.debounce) stored.debounce = flow.debounce;
  }
  const created: Omit<CreatedEvent, "seq"> = {
    type: "created",
    at: 0,
    name,
    queue: options.queue ?? defaults.queue ?? DEFAULT_QUEUE,
    args: json,
    priority: options.priority ?? defaults.priority ?? 0,
    options: stored,
  };
  // The span active now (the call's PRODUCER span, or a handler's attempt span) is the origin.
  const trace = activeTrace();
  if (trace) Object.assign(created, trace);
  const prepared: PreparedJob = { id, custom: custom !== undefined, created, first };
  if (flow) prepared.unique = flow.spec;
  return prepared;
}

/** Reads the items of `enqueueMany` or a batch: an array of `{ job, args, options? }`. */
export function readItems(items: unknown, call: string): EnqueueItem[] {
  const list = guard("items", () => Array.isArray(items) ? [...items] : null);
  if (!list) throw new InvalidOptionError("items", items, `${call} takes an array of items`);
  return list.map((item, i) => readItem(item, call, `items[${i}]`));
}

/** Reads one `{ job, args, options? }` item. */
export function readItem(item: unknown, call: string, where: string): EnqueueItem {
  const read = readOptions(item, { call, where, allowed: ["job", "args", "options"] });
  if (item === undefined || !("job" in read)) {
    throw new InvalidOptionError(where, item, "must be an object { job, args, options? }");
  }
  return { job: read.job as JobRef, args: read.args, options: read.options as EnqueueOptions };
}

/** The commit creating `job` at `at`: its created event (with `extra`) and its first state. */
export function createdCommit(
  job: PreparedJob,
  at: number,
  extra: Pick<CreatedEvent, "batchId"> = {},
): Commit {
  const { state, runAt, reason } = job.first;
  const first: NewEvent = runAt !== undefined
    ? { type: "state", at, state, data: { runAt } }
    : reason !== undefined
    ? { type: "state", at, state, reason }
    : { type: "state", at, state };
  return createCommit(job.id, { ...job.created, at, ...extra }, [first]);
}

/**
 * Writes prepared jobs (one atomic write per job, as few calls as the backend allows) and
 * returns their ids; refuses with {@link JobExistsError} an id given twice or already taken.
 * A unique job whose key is held returns the holder's id (see lib/unique/write.ts); a unique
 * job repeating the key of an earlier one of the same call is absorbed by that one.
 */
export async function createJobs(writer: JobWriter, jobs: PreparedJob[]): Promise<string[]> {
  if (jobs.length > 1) {
    const seen = new Set<string>();
    for (const { id } of jobs) {
      if (seen.has(id)) throw new JobExistsError(id);
      seen.add(id);
    }
  }
  const custom = jobs.filter((p) => p.custom).map((p) => p.id);
  if (custom.length) await refuseTaken(writer.storage, custom);
  // One job (an awaited enqueue) repeats no key: no leaders or duplicates to work out.
  const { leaders, duplicates } = jobs.length === 1 ? ALONE : sameKeys(jobs);
  const written = jobs.filter((_, i) => leaders[i] === i);
  const incoming = (job: PreparedJob) => [job, ...duplicates.get(job.id) ?? []].map(incomingOf);
  const at = writer.now();
  const changes = written.map((job) => ({
    commits: [claimingCommit(job, at, null, duplicates.get(job.id))],
  }));
  const results = written.length === 1 && writer.submit
    ? [await writer.submit(changes[0])]
    : await writer.storage.append(changes);
  // Every job written (the common case): each stands for itself and the jobs it absorbed.
  if (results.every((r) => r.ok)) return jobs.map((_, i) => jobs[leaders[i]].id);
  const taken = results.flatMap((r, i) => r.ok || written[i].unique ? [] : r.conflicts);
  if (taken.length) throw new JobExistsError(taken[0]);
  const standing = new Map<string, string>();
  await Promise.all(written.map(async (job, i) => {
    if (results[i].ok) return standing.set(job.id, job.id);
    const stands = await settleUnique(writer, {
      id: job.id,
      key: job.unique!.key,
      incoming: incoming(job),
      error: job.unique!.error,
      commit: (at, holder) => claimingCommit(job, at, holder, duplicates.get(job.id)),
    });
    standing.set(job.id, stands);
  }));
  return jobs.map((_, i) => standing.get(jobs[leaders[i]].id)!);
}

function incomingOf(job: PreparedJob): Incoming {
  const debounce = job.unique?.debounce;
  return debounce ? { args: job.created.args, debounce } : { args: job.created.args };
}

/** What `sameKeys` gives for a call of one job (never changed by its users). */
const ALONE: { leaders: number[]; duplicates: Map<string, PreparedJob[]> } = {
  leaders: [0],
  duplicates: new Map(),
};

/**
 * For each job, the index of the job of the call that stands for it (itself, or the first one
 * with its unique key), and the later ones each first one absorbs.
 */
function sameKeys(
  jobs: PreparedJob[],
): { leaders: number[]; duplicates: Map<string, PreparedJob[]> } {
  const first = new Map<string, number>();
  const duplicates = new Map<string, PreparedJob[]>();
  const leaders = jobs.map((job, i) => {
    if (!job.unique) return i;
    const leader = first.get(job.unique.key);
    if (leader === undefined) return first.set(job.unique.key, i), i;
    if (job.unique.error) throw new JobExistsError(jobs[leader].id, job.unique.key);
    const id = jobs[leader].id;
    duplicates.set(id, [...duplicates.get(id) ?? [], job]);
    return leader;
  });
  return { leaders, duplicates };
}

/**
 * The create commit of `job` at `at`; a unique one claims its key from `holder` and absorbs
 * `duplicates` (later enqueues of the same call, see `absorbedEvents`); a debounced one is due
 * `delayMs` later (at most `maxWaitMs`).
 */
function claimingCommit(
  job: PreparedJob,
  at: number,
  holder: string | null,
  duplicates: PreparedJob[] = [],
): Commit {
  if (!job.unique) return createdCommit(job, at);
  const bounce = job.unique.debounce;
  const delay = bounce && Math.min(bounce.delayMs, bounce.maxWaitMs ?? Infinity);
  const commit = createdCommit(
    bounce ? { ...job, first: { state: "Scheduled", runAt: at + delay! } } : job,
    at,
  );
  const claim = duplicates.length
    ? createCommit(job.id, commit.events[0] as CreatedEvent, [
      commit.events[1],
      ...absorbedEvents(commit.record, duplicates.map(incomingOf), at),
    ])
    : commit;
  claim.unique = { key: job.unique.key, holder };
  return claim;
}

/**
 * Writes `job` as a continuation of `parentId` (Awaiting, or moved on at once when the parent
 * has already finished), in one commit with the parent's `continuation` event.
 */
export async function createContinuation(
  writer: JobWriter,
  parentId: string,
  job: PreparedJob & { on: ContinueOn },
): Promise<string> {
  const { id, on } = job;
  if (job.custom) await refuseTaken(writer.storage, [id]);
  const submit = writer.submit
    ? (change: Change) => writer.submit!(change)
    : (change: Change) => writer.storage.append([change]).then((results) => results[0]);
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const parent = await writer.storage.get(parentId);
    if (!parent) throw new JobNotFoundError(parentId);
    if (parent.continuations.length + (parent.dependents?.length ?? 0) >= MAX_CONTINUATIONS) {
      throw new InvalidOptionError(
        "continueWith parent",
        parentId,
        `already has ${MAX_CONTINUATIONS} continuations and dependents, the most one job may have`,
      );
    }
    const at = writer.now();
    const created = { ...job.created, at, parentId, on };
    const parentCommit = appendCommit(parent, [{ type: "continuation", at, childId: id, on }]);
    let child = createCommit(id, created, [{ type: "state", at, state: "Awaiting" }]);
    const [release] = releaseCommits(parentCommit.record, [child.record], at);
    if (release) child = createCommit(id, created, [child.events[1], release.events[0]]);
    const result = await submit({ commits: [parentCommit, child] });
    if (result.ok) return id;
    if (result.conflicts.includes(id)) throw new JobExistsError(id);
    await backoff(tries, writer.random);
  }
  throw new ConflictError(parentId, MAX_TRIES);
}

/** Throws {@link JobExistsError} for the first of `ids` that is taken. */
export async function refuseTaken(storage: Storage, ids: string[]): Promise<void> {
  if (!ids.length) return;
  const existing = await storage.getMany(ids);
  const index = existing.findIndex((r) => r !== null);
  if (index >= 0) throw new JobExistsError(ids[index]);
}

/** Throws unless `on` is a continuation condition. */
export function checkContinueOn(on: unknown): ContinueOn {
  if (on !== "succeeded" && on !== "finished") {
    throw new InvalidOptionError("on", on, 'must be "succeeded" or "finished"');
  }
  return on;
}

/**
 * The due time of a schedule from its options (already read): `now` + `delayMs`, or `at`;
 * throws when neither or both are given, or when the time is out of bounds.
 */
export function scheduledAt(options: Record<string, unknown>, now: () => number): number {
  const { delayMs, at } = options;
  if ((delayMs === undefined) === (at === undefined)) {
    throw new InvalidOptionError(
      "schedule options",
      { delayMs, at },
      "give exactly one of delayMs or at",
    );
  }
  const time = now();
  if (delayMs !== undefined) return time + checkDelay(delayMs, "delayMs");
  return checkTime(at, "at", time);
}
