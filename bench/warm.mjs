// Shared by both sides of bench/redis_vs_bullmq.ts (TaskFlow under Deno, BullMQ under Node), so
// that the two engines are warmed up the same way.

/**
 * Runs `fn` once unmeasured at a tenth of the size (so that the JIT has compiled the hot paths),
 * then once measured, and returns the measured figure. `size` holds the sizes `fn` reads: they
 * are scaled down for the first run and restored after it.
 *
 * @param {() => Promise<number>} fn
 * @param {{ jobs: number, single: number }} size
 * @returns {Promise<number>}
 */
export async function warm(fn, size) {
  const { jobs, single } = size;
  size.jobs = Math.max(200, Math.round(jobs / 10));
  size.single = Math.max(100, Math.round(single / 10));
  try {
    await fn();
  } finally {
    Object.assign(size, { jobs, single });
  }
  return await fn();
}
