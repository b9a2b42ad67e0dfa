/**
 * @module
 * The one place lib reads the system's clock and random source; everything else takes them
 * injected (`now`/`random` options) so that tests can drive time and jitter.
 */

/** Where times and random numbers come from. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** A number in [0, 1). */
  random(): number;
  /**
   * Milliseconds on a clock that only moves forward at a steady rate, from an arbitrary start:
   * for durations measured by one process (never compared across hosts or written down).
   */
  monotonic(): number;
}

/**
 * The system's wall clock, `Math.random` and `performance.now()`: the default of every
 * `now`/`random`/`monotonic` option.
 */
export const systemClock: Clock = {
  now: Date.now,
  random: Math.random,
  monotonic: () => performance.now(),
};
