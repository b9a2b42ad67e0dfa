// Shared by both sides of bench/redis_vs_bullmq.ts and of deno task bench (TaskFlow under Deno,
// BullMQ under Node), so that the two engines are warmed up the same way.

/**
 * Runs `fn` once unmeasured at full size, then once measured, and returns the measured figure:
 * both engines are measured in a steady state, with their hot paths compiled and their heaps
 * grown, as in a long-running worker. (A pass at a tenth of the size left a fresh process still
 * tiering up and growing its young generation: the memory backend at concurrency 50 measured
 * about a quarter lower than in a process that had run other scenarios before.)
 *
 * @template T
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function warm(fn) {
  await fn();
  return await fn();
}
