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
} from "../mod.ts";

/** What a live page shows; refreshed once per poll. */
export interface Snapshot {
  /** When the client was polled (ms since epoch, by the client's clock). */
  at: number;
  counts: Counts;
  /** Jobs succeeded and failed per second since the previous poll. */
  rate: { succeeded: number; failed: number };
  /** The last minute or so of rates, oldest first, one point per poll. */
  series: Array<{ at: number; succeeded: number; failed: number }>;
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

const SERIES = 60;
const PROCESSING_SHOWN = 20;
/** Processing jobs a poll examines for orphans (one listing; no lease read while servers live). */
export const ORPHAN_SCAN = 100;

/** The client reads a hub polls: a {@link TaskFlow}, or a stand-in with the same calls. */
export type LiveSource = Pick<
  TaskFlow,
  "counts" | "list" | "servers" | "lease" | "address" | "now"
>;

/** Polls the client while someone listens, at most once per `intervalMs`. */
export class LiveHub {
  readonly source: LiveSource;
  readonly intervalMs: number;
  #listeners = new Set<(snapshot: Snapshot) => void>();
  #latest?: Snapshot;
  #pending?: Promise<Snapshot>;
  #timer?: ReturnType<typeof setInterval>;
  #series: Snapshot["series"] = [];
  #polls = 0;
  /** Monotonic-enough time of the latest poll, for caching and rates (the clock may be a test's). */
  #polledAt = 0;
  #closed = false;

  /** A hub over `source`, refreshing every `intervalMs` while pages listen. */
  constructor(source: LiveSource, intervalMs = 1_000) {
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
    const [counts, processing, servers] = await Promise.all([
      this.source.counts(),
      this.source.list({ state: "Processing", limit: ORPHAN_SCAN }),
      this.source.servers(),
    ]);
    const live = liveServers(servers);
    const shown = processing.jobs.slice(0, PROCESSING_SHOWN);
    const orphans = await readOrphans(this.source, shown, live);
    this.#polls++;
    const at = this.source.now();
    const polledAt = performance.now();
    const previous = this.#latest;
    const seconds = previous ? Math.max(0.001, (polledAt - this.#polledAt) / 1_000) : 1;
    this.#polledAt = polledAt;
    const rate = previous
      ? {
        succeeded: Math.max(0, counts.totals.succeeded - previous.counts.totals.succeeded) /
          seconds,
        failed: Math.max(0, counts.totals.failed - previous.counts.totals.failed) / seconds,
      }
      : { succeeded: 0, failed: 0 };
    this.#series = [...this.#series, { at, ...rate }].slice(-SERIES);
    const snapshot: Snapshot = {
      at,
      counts,
      rate,
      series: this.#series,
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

  /** Stops polling and drops every listener. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
