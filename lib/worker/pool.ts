/**
 * @module
 * The bounded pool: at most `size` handlers run at once. The claim loop asks for free slots,
 * claims exactly that many jobs, and runs each through {@link Pool.run}.
 */

/** A counter of busy slots with a way to wait for one to free up. */
export class Pool {
  readonly size: number;
  #busy = 0;
  #peak = 0;
  #waiters: Array<() => void> = [];

  /** A pool of `size` slots. */
  constructor(size: number) {
    this.size = size;
  }

  /** Slots running a handler now. */
  get busy(): number {
    return this.#busy;
  }

  /** Free slots. */
  get free(): number {
    return this.size - this.#busy;
  }

  /** Most slots ever busy at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Runs `task` in a slot the caller has checked is free. The slot stays taken until the task
   * settles, even if its job was already given up on (a handler that ignores its abort signal
   * still counts against the bound).
   */
  run(task: () => Promise<void>): Promise<void> {
    if (this.#busy >= this.size) throw new RangeError("no free slot in the pool");
    this.#busy++;
    this.#peak = Math.max(this.#peak, this.#busy);
    // then() rather than finally(): finally() waits on a promise of its own per settle.
    return task().then(() => this.#release(), (error) => {
      this.#release();
      throw error;
    });
  }

  #release(): void {
    this.#busy--;
    if (this.#waiters.length) this.wake();
  }

  /** Wakes everyone waiting in {@link Pool.whenFree} or {@link Pool.idle} (they look again). */
  wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Resolves when a slot frees up (at once if one is free), or on {@link Pool.wake}.
   * `onFree` runs synchronously as the slot frees (or on the wake-up), before the waiter
   * resumes; not when a slot is free at once. `reserved` free slots are spoken for (claims in
   * flight): only a slot beyond them counts as free.
   */
  whenFree(onFree?: () => void, reserved = 0): Promise<void> {
    if (this.free > reserved) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(onFree ? () => (onFree(), resolve()) : resolve);
    });
  }

  /** Resolves when no slot is busy. */
  async idle(): Promise<void> {
    while (this.#busy > 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
