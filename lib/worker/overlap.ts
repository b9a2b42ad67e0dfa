/**
 * @module
 * Overlapping claims: while the queues have a backlog, the claim loop claims the slots that
 * just freed up without waiting for the claim in flight, so that jobs finishing at different
 * times do not fall into waves behind one claim. The slots a claim asked for are reserved until
 * it settles, and it looks far enough ahead for the claims sent before its answer comes back.
 */

import type { WorkerContext } from "./context.ts";
import type { Pool } from "./pool.ts";

/** A claim sent while others are in flight: its size, how far it looks ahead, its slots. */
export interface OverlappingClaim {
  asked: number;
  peek: number;
  /** Frees its reserved slots; called as its answer comes, before its jobs take slots. */
  unreserve(): void;
}

/** The claims in flight of one claim loop and the slots they reserve. */
export class Overlap {
  /** The last claim that settled took every slot it asked for: the queues have a backlog. */
  flowing = false;
  #ctx: WorkerContext;
  #pool: Pool;
  #reserved = 0;
  #pending = new Set<Promise<void>>();

  /** Claims in flight for the slots of `pool`. */
  constructor(ctx: WorkerContext, pool: Pool) {
    this.#ctx = ctx;
    this.#pool = pool;
  }

  /** Free slots that no claim in flight has asked for. */
  get free(): number {
    return this.#pool.free - this.#reserved;
  }

  /** {@link Pool.whenFree} for a slot beyond the reserved ones (a claim settling wakes it too). */
  whenFree(onFree: () => void): Promise<void> {
    return this.#pool.whenFree(onFree, this.#reserved);
  }

  /**
   * How many ready jobs a claim looks ahead: a pool's worth (any of its slots may free up
   * while the claim is in flight) beyond what the claims in flight take first.
   */
  peek(): number {
    return this.#pool.size + this.#reserved;
  }

  /**
   * Sends `claim` for every free slot (at most `most`), without waiting for it. The loop is
   * woken when it settles only if slots are left free (fewer jobs than asked, or a failure).
   */
  send(claim: (claim: OverlappingClaim) => Promise<{ claimed: number }>, most = Infinity): void {
    const asked = Math.min(this.free, most);
    if (asked <= 0) return;
    let reserved = true;
    const unreserve = () => {
      if (reserved) this.#reserved -= asked;
      reserved = false;
    };
    // Claims of at most `most`: those sent before its answer comes back take at most the slots
    // it did not ask for, then the next one `most` (claims are answered in the order sent).
    const peek = most < this.#pool.size ? this.#pool.size - asked + most : this.peek();
    const overlapping = { asked, peek, unreserve };
    this.#reserved += asked;
    let short = true;
    const sent: Promise<void> = claim(overlapping).then(
      (result) => {
        // Fewer than asked may be the candidates' shortfall: only an empty claim stops it.
        this.flowing = result.claimed > 0;
        short = result.claimed < asked;
        this.#ctx.recovered();
      },
      (error) => {
        // The next turn claims alone, and backs off if the storage still fails.
        this.flowing = false;
        this.#ctx.failed(error);
      },
    ).finally(() => {
      unreserve();
      this.#pending.delete(sent);
      if (short) this.#pool.wake();
    });
    this.#pending.add(sent);
  }

  /** Whether a claim is in flight. */
  get pending(): boolean {
    return this.#pending.size > 0;
  }

  /** Resolves once no claim is in flight. */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.all(this.#pending);
  }
}
