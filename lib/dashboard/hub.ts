/**
 * @module
 * The live hub: one poll of the client per dashboard process, fanned out to every open page (SSE)
 * and every `/api/stats` call, however many tabs are open.
 */

import {
  type Counts,
  isOrphaned,
  type JobRecord,
  liveServers,
  type Orphan,
  readOrphans,
  type ServerInfo,
  StorageUnavailableError,
  type TaskFlow,
  type TimelinePoint,
  type WaitPoint,
} from "../mod.ts";

/** What a live page shows; refreshed once per poll. */
export interface Snapshot {
  /** When the client was polled (ms since epoch, by the client's clock). */
  at: number;
  counts: Counts;
  /** Jobs succeeded and failed per second, over the last {@link RATE_SECONDS} whole seconds. */
  rate: { succeeded: number; failed: number };
  /**
   * Jobs succeeded and failed per second from the storage's second buckets, the last
   * {@link SERIES_SECONDS} seconds up to `at` (what happened while no page was open included).
   */
  series: TimelinePoint[];
  /** The span of time `series` covers (ms since epoch): the chart's time axis. */
  seriesRange: { from: number; to: number };
  /** The history charts: read again at most every {@link HISTORY_MS} (`historyMs`). */
  history: History;
  /** The newest Processing jobs (at most 20); `orphan` marks those whose server is gone. */
  processing: Array<
    Pick<JobRecord, "id" | "name" | "queue" | "stateAt" | "progress" | "serverId" | "attempt"> & {
      orphan?: Orphan;
    }
  >;
  /**
   * Processing jobs whose server stopped heartbeating, among the newest {@link ORPHAN_SCAN};
   * `more` when there are more Processing jobs than that (the count is then a lower bound).
   */
  orphaned: { count: number; more: boolean };
  servers: ServerInfo[];
  /** Polls made by this hub since it started (one poll = one read of each kind). */
  polls: number;
}

/** Seconds the realtime series spans. */
export const SERIES_SECONDS = 60;
/** Whole seconds the rate is averaged over. */
export const RATE_SECONDS = 5;
/** How often the history (hours, days, waits) is read again while pages listen. */
export const HISTORY_MS = 10_000;

/** The overview's history charts. */
export interface History {
  /** When they were read (client's clock). */
  at: number;
  /** Succeeded/failed per hour, the last 24 hours. */
  hours: TimelinePoint[];
  /** Succeeded/failed per UTC day, the last 7 days. */
  days: TimelinePoint[];
  /** Queue wait p50/p95 per minute (all queues), the last hour. */
  waits: WaitPoint[];
}
const PROCESSING_SHOWN = 20;
/** Processing jobs a poll examines for orphans (one listing; no lease read while servers live). */
export const ORPHAN_SCAN = 100;

/** The client reads a hub polls: a {@link TaskFlow}, or a stand-in with the same calls. */
export type LiveSource = Pick<
  TaskFlow,
  "counts" | "list" | "servers" | "lease" | "address" | "now" | "timeline" | "waitTimes"
>;

/** Polls the client while someone listens, at most once per `intervalMs`. */
export class LiveHub {
  readonly source: LiveSource;
  readonly intervalMs: number;
  #listeners = new Set<(snapshot: Snapshot) => void>();
  #latest?: Snapshot;
  #pending?: Promise<Snapshot>;
  #timer?: ReturnType<typeof setInterval>;
  #history?: History;
  #historyPolledAt = -Infinity;
  #polls = 0;
  /** Monotonic-enough time of the latest poll, for caching and rates (the clock may be a test's). */
  #polledAt = 0;
  #closed = false;

  /**
   * A hub over `source`, refreshing every `intervalMs` while pages listen, and the history
   * charts every `historyMs` (or `intervalMs` when longer).
   */
  constructor(source: LiveSource, intervalMs = 1_000, readonly historyMs = HISTORY_MS) {
    this.source = source;
    this.intervalMs = intervalMs;
  }

  /** Calls `listener` with every new snapshot; returns the function that stops it. */
  subscribe(listener: (snapshot: Snapshot) => void): () => void {
    this.#listeners.add(listener);
    this.#timer ??= setInterval(() => void this.#refresh().catch(() => {}), this.intervalMs);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** The latest snapshot, read again if it is older than the interval. */
  async snapshot(): Promise<Snapshot> {
    if (this.#latest && performance.now() - this.#polledAt < this.intervalMs) return this.#latest;
    return await this.#refresh();
  }

  #refresh(): Promise<Snapshot> {
    if (this.#closed) {
      return Promise.reject(
        new StorageUnavailableError(this.source.address, "the live hub is closed"),
      );
    }
    this.#pending ??= this.#poll().finally(() => this.#pending = undefined);
    return this.#pending;
  }

  async #poll(): Promise<Snapshot> {
    const now = this.source.now();
    const second = Math.floor(now / 1_000) * 1_000;
    const [counts, processing, servers, series, history] = await Promise.all([
      this.source.counts(),
      this.source.list({ state: "Processing", limit: ORPHAN_SCAN }),
      this.source.servers(),
      this.source.timeline("second", { from: second + 1_000 - SERIES_SECONDS * 1_000, to: now }),
      this.#readHistory(now),
    ]);
    const live = liveServers(servers);
    const shown = processing.jobs.slice(0, PROCESSING_SHOWN);
    const orphans = await readOrphans(this.source, shown, live);
    this.#polls++;
    this.#polledAt = performance.now();
    // The current second is still filling: the rate is over the whole seconds before it.
    const whole = series.filter((p) => p.at < second).slice(-RATE_SECONDS);
    const rate = {
      succeeded: whole.reduce((n, p) => n + p.succeeded, 0) / RATE_SECONDS,
      failed: whole.reduce((n, p) => n + p.failed, 0) / RATE_SECONDS,
    };
    const snapshot: Snapshot = {
      at: now,
      counts,
      rate,
      series,
      seriesRange: { from: second + 1_000 - SERIES_SECONDS * 1_000, to: second + 1_000 },
      history,
      processing: shown.map((
        { id, name, queue, stateAt, progress, serverId, attempt },
        i,
      ) => ({
        id,
        name,
        queue,
        stateAt,
        progress,
        serverId,
        attempt,
        ...(orphans[i] ? { orphan: orphans[i]! } : {}),
      })),
      orphaned: {
        count: processing.jobs.filter((job) => isOrphaned(job, live)).length,
        more: processing.cursor !== undefined,
      },
      servers,
      polls: this.#polls,
    };
    this.#latest = snapshot;
    for (const listener of this.#listeners) listener(snapshot);
    return snapshot;
  }

  /** The history charts, read again when older than {@link HISTORY_MS} (or the interval). */
  async #readHistory(now: number): Promise<History> {
    const age = performance.now() - this.#historyPolledAt;
    if (this.#history && age < Math.max(this.historyMs, this.intervalMs)) return this.#history;
    this.#historyPolledAt = performance.now();
    const hour = 3_600_000, day = 24 * hour;
    const [hourly, waits] = await Promise.all([
      this.source.timeline("hour", { from: now - 7 * day + hour, to: now }),
      this.source.waitTimes({ from: now - hour + 60_000, to: now }),
    ]);
    return this.#history = { at: now, hours: hourly.slice(-24), days: daysOf(hourly), waits };
  }

  /** Stops polling and drops every listener. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}

/** Hourly points summed per UTC day. */
export function daysOf(hours: readonly TimelinePoint[]): TimelinePoint[] {
  const days: TimelinePoint[] = [];
  for (const point of hours) {
    const at = Math.floor(point.at / 86_400_000) * 86_400_000;
    let day = days.at(-1);
    if (day?.at !== at) days.push(day = { at, succeeded: 0, failed: 0 });
    day.succeeded += point.succeeded;
    day.failed += point.failed;
  }
  return days;
}
