/**
 * @module
 * The claim loop: fills free pool slots with ready jobs, promotes due Scheduled jobs, and holds
 * the worker's outcome writes while its next claim is near, so the storage runs the claim first.
 */

import { setImmediate } from "node:timers";
import type { Commit, Storage } from "../../storage/storage.ts";
import type { GroupCommitter } from "../group_commit.ts";
import { isUnlimited, type QueueConfig } from "../queues/config.ts";
import { QueueLimits } from "../queues/limits_cache.ts";
import { claimRated } from "./rated_claim.ts";
import type { WorkerContext } from "./context.ts";
import type { Pool } from "./pool.ts";
import type { Runner } from "./run.ts";
import { Overlap, type OverlappingClaim } from "./overlap.ts";
import { OutcomeHold } from "./outcome_hold.ts";
import { claimBuilder } from "./claim_commits.ts";
import { DueJobs } from "./due.ts";

/** Claims and promotes jobs into a worker's pool until the worker stops. */
export class ClaimLoop {
  #ctx: WorkerContext;
  #storage: Storage;
  #committer: GroupCommitter;
  #pool: Pool;
  #runner: Runner;
  #hold: OutcomeHold;
  #wake?: () => void;
  /** A wake-up arrived while the loop was reading: it must not sleep through it. */
  #woken = false;
  /** Due Scheduled jobs: when to read them, promoting them. */
  #due: DueJobs;
  /** Paused queues, as of the last heartbeat. */
  #paused = new Set<string>();
  /** When a rate-limited queue's window admits a start again (the last claim found it full). */
  #retryAt = Infinity;
  /** The queues' limits, read on a short cache. */
  #limits: QueueLimits;
  /** Claims sent without waiting for the one in flight, and the slots they asked for. */
  #overlap: Overlap;
  #done?: Promise<void>;

  /** A loop claiming from `storage` into `pool`, writing through `committer`. */
  constructor(
    ctx: WorkerContext,
    storage: Storage,
    parts: { committer: GroupCommitter; pool: Pool; runner: Runner },
  ) {
    this.#ctx = ctx;
    this.#storage = storage;
    this.#committer = parts.committer;
    this.#pool = parts.pool;
    this.#runner = parts.runner;
    this.#hold = new OutcomeHold(ctx, parts.committer, storage.claim !== undefined);
    this.#limits = new QueueLimits(storage, { clock: ctx.config.monotonic });
    this.#overlap = new Overlap(ctx, parts.pool);
    this.#due = new DueJobs(ctx.config, storage, parts);
  }

  /** Starts the loop; it ends when the worker leaves the running phase. */
  start(): void {
    this.#done = this.#loop();
  }

  /** Resolves once the loop has ended (and released every held write). */
  async stopped(): Promise<void> {
    await this.#done;
    this.#due.stop();
  }

  /** Work may be ready (a wake-up, a resumed queue, a stop): look at once. */
  signal(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** The queues paused now; a queue resumed wakes the loop. */
  setPaused(paused: string[]): void {
    const resumed = [...this.#paused].some((queue) => !paused.includes(queue));
    this.#paused = new Set(paused);
    if (resumed) this.signal();
  }

  async #loop(): Promise<void> {
    try {
      await this.#turns();
    } finally {
      // Whatever ended the loop, held outcomes are written (a stop waits for them) and no claim
      // is left in flight (one promoting due jobs writes through the group commit).
      this.#hold.release();
      await this.#overlap.settled();
      this.#hold.release();
    }
  }

  async #turns(): Promise<void> {
    const { config } = this.#ctx;
    const hold = this.#hold;
    let idle = config.minPollIntervalMs;
    const overlap = this.#overlap;
    while (this.#ctx.running) {
      // Outcomes are held only while the next claim is near, not while this loop waits for a
      // slot: a long wait would hold progress writes too.
      if (overlap.free === 0) hold.release();
      // A capped queue's slots free up only when outcomes are written: hold none for it.
      const served = this.#activeQueues();
      const capped = this.#limits.caps(served) !== undefined;
      if (capped) hold.disarm();
      else hold.arm();
      this.#pool.ahead = this.#ahead(served, capped);
      // Not a race with a promise of the worker's lifetime: every race would leave a reaction
      // on it until the worker stops (a leak per turn of the loop).
      await overlap.whenFree(hold.hold);
      // Nothing to claim yet: woken (a stop, a short claim) with every free slot reserved.
      if (overlap.free === 0 && this.#ctx.running) continue;
      // Let the other handlers that finished in this turn free their slots too, so one claim
      // fills several slots (only when busy: an idle worker claims at once).
      if (this.#pool.busy > 0) await this.#gather();
      if (!this.#ctx.running) break;
      // Due jobs are read when one may have come due: after a wake-up, at the earliest due
      // time seen, and at least every minimum poll interval (not on every busy turn).
      const dueCheck = this.#due.check(this.#woken);
      if (this.#overlaps()) {
        // The queues have a backlog: slots that freed up are claimed now, while the claim
        // before is still in flight, instead of waiting for it in synchronized waves.
        this.#woken = false;
        const queues = this.#activeQueues();
        overlap.send((claim) => this.#overlapped(dueCheck, queues, claim), this.#cohort(queues));
        hold.release();
        continue;
      }
      // Anything else (rate limits, an empty queue) takes the turn alone, once the claims in
      // flight have settled (they may be promoting due jobs through the group commit).
      if (overlap.pending) {
        hold.release();
        await overlap.settled();
      }
      if (this.#pool.free === 0) continue;
      this.#woken = false;
      let progress = false;
      try {
        // Independent reads: sent together they cost one round trip.
        if (!this.#limits.loaded) await this.#limits.load();
        const asked = this.#pool.free;
        const queues = this.#activeQueues();
        const caps = this.#limits.caps(queues);
        const reading = Promise.all([
          dueCheck ? this.#due.load() : undefined,
          this.#claim(asked, queues, caps),
        ]);
        hold.release();
        const [due, claim] = await reading;
        let promoted = 0;
        if (due) {
          // Promotions go through the group commit and are awaited: nothing may be held.
          hold.release();
          this.#due.read(due.next);
          const drained = claim.claimed < asked && !claim.contended;
          // A limited queue's due jobs are only promoted: its claims go through its cap.
          const direct = drained
            ? queues.filter((queue) => isUnlimited(this.#limits.get(queue)))
            : [];
          promoted = await this.#due.promote(due.ready, direct);
        }
        progress = promoted > 0 || claim.claimed > 0 || claim.contended;
        overlap.flowing = claim.claimed > 0;
        this.#ctx.recovered();
      } catch (error) {
        hold.disarm();
        this.#ctx.failed(error);
        await this.#sleep(Math.min(5_000, config.pollIntervalMs * 2));
        continue;
      }
      if (progress) {
        idle = config.minPollIntervalMs;
        continue;
      }
      const untilDue = Math.min(this.#due.nextDue, this.#retryAt) - config.now();
      await this.#sleep(Math.max(0, Math.min(idle, untilDue)));
      idle = Math.min(idle * 2, config.pollIntervalMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /**
   * A turn that overlaps the claims in flight: its claim, and due jobs promoted (with a backlog
   * none is claimed directly). A due read is marked done as it starts, so that the turns
   * overlapping it do not read again.
   */
  async #overlapped(
    dueCheck: boolean,
    queues: string[],
    claim: OverlappingClaim,
  ): Promise<{ claimed: number; contended: boolean }> {
    if (dueCheck) this.#due.reading();
    try {
      const caps = this.#limits.caps(queues);
      const [due, claimed] = await Promise.all([
        dueCheck ? this.#due.load() : undefined,
        this.#claimNatively(claim.asked, queues, caps, claim),
      ]);
      if (due) {
        this.#due.read(due.next);
        await this.#due.promote(due.ready, []);
      }
      return claimed;
    } catch (error) {
      if (dueCheck) this.#due.stale = true;
      throw error;
    }
  }

  /**
   * Waits for the handlers ending now. With a backlog and one-call claims, an immediate (it runs
   * once the timers and I/O callbacks due now have run): setTimeout(0) took ~2 ms on Deno, a
   * fifth of a 5 ms job's cycle. Otherwise the pause also spaces out claims that contend (limited
   * queues, list-and-append claims of several processes on one KV file).
   */
  #gather(): Promise<void> {
    return new Promise((r) => this.#overlaps() ? setImmediate(r) : setTimeout(r, 0));
  }

  /** Whether claims may overlap now: native ones, no rate-limited queue, a backlog seen. */
  #overlaps(): boolean {
    if (!this.#overlap.flowing || !this.#storage.claim || !this.#limits.loaded) return false;
    return !this.#anyRated(this.#activeQueues());
  }

  /** Whether one of `queues` has a rate or partition limit (its claims go one by one). */
  #anyRated(queues: readonly string[]): boolean {
    return queues.some((queue) => isRated(this.#limits.get(queue)));
  }

  /**
   * Most slots one overlapping claim fills. On an ordered storage a capped queue's job keeps its
   * slot until its outcome is sent, so a claim goes out behind the outcomes that free its slots
   * and is answered after they are written: claims of half the pool keep two cohorts, one's
   * outcomes and claim run in the storage while the other's jobs run here (one cohort would
   * take turns with it). Other storages were not measured this way: one claim fills all.
   */
  #cohort(queues: string[]): number {
    if (!this.#storage.orderedCalls || !this.#limits.caps(queues)) return Infinity;
    return Math.ceil(this.#pool.size / 2);
  }

  /**
   * Places for jobs claimed ahead: a quarter of the pool with one-call claims (only there does
   * a claim cost one round trip), none while a served queue has a concurrency or rate limit
   * (a job claimed ahead would count against it before it runs).
   */
  #ahead(queues: readonly string[], capped: boolean): number {
    if (capped || !this.#storage.claim || !this.#limits.loaded || this.#anyRated(queues)) return 0;
    return Math.ceil(this.#pool.size / 4);
  }

  /** The served queues that are not paused (as of the last heartbeat). */
  #activeQueues(): string[] {
    return this.#ctx.config.queues.filter((queue) => !this.#paused.has(queue));
  }

  /** Claims up to `free` jobs of `queues`, each limited queue's claims under its limits. */
  async #claim(
    free: number,
    queues: string[],
    caps: Record<string, number> | undefined,
  ): Promise<{ claimed: number; contended: boolean }> {
    this.#retryAt = Infinity;
    if (queues.length === 0) return { claimed: 0, contended: false };
    if (!this.#anyRated(queues)) {
      return await this.#claimPlain(free, queues, caps);
    }
    // Queue by queue, in order: a rate- or partition-limited one through its limiter record.
    let claimed = 0, contended = false;
    for (const queue of queues) {
      if (claimed >= free) break;
      const config = this.#limits.get(queue);
      const got = isRated(config)
        ? await this.#claimRated(queue, config, free - claimed, caps?.[queue])
        : await this.#claimPlain(free - claimed, [queue], caps);
      claimed += got.claimed;
      contended ||= got.contended;
    }
    return { claimed, contended };
  }

  /** Claims of a rate- or partition-limited queue (see rated_claim.ts). */
  async #claimRated(
    queue: string,
    config: QueueConfig,
    want: number,
    cap: number | undefined,
  ): Promise<{ claimed: number; contended: boolean }> {
    // Its claims go through the group commit, which must not wait for this turn's end.
    this.#hold.release();
    const now = this.#ctx.config.now();
    const parts = {
      storage: this.#storage,
      committer: this.#committer,
      build: claimBuilder(this.#ctx.config, now),
      now,
    };
    const result = await claimRated(parts, { queue, config, want, cap });
    this.#start(result.claimed);
    if (result.retryInMs !== undefined) {
      this.#retryAt = Math.min(this.#retryAt, now + result.retryInMs);
    }
    return { claimed: result.claimed.length, contended: result.contended };
  }

  /** Claims without a rate limit: natively where the storage can, else list + append. */
  async #claimPlain(
    free: number,
    queues: string[],
    caps: Record<string, number> | undefined,
  ): Promise<{ claimed: number; contended: boolean }> {
    if (this.#storage.claim) return await this.#claimNatively(free, queues, caps);
    let claimed = 0, contended = false;
    for (const queue of queues) {
      if (claimed >= free) break;
      const page = await this.#storage.list({ queue, limit: free - claimed });
      const build = claimBuilder(this.#ctx.config);
      const commits = page.jobs.map(build).filter((commit): commit is Commit => commit !== null);
      const max = caps?.[queue];
      const cap = max === undefined ? undefined : { queue, max };
      const results = await Promise.all(commits.map((commit) =>
        this.#committer.submit({
          commits: [commit],
          cap: commit.record.state === "Processing" ? cap : undefined,
        })
      ));
      results.forEach((result, i) => {
        if (!result.ok) {
          // A claim refused by its cap waits for a slot, not for another claimer.
          contended ||= !result.limited;
          return;
        }
        claimed++;
        this.#start([commits[i]]);
      });
    }
    return { claimed, contended };
  }

  /**
   * Runs the jobs `commits` claimed (an expired job's deletion runs nothing). A job of a capped
   * queue claimed natively keeps its slot until its outcome is written: the next native claim
   * does not go through the group commit behind that outcome, and would find the cap still full
   * (on PostgreSQL a third of the claims came back empty, each followed by a poll's sleep).
   */
  #start(commits: readonly Commit[], native = false): void {
    for (const commit of commits) {
      if (commit.record.state !== "Processing") continue;
      const { queue } = commit.record;
      const untilWritten = native && this.#limits.get(queue).concurrency !== undefined;
      this.#runner.start(commit.record, commit.before, { untilWritten });
    }
  }

  /** Claims through the backend's own claim (one round trip on Redis); lib still builds commits. */
  async #claimNatively(
    free: number,
    queues: string[],
    caps: Record<string, number> | undefined,
    overlapping?: OverlappingClaim,
  ): Promise<{ claimed: number; contended: boolean }> {
    const peek = overlapping?.peek ?? this.#overlap.peek();
    const query = caps ? { queues, limit: free, caps, peek } : { queues, limit: free, peek };
    const result = await this.#storage.claim!(query, claimBuilder(this.#ctx.config));
    // Its reserved slots are free again before its jobs take theirs (no turn sees them twice).
    overlapping?.unreserve();
    if (result.claimed.length) this.#hold.hold();
    this.#start(result.claimed, true);
    // Every slot taken: no claim is near until one frees, so what the jobs write (progress too)
    // is not held past this turn (the loop, waiting, does not release it).
    if (overlapping && this.#overlap.free === 0) {
      setImmediate(() => this.#overlap.free === 0 && this.#hold.release());
    }
    return { claimed: result.claimed.length, contended: result.contended };
  }
}

/** True when a queue's claims go through its limiter record (see rated_claim.ts). */
function isRated(config: QueueConfig): boolean {
  return config.rateLimit !== undefined || config.partition !== undefined;
}
