/**
 * @module
 * The TaskFlow client: what producers (and the dashboard) use to create and operate jobs.
 * It validates everything before writing, so bad input gets a typed error and writes nothing.
 */

import { openStorage, type OpenStorageOptions } from "../storage/open.ts";
import type { AppendResult, Change, Counts, ListQuery, Page, Storage } from "../storage/storage.ts";
import { appendCommit, updateJob } from "./changes.ts";
import type { ContinueOn, JobEvent } from "./events.ts";
import * as batches from "./batch.ts";
import { withTransaction } from "./transaction.ts";
import * as flows from "./workflows/mod.ts";
import { systemClock } from "./clock.ts";
import {
  checkContinueOn,
  type ContinueOptions,
  createContinuation,
  createJobs,
  type EnqueueItem,
  type EnqueueOptions,
  type FirstState,
  type JobRef,
  prepareJob,
  scheduledAt,
  type ScheduleOptions,
} from "./create.ts";
import { GroupCommitter } from "./group_commit.ts";
import { RecurringApi } from "./recurring.ts";
import { QueuesApi } from "./queues/store.ts";
import { checkJobId, checkQueueName, type JobRecord, readJobOptions } from "./job.ts";
import { checkFunctions, readOptions } from "./options.ts";
import { readListQuery, readReason, readSearch } from "./queries.ts";
import { ClientReads } from "./client_reads.ts";
import * as retention from "./retention/mod.ts";
import { type CreateMiddleware, readMiddleware } from "./middleware/mod.ts";
import { creating, flowIdList, flowJobs, itemJobs, jobOf } from "./middleware/create.ts";
import { inJobTrace } from "./telemetry/trace.ts";

/** Options of {@link TaskFlow.open}. */
export interface TaskFlowOptions extends OpenStorageOptions {
  /** The clock (ms since epoch); tests inject one. */
  now?: () => number;
  /** Random source for the jitter after a lost race (tests inject one). */
  random?: () => number;
  /**
   * Wraps every create call (`enqueue`, `schedule`, `enqueueMany`, `continueWith`, `batch`,
   * `flow`), the first outermost (see {@link CreateMiddleware}).
   */
  middleware?: CreateMiddleware[];
}

const ENQUEUED: FirstState = { state: "Enqueued" };
const OPEN_KEYS = ["prefix", "queueWakeups", "now", "random", "middleware"];
const CLIENT_KEYS = ["now", "random", "middleware"];
const one = (id: string) => [id];

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
export class TaskFlow extends ClientReads {
  /** The random source of the jitter after a lost race. */
  readonly random: () => number;
  /** Recurring jobs: `upsert`, `remove`, `trigger`, `pause`, `resume`, `list`, `get`. */
  readonly recurring: RecurringApi;
  /** Queue limits (concurrency, rate, per partition): `configure`, `get`, `list`. */
  readonly queues: QueuesApi;
  #committer: GroupCommitter;
  #middleware: readonly CreateMiddleware[];

  /** Wraps an open storage. Most callers use {@link TaskFlow.open}. */
  constructor(
    storage: Storage,
    options: { now?: () => number; random?: () => number; middleware?: CreateMiddleware[] } = {},
  ) {
    const read = readOptions(options, { call: "new TaskFlow", allowed: CLIENT_KEYS });
    checkFunctions(read, ["now", "random"], { where: "options", optional: true });
    checkFunctions(storage, ["append", "get", "list", "close"], { where: "storage" });
    super(storage, (read.now as () => number) ?? systemClock.now);
    this.random = (read.random as () => number) ?? systemClock.random;
    this.#middleware = readMiddleware<CreateMiddleware>(read.middleware);
    this.#committer = new GroupCommitter(storage, { pipeline: storage.appendPipeline });
    this.recurring = new RecurringApi(this);
    this.queues = new QueuesApi(this);
  }

  /**
   * Opens TaskFlow on a storage URL (`memory:`, `kv:`, `kv:<path>`, `kv::memory:`,
   * `kv:https://...`) or an already open {@link Storage}. Without a URL: `kv:./data/taskflow.sqlite`,
   * or `kv:` on Deno Deploy.
   */
  static async open(url?: string | Storage, options: TaskFlowOptions = {}): Promise<TaskFlow> {
    const read = readOptions(options, { call: "TaskFlow.open", allowed: OPEN_KEYS });
    // Checked before a storage is opened, so a bad middleware leaves nothing open.
    readMiddleware(read.middleware);
    const storage = typeof url === "object" && url !== null ? url : await openStorage(url, read);
    const { now, random, middleware } = read as TaskFlowOptions;
    return new TaskFlow(storage, { now, random, middleware });
  }

  /** Writes a change through the group committer (shared by every caller of this client). */
  submit(change: Change): Promise<AppendResult> {
    return this.#committer.submit(change);
  }

  /** Creates a job ready to run now (or, with `dependsOn`, once those jobs are final); returns its id. */
  async enqueue(job: JobRef, args: unknown, options: EnqueueOptions = {}): Promise<string> {
    const it = jobOf(job, args, options, this.#middleware.length > 0);
    return await creating(this.#middleware, "enqueue", {
      jobs: [it],
      write: async () => {
        // After the middleware: it sees `transaction` among the options it may edit.
        const { writer, options } = withTransaction(this, it.options as EnqueueOptions);
        const item = { job, args: it.args, options };
        if (flows.waits(options)) return await flows.after(writer, item, "enqueue");
        const [id] = await createJobs(writer, [prepareJob(writer, item, { first: ENQUEUED })]);
        return id;
      },
      ids: one,
    });
  }

  /**
   * Creates many jobs in as few atomic writes as the backend allows (all of them in one on
   * memory; about 60 per write on Deno KV). Every item is validated before anything is written.
   * With `transaction` (PostgreSQL), they are written in the caller's open transaction.
   */
  async enqueueMany(
    items: readonly EnqueueItem[],
    options: { transaction?: unknown } = {},
  ): Promise<string[]> {
    readOptions(options, { call: "enqueueMany", allowed: ["transaction"] });
    const { writer } = withTransaction(this, options);
    const { jobs, items: edited } = itemJobs(items, this.#middleware.length > 0);
    return await creating(this.#middleware, "enqueueMany", {
      jobs,
      write: () => flows.enqueueManyAfter(writer, this.#middleware.length ? edited() : items),
      ids: (ids) => ids,
    });
  }

  /** Creates a job that becomes due after `delayMs` or at `at`; returns its id. */
  async schedule(job: JobRef, args: unknown, options: ScheduleOptions): Promise<string> {
    const it = jobOf(job, args, options, this.#middleware.length > 0);
    return await creating(this.#middleware, "schedule", {
      jobs: [it],
      write: async () => {
        const { writer, options: given } = withTransaction(
          this,
          it.options as unknown as ScheduleOptions,
        );
        const item = { job, args: it.args, options: given };
        if (flows.waits(given)) return await flows.after(writer, item, "schedule");
        const read = readJobOptions(given, { call: "schedule", extra: ["id", "delayMs", "at"] });
        const first = { state: "Scheduled", runAt: scheduledAt(read, this.now) } as const;
        const how = { first, call: "schedule", extra: ["delayMs", "at"] };
        const [id] = await createJobs(writer, [
          prepareJob(writer, { job, args: it.args, options: read as EnqueueOptions }, how),
        ]);
        return id;
      },
      ids: one,
    });
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
    const it = jobOf(job, args, options, this.#middleware.length > 0);
    return await inJobTrace(
      () => this.storage.get(parentId),
      () =>
        creating(this.#middleware, "continueWith", {
          jobs: [it],
          write: async () => {
            const read = readJobOptions(it.options, { call: "continueWith", extra: ["id", "on"] });
            const on = checkContinueOn(read.on ?? "succeeded");
            const how = {
              first: { state: "Awaiting" },
              call: "continueWith",
              extra: ["on"],
            } as const;
            const item = { job, args: it.args, options: read as EnqueueOptions };
            return await createContinuation(this, parentId, { ...prepareJob(this, item, how), on });
          },
          ids: one,
        }),
    );
  }

  /** Moves a job back to Enqueued (from any state the transition table allows), resetting its attempts. */
  async requeue(id: string, options: { reason?: string } = {}): Promise<JobRecord> {
    checkJobId(id);
    const reason = readReason(options, "requeue", "requeued");
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
      this.random,
    );
  }

  /** Moves a job to Deleted; a running handler's signal is aborted by its worker. */
  async delete(id: string, options: { reason?: string } = {}): Promise<JobRecord> {
    checkJobId(id);
    const reason = readReason(options, "delete", "deleted");
    const record = await this.#markDeleted(id, reason);
    await batches.settleMember(this.storage, record, this.now);
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
      this.random,
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
    let then: EnqueueItem | undefined;
    try {
      then = options?.then;
    } catch { /* a hostile getter: createBatch names it */ }
    let list = items;
    try {
      if (then !== undefined && Array.isArray(items)) list = [...items, then];
    } catch { /* a revoked proxy: createBatch names it */ }
    const all = itemJobs(list, this.#middleware.length > 0);
    return await creating(this.#middleware, "batch", {
      jobs: all.jobs,
      write: () => {
        if (!this.#middleware.length) return batches.createBatch(this, items, options);
        const edited = all.items();
        const members = list === items ? edited : edited.slice(0, -1);
        const next = list === items ? options : { ...options, then: edited.at(-1) };
        return batches.createBatch(this, members, next);
      },
      ids: (made) => made.thenId === undefined ? made.jobIds : [...made.jobIds, made.thenId],
    });
  }

  /** A batch and its progress, or null. */
  async batchStatus(id: string): Promise<batches.BatchStatus | null> {
    return await batches.readBatchStatus(this.storage, id);
  }

  /** Cancels a batch: deletes its unfinished members and its continuation. */
  async cancelBatch(id: string): Promise<batches.BatchStatus> {
    return await batches.cancelBatch(this.storage, id, (job, why) => this.#markDeleted(job, why));
  }

  /** Creates a flow of jobs that wait for their `children` (see {@link flows.FlowNode}). */
  async flow(node: flows.FlowNode): Promise<flows.FlowIds> {
    if (!this.#middleware.length) {
      let job: JobRef = "?";
      try {
        job = node?.job;
      } catch { /* a hostile node: createFlow names it */ }
      const root = jobOf(job, undefined, undefined, false);
      const write = () => flows.createFlow(this, node);
      return await creating(this.#middleware, "flow", { jobs: [root], write, ids: flowIdList });
    }
    const { jobs, tree } = flowJobs(node);
    const write = () => flows.createFlow(this, tree());
    return await creating(this.#middleware, "flow", { jobs, write, ids: flowIdList });
  }

  /** A flow (by its root's id) and its progress, or null. */
  async flowStatus(rootId: string): Promise<flows.FlowStatus | null> {
    return await flows.flowStatus(this.storage, checkJobId(rootId));
  }

  /** The newest flows (at most `limit`, default 200, up to 1,000) with their progress. */
  async flows(options: { limit?: number } = {}): Promise<flows.FlowStatus[]> {
    return await flows.listFlows(this.storage, options);
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
    const q = readListQuery(query);
    return await this.storage.list(q);
  }

  /** Jobs whose name starts with `namePrefix`, by name, newest first within a name. */
  async search(
    namePrefix: string,
    options: { cursor?: string; limit?: number } = {},
  ): Promise<Page> {
    return await this.storage.search(readSearch(namePrefix, options));
  }

  /** Stops workers claiming from `queue` (jobs already running finish); see {@link TaskFlow.resumeQueue}. */
  async pauseQueue(queue: string): Promise<void> {
    checkQueueName(queue);
    await this.storage.pauseQueue(queue, true);
  }

  /** Lets workers claim from `queue` again. */
  async resumeQueue(queue: string): Promise<void> {
    checkQueueName(queue);
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
  async batches(options: { limit?: number } = {}): Promise<batches.BatchStatus[]> {
    return await batches.listBatches(this.storage, options);
  }

  /** The retention policy in force (null before a worker stored one), with the last prune passes. */
  async retention(): Promise<retention.StoredRetention | null> {
    return await retention.retentionInForce(this.storage);
  }

  /** Prunes now: one full pass with the policy in force; `dryRun` only reports. */
  async prune(options: retention.PruneOptions = {}): Promise<retention.PruneReport> {
    return await retention.pruneNow(this.storage, options, this.now);
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
}
