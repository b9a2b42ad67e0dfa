/**
 * @module
 * The bounded pool: at most `size` handlers run at once. The claim loop asks for free slots,
 * claims exactly that many jobs, and runs each through {@link Pool.run}. While handlers are
 * short, a few places beyond the slots ({@link Pool.ahead}) hold jobs claimed ahead, each
 * started as a slot frees: a slot then waits for no claim's round trip (a third of a 5 ms
 * job's cycle at concurrency 100, see bench/RESULTS.md).
 */

/** Handlers counted before their mean duration decides whether jobs are claimed ahead. */
const SAMPLES = 20;
/** Jobs are claimed ahead only while handlers take at most this long on average (ms). */
export const AHEAD_MAX_MS = 50;

/** A counter of busy slots with a way to wait for one to free up. */
export class Pool {
  readonly size: number;
  #busy = 0;
  #peak = 0;
  #waiters: Array<() => void> = [];
  /** Tasks claimed ahead, started in order as slots free. */
  #queued: Array<() => void> = [];
  #ahead = 0;
  /** Handlers timed so far (up to SAMPLES), and their mean duration (moving, in ms). */
  #timed = 0;
  #meanMs = 0;

  /** A pool of `size` slots. */
  constructor(size: number) {
    this.size = size;
  }

  /** Slots running a handler now. */
  get busy(): number {
    return this.#busy;
  }

  /** Free slots, and places left for jobs claimed ahead. */
  get free(): number {
    return Math.max(0, this.size + this.#ahead - this.#busy - this.#queued.length);
  }

  /** Tasks waiting for a slot (claimed ahead). */
  get queued(): number {
    return this.#queued.length;
  }

  /**
   * Places for tasks beyond the slots: `places` (the claim loop's choice for its queues) once
   * handlers have been timed short, else none. A long handler holds a slot that long: a job
   * claimed ahead of it would wait, held from other workers, for nothing gained.
   */
  set ahead(places: number) {
    this.#ahead = this.#timed >= SAMPLES && this.#meanMs <= AHEAD_MAX_MS ? places : 0;
  }

  /** The places beyond the slots now. */
  get ahead(): number {
    return this.#ahead;
  }

  /** Most slots ever busy at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Runs `task` in a slot the caller has checked is free (or, with every slot busy, in a place
   * ahead: it starts when a slot frees; never more than `size` run at once). The slot stays
   * taken until the task settles, even if its job was already given up on (a handler that
   * ignores its abort signal still counts against the bound).
   */
  run(task: () => Promise<void>): Promise<void> {
    if (this.#busy < this.size) return this.#start(task);
    // Past the places ahead too when they shrank while a claim for them was in flight: its
    // jobs are held already, and wait their turn.
    return new Promise((resolve, reject) => {
      this.#queued.push(() => this.#start(task).then(resolve, reject));
    });
  }

  /** Drops the tasks not started yet (a stopping worker requeues their jobs). */
  dropQueued(): void {
    this.#queued = [];
    if (this.#waiters.length) this.wake();
  }

  #start(task: () => Promise<void>): Promise<void> {
    this.#busy++;
    this.#peak = Math.max(this.#peak, this.#busy);
    const started = performance.now();
    // then() rather than finally(): finally() waits on a promise of its own per settle.
    return task().then(() => this.#release(started), (error) => {
      this.#release(started);
      throw error;
    });
  }

  #release(started: number): void {
    this.#busy--;
    const ms = performance.now() - started;
    if (this.#timed < SAMPLES) this.#meanMs += (ms - this.#meanMs) / ++this.#timed;
    else this.#meanMs += (ms - this.#meanMs) / SAMPLES;
    // A long handler turns claiming ahead off at once (the next turn may turn it on again).
    if (this.#meanMs > AHEAD_MAX_MS) this.#ahead = 0;
    this.#queued.shift()?.();
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

  /** Resolves when no slot is busy and no task waits for one. */
  async idle(): Promise<void> {
    while (this.#busy > 0 || this.#queued.length) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
