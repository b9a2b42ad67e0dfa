/**
 * @module
 * The TaskFlow client: what producers (and the dashboard) use to create and operate jobs.
 * It validates everything before writing, so bad input gets a typed error and writes nothing.
 */

import { openStorage, type OpenStorageOptions } from "../storage/open.ts";
import type { AppendResult, Change, Counts, ListQuery, Page, Storage } from "../storage/storage.ts";
import {
  appendCommit,
  backoff,
  createCommit,
  MAX_TRIES,
  releaseCommits,
  updateJob,
} from "./changes.ts";
import {
  ConflictError,
  InvalidOptionError,
  InvalidTransitionError,
  JobExistsError,
  JobNotFoundError,
} from "../storage/errors.ts";
import type {
  BackoffSpec,
  ContinueOn,
  CreatedEvent,
  JobEvent,
  NewEvent,
  StoredOptions,
} from "./events.ts";
import {
  type BatchRecord,
  type BatchStatus,
  batchStatus,
  finishedMember,
  memberId,
  settleBatch,
  STAGED,
  thenId,
} from "./batch.ts";
import { GroupCommitter } from "./group_commit.ts";
import { RecurringApi } from "./recurring.ts";
import {
  checkDefaults,
  checkJobId,
  checkJobName,
  DEFAULT_QUEUE,
  isJobDefinition,
  type JobDefinition,
  type JobRecord,
  newJobId,
} from "./job.ts";
import { checkSize, toJson } from "./payload.ts";
import { FINAL_STATES, isState, type State } from "./states.ts";
import type { Resolution, ServerInfo, TimelinePoint } from "../storage/storage.ts";
import { RESOLUTIONS } from "../storage/storage.ts";
import { statusOf } from "./batch.ts";
import type { Lease } from "./projection.ts";

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

/** One item of {@link TaskFlow.enqueueMany}. */
export interface EnqueueItem {
  /** The job to enqueue: its definition or its name. */
  job: JobRef;
  /** The arguments passed to the handler (must be JSON-serializable). */
  args: unknown;
  /** Options of this enqueue. */
  options?: EnqueueOptions;
}

/** Options of {@link TaskFlow.open}. */
export interface TaskFlowOptions extends OpenStorageOptions {
  /** The clock (ms since epoch); tests inject one. */
  now?: () => number;
}

interface PreparedJob {
  id: string;
  /** The caller chose the id, so it may already be taken. */
  custom: boolean;
  created: Omit<CreatedEvent, "seq">;
  first: { state: State; runAt?: number };
}

/** Most jobs in one batch. */
export const MAX_BATCH = 100_000;

/** Most continuations one job may have; fan-out beyond that belongs in batches. */
export const MAX_CONTINUATIONS = 64;

/**
 * The TaskFlow client.
 *
 * @example
 * ```ts
 * import { defineJob, TaskFlow } from "./mod.ts";
 * const hello = defineJob("hello", (args: { name: string }) => `hello ${args.name}`);
 * const tf = await TaskFlow.open("memory:");
 * const id = await tf.enqueue(hello, { name: "Ada" });
 * console.log((await tf.get(id))?.state); // "Enqueued"
 * await tf.close();
 * ```
 */
export class TaskFlow {
  /** The storage this client reads and writes. */
  readonly storage: Storage;
  /** The clock used to stamp events. */
  readonly now: () => number;
  /** Recurring jobs: `upsert`, `remove`, `trigger`, `pause`, `resume`, `list`, `get`. */
  readonly recurring: RecurringApi;
  #committer: GroupCommitter;

  /** Wraps an open storage. Most callers use {@link TaskFlow.open}. */
  constructor(storage: Storage, options: { now?: () => number } = {}) {
    this.storage = storage;
    this.now = options.now ?? Date.now;
    this.#committer = new GroupCommitter(storage);
    this.recurring = new RecurringApi(this);
  }

  /**
   * Opens TaskFlow on a storage URL (`memory:`, `kv:`, `kv:<path>`, `kv::memory:`,
   * `kv:https://...`) or an already open {@link Storage}. Without a URL: `kv:./data/taskflow.sqlite`,
   * or `kv:` on Deno Deploy.
   */
  static async open(url?: string | Storage, options: TaskFlowOptions = {}): Promise<TaskFlow> {
    const storage = typeof url === "object" && url !== null ? url : await openStorage(url, options);
    return new TaskFlow(storage, options);
  }

  /** Writes a change through the group committer (shared by every caller of this client). */
  submit(change: Change): Promise<AppendResult> {
    return this.#committer.submit(change);
  }

  /** Creates a job ready to run now; returns its id. */
  async enqueue(job: JobRef, args: unknown, options: EnqueueOptions = {}): Promise<string> {
    const [id] = await this.#create([this.#prepare(job, args, options, { state: "Enqueued" })]);
    return id;
  }

  /**
   * Creates many jobs in as few atomic writes as the backend allows (all of them in one on
   * memory; about 60 per write on Deno KV). Every item is validated before anything is written.
   */
  async enqueueMany(items: readonly EnqueueItem[]): Promise<string[]> {
    if (!Array.isArray(items)) {
      throw new InvalidOptionError("items", typeof items, "must be an array");
    }
    const prepared = items.map((item, i) =>
      this.#prepare(
        item?.job,
        item?.args,
        item?.options ?? {},
        { state: "Enqueued" },
        `items[${i}]`,
      )
    );
    return await this.#create(prepared);
  }

  /** Creates a job that becomes due after `delayMs` or at `at`; returns its id. */
  async schedule(job: JobRef, args: unknown, options: ScheduleOptions): Promise<string> {
    const runAt = this.#runAt(options);
    const [id] = await this.#create([
      this.#prepare(job, args, options, { state: "Scheduled", runAt }),
    ]);
    return id;
  }

  /**
   * Creates a continuation of `parentId`: it waits in Awaiting and is enqueued when the parent
   * succeeds (`on: "succeeded"`, the default; deleted if the parent fails or is deleted) or
   * reaches any end state (`on: "finished"`). If the parent has already finished it moves on
   * at once.
   */
  async continueWith(
    parentId: string,
    job: JobRef,
    args: unknown,
    options: ContinueOptions = {},
  ): Promise<string> {
    checkJobId(parentId);
    const on = options.on ?? "succeeded";
    if (on !== "succeeded" && on !== "finished") {
      throw new InvalidOptionError("on", on, 'must be "succeeded" or "finished"');
    }
    const prepared = this.#prepare(job, args, options, { state: "Awaiting" });
    const { id } = prepared;
    if (prepared.custom) await this.#refuseTaken([id]);
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const parent = await this.storage.get(parentId);
      if (!parent) throw new JobNotFoundError(parentId);
      if (parent.continuations.length >= MAX_CONTINUATIONS) {
        throw new InvalidOptionError(
          "continueWith parent",
          parentId,
          `already has ${MAX_CONTINUATIONS} continuations, the most one job may have`,
        );
      }
      const at = this.now();
      const created = { ...prepared.created, at, parentId, on };
      const parentCommit = appendCommit(parent, [{ type: "continuation", at, childId: id, on }]);
      let child = createCommit(id, created, [{ type: "state", at, state: "Awaiting" }]);
      const [release] = releaseCommits(parentCommit.record, [child.record], at);
      if (release) child = createCommit(id, created, [child.events[1], release.events[0]]);
      const result = await this.submit({ commits: [parentCommit, child] });
      if (result.ok) return id;
      if (result.conflicts.includes(id)) throw new JobExistsError(id);
      await backoff(tries);
    }
    throw new ConflictError(parentId, MAX_TRIES);
  }

  /** Moves a job back to Enqueued (from any state the transition table allows), resetting its attempts. */
  async requeue(id: string, options: { reason?: string } = {}): Promise<JobRecord> {
    checkJobId(id);
    const reason = options.reason ?? "requeued";
    return await updateJob(
      this.storage,
      (c) => this.submit(c),
      id,
      (record) =>
        appendCommit(record, [{
          type: "state",
          at: this.now(),
          state: "Enqueued",
          reason,
          data: { resetAttempts: true },
        }]),
      this.now,
    );
  }

  /** Moves a job to Deleted; a running handler's signal is aborted by its worker. */
  async delete(id: string, options: { reason?: string } = {}): Promise<JobRecord> {
    checkJobId(id);
    const reason = options.reason ?? "deleted";
    const record = await this.#markDeleted(id, reason);
    if (finishedMember(record)) await settleBatch(this.storage, record.batchId!, this.now);
    return record;
  }

  #markDeleted(id: string, reason: string): Promise<JobRecord> {
    return updateJob(
      this.storage,
      (c) => this.submit(c),
      id,
      (record) =>
        appendCommit(record, [{ type: "state", at: this.now(), state: "Deleted", reason }]),
      this.now,
    );
  }

  /**
   * Creates a batch: every item as a job, and optionally a continuation (`then`) released once
   * when the last one finishes — after all succeeded (`on: "succeeded"`, the default; else it is
   * deleted) or after all finished in any way (`on: "finished"`). Items are validated first; a
   * large batch is written in several atomic writes, staged so that none runs until all exist.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const { id, jobIds } = await tf.batch(
   *   [{ job: "resize", args: { image: 1 } }, { job: "resize", args: { image: 2 } }],
   *   { then: { job: "notify", args: { album: 7 } } },
   * );
   * console.log(id, jobIds.length, (await tf.batchStatus(id))?.done);
   * ```
   */
  async batch(
    items: readonly EnqueueItem[],
    options: { id?: string; then?: EnqueueItem; on?: ContinueOn } = {},
  ): Promise<{ id: string; jobIds: string[]; thenId?: string }> {
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BATCH) {
      throw new InvalidOptionError(
        "batch items",
        Array.isArray(items) ? items.length : typeof items,
        `must be an array of 1 to ${MAX_BATCH} jobs`,
      );
    }
    const on = options.on ?? "succeeded";
    if (on !== "succeeded" && on !== "finished") {
      throw new InvalidOptionError("on", on, 'must be "succeeded" or "finished"');
    }
    const id = options.id ?? newJobId(this.now());
    checkJobId(thenId(id));
    const stage = { state: "Awaiting" as State };
    const members = items.map((item, i) =>
      this.#prepare(
        item?.job,
        item?.args,
        { ...item?.options ?? {}, id: memberId(id, i) },
        stage,
        `items[${i}]`,
      )
    );
    const then = options.then
      ? this.#prepare(
        options.then.job,
        options.then.args,
        { ...options.then.options ?? {}, id: thenId(id) },
        stage,
        "then",
      )
      : undefined;
    const at = this.now();
    const batch: BatchRecord = {
      id,
      version: 1,
      total: items.length,
      state: "creating",
      released: false,
      on,
      createdAt: at,
      ...(then ? { thenId: then.id } : {}),
    };
    if (!await this.storage.batches.put(batch, 0)) throw new JobExistsError(`batch:${id}`);
    const staged = [...members, ...then ? [then] : []].map(({ id: jobId, created }) => ({
      commits: [
        createCommit(
          jobId,
          jobId === thenId(id) ? { ...created, at } : { ...created, at, batchId: id },
          [
            { type: "state", at, state: "Awaiting", reason: STAGED },
          ],
        ),
      ],
    }));
    const results = await this.storage.append(staged);
    const taken = results.flatMap((r) => r.ok ? [] : r.conflicts);
    if (taken.length) throw new JobExistsError(taken[0]);
    const open = { ...batch, version: 2, state: "open" as const };
    if (!await this.storage.batches.put(open, 1)) throw new ConflictError(`batch:${id}`, 1);
    // Releases the members (and settles at once if empty), from the records just written.
    const written = new Map(staged.map(({ commits: [commit] }) => [commit.id, commit.record]));
    await settleBatch(this.storage, id, this.now, written);
    return { id, jobIds: members.map((m) => m.id), ...(then ? { thenId: then.id } : {}) };
  }

  /** A batch and its progress, or null. */
  async batchStatus(id: string): Promise<BatchStatus | null> {
    checkJobId(thenId(id));
    return await batchStatus(this.storage, id);
  }

  /** Cancels a batch: deletes its unfinished members and its continuation. */
  async cancelBatch(id: string): Promise<BatchStatus> {
    checkJobId(thenId(id));
    const status = await batchStatus(this.storage, id);
    if (!status) throw new JobNotFoundError(`batch:${id}`);
    const { batch } = status;
    if (batch.state !== "cancelled") {
      const cancelled = { ...batch, version: batch.version + 1, state: "cancelled" as const };
      if (!await this.storage.batches.put(cancelled, batch.version)) {
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
      const records = await this.storage.getMany(ids.slice(start, start + 500));
      await Promise.all(
        records.filter((r): r is JobRecord => r !== null && !FINAL_STATES.includes(r.state))
          .map((record) =>
            this.#markDeleted(record.id, `batch ${id} cancelled`).catch((error) => {
              if (!(error instanceof InvalidTransitionError)) throw error; // finished meanwhile
            })
          ),
      );
    }
    return (await batchStatus(this.storage, id))!;
  }

  /** The job's current record, or null when no job has that id. */
  async get(id: string): Promise<JobRecord | null> {
    checkJobId(id);
    return await this.storage.get(id);
  }

  /** The job's event log, oldest first (empty when no job has that id). */
  async events(id: string): Promise<JobEvent[]> {
    checkJobId(id);
    return await this.storage.events(id);
  }

  /** A page of jobs in a state (newest first) or of a queue's ready jobs (claim order). */
  async list(query: ListQuery): Promise<Page> {
    const q = query as { state?: unknown; queue?: unknown; limit?: unknown };
    if ((q.state === undefined) === (q.queue === undefined)) {
      throw new InvalidOptionError("list query", query, "give exactly one of state or queue");
    }
    if (q.state !== undefined && !isState(q.state)) {
      throw new InvalidOptionError("list state", q.state, "is not a job state");
    }
    if (q.queue !== undefined) checkDefaults({ queue: q.queue as string });
    if (
      q.limit !== undefined &&
      !(Number.isInteger(q.limit) && (q.limit as number) >= 1 && (q.limit as number) <= 1000)
    ) {
      throw new InvalidOptionError("list limit", q.limit, "must be an integer from 1 to 1000");
    }
    return await this.storage.list(query);
  }

  /** Jobs whose name starts with `namePrefix`, by name, newest first within a name. */
  async search(
    namePrefix: string,
    options: { cursor?: string; limit?: number } = {},
  ): Promise<Page> {
    if (
      typeof namePrefix !== "string" || namePrefix.length > 128 ||
      !/^[A-Za-z0-9_.:\/-]*$/.test(namePrefix)
    ) {
      throw new InvalidOptionError(
        "name prefix",
        namePrefix,
        "must be up to 128 characters of a job name",
      );
    }
    const { limit } = options;
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
      throw new InvalidOptionError("search limit", limit, "must be an integer from 1 to 1000");
    }
    return await this.storage.search({ namePrefix, cursor: options.cursor, limit });
  }

  /** Stops workers claiming from `queue` (jobs already running finish); see {@link TaskFlow.resumeQueue}. */
  async pauseQueue(queue: string): Promise<void> {
    checkDefaults({ queue });
    await this.storage.pauseQueue(queue, true);
  }

  /** Lets workers claim from `queue` again. */
  async resumeQueue(queue: string): Promise<void> {
    checkDefaults({ queue });
    await this.storage.pauseQueue(queue, false);
  }

  /** The paused queues. */
  async pausedQueues(): Promise<string[]> {
    return await this.storage.pausedQueues();
  }

  /** Current count per state (overall and per queue) and all-time totals. */
  async counts(): Promise<Counts> {
    return await this.storage.counts();
  }

  /**
   * The worker servers whose heartbeat has not expired, as each last announced itself
   * (queues, concurrency, jobs in flight, last heartbeat).
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * for (const server of await tf.servers()) console.log(server.id, server.inFlight);
   * await tf.close();
   * ```
   */
  async servers(): Promise<ServerInfo[]> {
    return await this.storage.servers();
  }

  /**
   * Jobs succeeded and failed per time bucket (`"minute"` or `"hour"`, see `RESOLUTIONS`) whose
   * start lies from `range.from` to `range.to` (ms since epoch), oldest first.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const now = Date.now();
   * const lastDay = await tf.timeline("hour", { from: now - 86_400_000, to: now });
   * console.log(lastDay.reduce((n, point) => n + point.failed, 0), "failed in 24 h");
   * await tf.close();
   * ```
   */
  async timeline(
    resolution: Resolution,
    range: { from: number; to: number },
  ): Promise<TimelinePoint[]> {
    if (typeof resolution !== "string" || !Object.hasOwn(RESOLUTIONS, resolution)) {
      throw new InvalidOptionError(
        "timeline resolution",
        resolution,
        `must be one of ${Object.keys(RESOLUTIONS).join(", ")}`,
      );
    }
    if (
      typeof range !== "object" || range === null || !Number.isFinite(range.from) ||
      !Number.isFinite(range.to)
    ) {
      throw new InvalidOptionError("timeline range", range, "needs finite from and to (ms)");
    }
    return await this.storage.timeline(resolution, range.from, range.to);
  }

  /**
   * The current records of several jobs in one read, in the order of `ids` (null where no job
   * has that id).
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const a = await tf.enqueue("report.build", { month: 1 });
   * const [job, missing] = await tf.getMany([a, "no-such-job"]);
   * console.log(job?.state, missing); // "Enqueued" null
   * await tf.close();
   * ```
   */
  async getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    if (!Array.isArray(ids)) throw new InvalidOptionError("job ids", ids, "must be an array");
    ids.forEach((id) => checkJobId(id));
    return await this.storage.getMany(ids);
  }

  /**
   * The lease of a Processing job (which server runs it, until when), or null when the job is
   * not running.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const id = await tf.enqueue("report.build", { month: 1 });
   * console.log(await tf.lease(id)); // null until a worker claims it
   * await tf.close();
   * ```
   */
  async lease(id: string): Promise<Lease | null> {
    checkJobId(id);
    return await this.storage.lease(id);
  }

  /**
   * The newest batches (at most `limit`, default 200, up to 1,000) with their progress, newest
   * first.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * await tf.batch([{ job: "img.resize", args: { n: 1 } }]);
   * for (const { batch, done } of await tf.batches()) console.log(batch.id, done, batch.total);
   * await tf.close();
   * ```
   */
  async batches(options: { limit?: number } = {}): Promise<BatchStatus[]> {
    const limit = options.limit ?? 200;
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) {
      throw new InvalidOptionError("batches limit", limit, "must be an integer from 1 to 1000");
    }
    const batches = (await this.storage.batches.list() as BatchRecord[])
      .sort((a, b) => b.createdAt - a.createdAt);
    return await Promise.all(batches.slice(0, limit).map((b) => statusOf(this.storage, b)));
  }

  /**
   * The storage's human-readable address, e.g. `kv:./data/taskflow.sqlite` or `memory:`.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * console.log(`TaskFlow on ${tf.address}`);
   * await tf.close();
   * ```
   */
  get address(): string {
    return this.storage.address;
  }

  /** Closes the storage. */
  async close(): Promise<void> {
    await this.#committer.flush();
    await this.storage.close();
  }

  #prepare(
    job: JobRef,
    args: unknown,
    options: EnqueueOptions,
    first: { state: State; runAt?: number },
    where = "options",
  ): PreparedJob {
    const definition = isJobDefinition(job) ? job : undefined;
    const name = checkJobName(definition ? definition.name : job);
    if (typeof options !== "object" || options === null) {
      throw new InvalidOptionError(where, options, "must be an object");
    }
    checkDefaults(options, where);
    if (typeof options.backoff === "function") {
      throw new InvalidOptionError(
        `${where}.backoff`,
        "function",
        "a function cannot be stored; set it in defineJob",
      );
    }
    const id = options.id === undefined ? newJobId(this.now()) : checkJobId(options.id);
    const json = toJson(args, "args");
    checkSize("args", json, this.storage.limits.args);
    const defaults = definition?.defaults ?? {};
    const stored: StoredOptions = {};
    const attempts = options.attempts ?? defaults.attempts;
    if (attempts !== undefined) stored.attempts = attempts;
    const backoff = options.backoff ??
      (typeof defaults.backoff === "function" ? undefined : defaults.backoff);
    if (backoff !== undefined) stored.backoff = backoff;
    const timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
    if (timeoutMs !== undefined) stored.timeoutMs = timeoutMs;
    const created: Omit<CreatedEvent, "seq"> = {
      type: "created",
      at: 0,
      name,
      queue: options.queue ?? defaults.queue ?? DEFAULT_QUEUE,
      args: json,
      priority: options.priority ?? defaults.priority ?? 0,
      options: stored,
    };
    return { id, custom: options.id !== undefined, created, first };
  }

  async #create(prepared: PreparedJob[]): Promise<string[]> {
    const ids = prepared.map((p) => p.id);
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new JobExistsError(id);
      seen.add(id);
    }
    const custom = prepared.filter((p) => p.custom).map((p) => p.id);
    if (custom.length) await this.#refuseTaken(custom);
    const at = this.now();
    const changes = prepared.map(({ id, created, first }) => {
      const state: NewEvent = first.runAt === undefined
        ? { type: "state", at, state: first.state }
        : { type: "state", at, state: first.state, data: { runAt: first.runAt } };
      return { commits: [createCommit(id, { ...created, at }, [state])] };
    });
    const results = prepared.length === 1
      ? [await this.submit(changes[0])]
      : await this.storage.append(changes);
    const taken = results.flatMap((r) => r.ok ? [] : r.conflicts);
    if (taken.length) throw new JobExistsError(taken[0]);
    return ids;
  }

  async #refuseTaken(ids: string[]): Promise<void> {
    if (!ids.length) return;
    const existing = await this.storage.getMany(ids);
    const index = existing.findIndex((r) => r !== null);
    if (index >= 0) throw new JobExistsError(ids[index]);
  }

  #runAt(options: ScheduleOptions): number {
    if (typeof options !== "object" || options === null) {
      throw new InvalidOptionError(
        "schedule options",
        options,
        "must be an object with delayMs or at",
      );
    }
    const { delayMs, at } = options as { delayMs?: unknown; at?: unknown };
    if ((delayMs === undefined) === (at === undefined)) {
      throw new InvalidOptionError(
        "schedule options",
        { delayMs, at },
        "give exactly one of delayMs or at",
      );
    }
    if (delayMs !== undefined) {
      if (typeof delayMs !== "number" || !Number.isFinite(delayMs) || delayMs < 0) {
        throw new InvalidOptionError(
          "delayMs",
          delayMs,
          "must be a finite number of ms, 0 or more",
        );
      }
      return this.now() + delayMs;
    }
    const time = at instanceof Date ? at.getTime() : at;
    if (typeof time !== "number" || !Number.isFinite(time)) {
      throw new InvalidOptionError("at", at, "must be a valid Date or ms since epoch");
    }
    return time;
  }
}
