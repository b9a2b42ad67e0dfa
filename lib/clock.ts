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
}

/** The system's wall clock and `Math.random`: the default of every `now`/`random` option. */
export const systemClock: Clock = {
  now: Date.now,
  random: Math.random,
};
