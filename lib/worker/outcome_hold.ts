/**
 * @module
 * The hold of a worker's outcome writes around its claims (see {@link OutcomeHold}).
 */

import type { GroupCommitter } from "../group_commit.ts";
import type { WorkerContext } from "./context.ts";

/**
 * The hold of outcome writes around a one-call claim: outcomes wait from the moment claimed jobs
 * start (or an awaited slot frees up) until the next claim is sent, so the storage runs the claim
 * first and the two overlap instead of taking turns. An outcome submitted before the hold is
 * still caught: the group commit looks at the hold again before it writes. Every hold and
 * release of the worker's writes is in this class.
 */
export class OutcomeHold {
  #committer: GroupCommitter;
  #ctx: WorkerContext;
  #native: boolean;
  /** Whether the loop's turn in progress may hold: a turn that failed must not hold what its
   * claim started while the loop backs off. */
  #armed = false;

  /** The hold of `committer`'s writes; only a one-call claim (`nativeClaim`) holds. */
  constructor(ctx: WorkerContext, committer: GroupCommitter, nativeClaim: boolean) {
    this.#ctx = ctx;
    this.#committer = committer;
    this.#native = nativeClaim;
  }

  /** The turn in progress may hold from now on. */
  arm(): void {
    this.#armed = true;
  }

  /** Holds outcomes if the turn in progress may (only a one-call claim gains from it). */
  hold = (): void => {
    if (this.#armed && this.#native && this.#ctx.running) this.#committer.hold();
  };

  /** Writes what was held. */
  release(): void {
    this.#committer.release();
  }

  /** A turn failed: releases, and nothing more is held until the next turn arms. */
  disarm(): void {
    this.#armed = false;
    this.#committer.release();
  }
}
