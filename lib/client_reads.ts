/**
 * @module
 * The read side of the TaskFlow client beyond single records: servers, history, several jobs
 * at once, leases, and the event API (`waitFor`, `watch`, `explain`). `TaskFlow` extends it.
 */

import type { Resolution, ServerInfo, Storage, TimelinePoint } from "../storage/storage.ts";
import { checkJobId, type JobRecord } from "./job.ts";
import type { Lease } from "./projection.ts";
import { readIds, readTimeline } from "./queries.ts";
import { readOptions } from "./options.ts";
import {
  type JobStats,
  readJobStats,
  readJobStatsOptions,
  readWaitTimes,
  type StatTotals,
  statTotalsOf,
  type StatWindow,
  type WaitPoint,
} from "./stats.ts";
import type { QueuesApi } from "./queues/store.ts";
import { explain, type Explanation } from "./explain/explain.ts";
import { waitFor, type WaitOptions } from "./watch/wait.ts";
import { watch, type WatchedEvent, type WatchOptions } from "./watch/watch.ts";

/** The reads of the TaskFlow client; see `TaskFlow`. */
export abstract class ClientReads {
  /** The storage this client reads and writes. */
  readonly storage: Storage;
  /** The clock used to stamp events. */
  readonly now: () => number;
  /** Queue limits (concurrency, rate, per partition): `configure`, `get`, `list`. */
  abstract readonly queues: QueuesApi;

  /** Reads `storage`, with the clock `now`. */
  constructor(storage: Storage, now: () => number) {
    this.storage = storage;
    this.now = now;
  }

  /**
   * Waits until job `id` is final and resolves with its Succeeded record, woken by the
   * storage's wake-ups; rejects with `JobFailedError` (carrying the error), `JobDeletedError`,
   * `WaitTimeoutError` after `timeoutMs`, or the signal's reason.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const id = await tf.enqueue("report.build", { month: 1 });
   * await tf.waitFor(id, { timeoutMs: 10 }).catch((e) => console.log(e.code)); // WAIT_TIMEOUT
   * await tf.close();
   * ```
   */
  async waitFor(id: string, options: WaitOptions = {}): Promise<JobRecord> {
    return await waitFor(this.storage, id, options);
  }

  /**
   * Every job's events in commit order as `{ cursor, jobId, event }`, resumable after a restart
   * from a saved `cursor` (`since`), filtered by `queue`, `name` or `jobId`; ends when `signal`
   * aborts. A cursor older than the feed's window throws `CursorExpiredError`.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * await tf.enqueue("report.build", { month: 1 });
   * for await (const { jobId, event } of tf.watch({ since: "start" })) {
   *   console.log(jobId, event.type); // created, then state
   *   if (event.type === "state") break;
   * }
   * await tf.close();
   * ```
   */
  watch(options: WatchOptions = {}): AsyncGenerator<WatchedEvent, void, undefined> {
    return watch(this.storage, options);
  }

  /**
   * Why job `id` is where it is and what it waits for (due time, paused queue, no live worker,
   * queue limits, parent, batch or dependencies, a gone worker's lease, the retry schedule), as
   * `reasons` (data) and a `summary` line.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const id = await tf.enqueue("report.build", { month: 1 });
   * console.log((await tf.explain(id)).summary); // Enqueued: no live worker serves queue default...
   * await tf.close();
   * ```
   */
  async explain(id: string): Promise<Explanation> {
    return await explain(this.storage, id, {
      limits: (job) => this.queues.waiting(job),
      now: this.now,
    });
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
   * Jobs succeeded and failed per time bucket (`"second"`, kept 15 minutes; `"minute"`, kept 3
   * hours; `"hour"`, kept 8 days: see `RESOLUTIONS`) whose start lies from `range.from` to
   * `range.to` (ms since epoch), oldest first. The storage counts them in each transition's
   * commit, so they hold what happened while no dashboard was open.
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
    return await readTimeline(this.storage, resolution, range);
  }

  /**
   * Per job name, over `window` (`"1h"`: minute buckets; `"24h"`, `"7d"`: hour buckets; `"all"`:
   * since the start; default `"24h"`): attempts by outcome, failure rate, and p50/p95/p99 of the
   * attempt durations (interpolated within their histogram bucket). `name` reads one name only.
   * Kept by the storage with each transition, and kept when retention prunes the jobs.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * for (const s of await tf.jobStats({ window: "1h" })) {
   *   console.log(s.name, s.succeeded + s.failed, s.failureRate, s.p95Ms);
   * }
   * await tf.close();
   * ```
   */
  async jobStats(options: { window?: StatWindow; name?: string } = {}): Promise<JobStats[]> {
    return await readJobStats(this.storage, readJobStatsOptions(options), this.now());
  }

  /**
   * How long jobs waited from entering Enqueued to being started, per minute from
   * `range.from` to `range.to` (minutes are kept 3 hours): jobs started and the p50/p95 wait,
   * of every queue together or of `queue`.
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const now = Date.now();
   * const lastHour = await tf.waitTimes({ from: now - 3_600_000, to: now }, { queue: "mail" });
   * console.log(lastHour.at(-1)?.p95Ms);
   * await tf.close();
   * ```
   */
  async waitTimes(
    range: { from: number; to: number },
    options: { queue?: string } = {},
  ): Promise<WaitPoint[]> {
    const { queue } = readOptions(options, { call: "waitTimes", allowed: ["queue"] });
    return await readWaitTimes(this.storage, range, queue as string | undefined);
  }

  /**
   * All-time statistics (never pruned): per job name, attempt outcomes and the duration
   * histogram; per queue, the wait histogram (what `/metrics` exports).
   *
   * @example
   * ```ts
   * import { TaskFlow } from "./mod.ts";
   * const tf = await TaskFlow.open("memory:");
   * const { jobs, waits } = await tf.statTotals();
   * console.log(Object.keys(jobs), Object.keys(waits));
   * await tf.close();
   * ```
   */
  async statTotals(): Promise<StatTotals> {
    return statTotalsOf((await this.storage.stats({ resolution: "total" }))[0]);
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
    return await this.storage.getMany(readIds(ids));
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
}
