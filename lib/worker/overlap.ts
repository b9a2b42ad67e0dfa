/**
 * @module
 * Overlapping claims: while the queues have a backlog, the claim loop claims the slots that
 * just freed up without waiting for the claim in flight, so that jobs finishing at different
 * times do not fall into waves behind one claim. The slots a claim asked for are reserved until
 * it settles, and it looks far enough ahead for the claims sent before its answer comes back.
 */

import type { WorkerContext } from "./context.ts";
import type { Pool } from "./pool.ts";

/** A claim of `asked` jobs that may look `peek` ready jobs ahead. */
export type OverlappingClaim = (
  asked: number,
  peek: number,
) => Promise<{ claimed: number; contended: boolean }>;

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

  /** Sends `claim` for every free slot, without waiting for it. */
  send(claim: OverlappingClaim): void {
    const asked = this.free;
    if (asked <= 0) return;
    const peek = this.peek();
    this.#reserved += asked;
    const sent: Promise<void> = claim(asked, peek).then(
      (result) => {
        // Fewer than asked may be the candidates' shortfall: only an empty claim stops it.
        this.flowing = result.claimed > 0;
        this.#ctx.recovered();
      },
      (error) => {
        // The next turn claims alone, and backs off if the storage still fails.
        this.flowing = false;
        this.#ctx.failed(error);
      },
    ).finally(() => {
      this.#reserved -= asked;
      this.#pending.delete(sent);
      this.#pool.wake();
    });
    this.#pending.add(sent);
  }

  /** Resolves once no claim is in flight. */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.all(this.#pending);
  }
}
