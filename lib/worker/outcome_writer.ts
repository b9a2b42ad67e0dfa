/**
 * @module
 * Outcome writes: a worker's group committer, the fenced appends of the jobs it holds
 * (compare-and-set on the version it last wrote), and retrying them through a storage outage.
 */

import type { Commit, Storage } from "../../storage/storage.ts";
import { StorageUnavailableError } from "../../storage/errors.ts";
import { appendCommit, backoff, MAX_TRIES, releases, withContinuations } from "../changes.ts";
import { DependentWrites } from "../workflows/pending.ts";
import { notifiesDependents } from "../workflows/release.ts";
import type { NewEvent } from "../events.ts";
import type { JobRecord } from "../job.ts";
import { GroupCommitter } from "../group_commit.ts";
import type { WorkerContext } from "./context.ts";
import { lose, type Running } from "./run.ts";
import { AtomicCheckError } from "../../storage/event_errors.ts";
import { combined } from "./atomic.ts";

/** Writes a worker's commits in groups; a held job's writes are fenced by its version. */
export class OutcomeWriter {
  /** Every write of the worker goes through it (the claim loop holds and releases it). */
  readonly committer: GroupCommitter;
  #ctx: WorkerContext;
  #storage: Storage;
  /** Outcomes that tell dependents, written together (lib/workflows/pending.ts). */
  #dependents: DependentWrites;

  /** A writer for the worker sharing `ctx`, on `storage`. */
  constructor(ctx: WorkerContext, storage: Storage) {
    this.#ctx = ctx;
    this.#storage = storage;
    this.committer = new GroupCommitter(storage);
    this.#dependents = new DependentWrites(storage, (c) => this.committer.submit(c), ctx.config);
  }

  /**
   * Group-commits one job's commit with its continuation releases; false when fenced. `sent`:
   * called once a write holding only this commit has been handed to the storage.
   */
  async submit(commit: Commit, sent?: () => void): Promise<boolean> {
    if (!releases(commit)) {
      const result = await this.committer.submit({ commits: [commit] }, sent);
      return result.ok || !result.conflicts.includes(commit.id) && await this.#release(commit);
    }
    if (notifiesDependents(commit)) return await this.#dependents.write(commit);
    return await this.#release(commit);
  }

  /** Writes `commit` with its releases, re-read and retried while only they moved meanwhile. */
  async #release(commit: Commit): Promise<boolean> {
    const { now, random } = this.#ctx.config;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const change = await withContinuations(this.#storage, commit, now());
      const result = await this.committer.submit(change);
      if (result.ok) return true;
      if (result.conflicts.includes(commit.id)) return false;
      if (result.conflicts.includes(`atomic:${commit.id}`)) throw new AtomicCheckError(commit.id);
      // Only a continuation or dependent moved meanwhile (another writer): re-read them.
      await backoff(tries, random);
    }
    return false;
  }

  /**
   * Writes events of a running job as its holder; marks the job lost when fenced. A job that
   * only gained continuations meanwhile (`continueWith` on a running parent) is still ours: the
   * events are written again on its new version.
   */
  async appendOwn(job: Running, events: NewEvent[], sent?: () => void): Promise<boolean> {
    if (job.lost) return false;
    for (let tries = 0; tries < 10; tries++) {
      const commit = appendCommit(job.record, events);
      // ctx.atomic's writes ride only on the commit that records Succeeded.
      if (job.atomic?.length && commit.record.state === "Succeeded") {
        commit.extra = combined(job.atomic);
      }
      let ok: boolean;
      try {
        ok = await this.submit(commit, sent);
      } catch (error) {
        if (!this.#outage(error)) throw error;
        ok = await this.#untilStored(() => this.submit(commit), error);
      }
      if (ok) {
        job.record = commit.record;
        return true;
      }
      const moved = await this.#onlyContinuationsSince(job.record);
      if (!moved) break;
      job.record = moved;
    }
    lose(job, "the job changed while it ran (deleted, requeued or reaped)");
    return false;
  }

  /** The job's newer record if every event since `mine` attached a continuation, else null. */
  async #onlyContinuationsSince(mine: JobRecord): Promise<JobRecord | null> {
    try {
      const fresh = await this.#storage.get(mine.id);
      if (fresh?.state !== "Processing" || fresh.version <= mine.version) return null;
      const since = (await this.#storage.events(mine.id)).filter((e) => e.seq > mine.version);
      // A job gaining waiters (continuations, dependents) while it runs is still ours.
      return since.every((e) => e.type === "continuation" || e.type === "dependent") ? fresh : null;
    } catch {
      return null; // unreadable now: fenced as before, and the reaper settles it
    }
  }

  /** Resolves once everything submitted so far has been written. */
  flush(): Promise<void> {
    return this.committer.flush();
  }

  /**
   * Retries a running job's write that failed with `failure` while the storage is unavailable,
   * so that an outage delays outcomes instead of dropping them (the job would sit in Processing
   * until its lease expired, then run again) and is reported once rather than once per job.
   * Gives up when the worker stops; if the lease expired meanwhile, the write is fenced as usual.
   */
  async #untilStored<T>(write: () => Promise<T>, failure: StorageUnavailableError): Promise<T> {
    for (let delay = 50;; delay = Math.min(delay * 2, 2_000)) {
      this.#ctx.failed(failure);
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        return await write();
      } catch (error) {
        if (!this.#outage(error)) throw error;
        failure = error;
      }
    }
  }

  /** A write failed because the storage is unavailable, and the worker still runs: retry it. */
  #outage(error: unknown): error is StorageUnavailableError {
    return error instanceof StorageUnavailableError && this.#ctx.running;
  }
}
