/**
 * @module
 * Demo jobs run by `deno task start` (and `deno task worker`) unless `--jobs` names another
 * module. A jobs module exports the definitions a worker registers.
 */

import { defineJob, DiscardError } from "../lib/mod.ts";

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

/** Sleeps for `ms` milliseconds (aborted on delete, timeout or shutdown). */
export const nap = defineJob("demo.sleep", async (args: { ms: number }, ctx) => {
  await ctx.log(`sleeping ${args.ms} ms`);
  await sleep(args.ms, ctx.signal);
  return { slept: args.ms };
}, { timeoutMs: 60_000 });

/** Fails with probability `failRate` (default 0.5); retried with a short fixed backoff. */
export const flaky = defineJob("demo.flaky", (args: { failRate?: number }, ctx) => {
  if ((args.failRate ?? 0.5) >= 1) throw new DiscardError("failRate 1 means this never works");
  if (Math.random() < (args.failRate ?? 0.5)) {
    throw new Error(`unlucky on attempt ${ctx.attempt}`);
  }
  return { attempt: ctx.attempt };
}, { attempts: 5, backoff: { type: "fixed", delayMs: 2_000 } });

/** Reports progress in `steps` steps, `stepMs` apart. */
export const report = defineJob(
  "demo.progress",
  async (args: { steps?: number; stepMs?: number }, ctx) => {
    const steps = args.steps ?? 10;
    for (let i = 1; i <= steps; i++) {
      await sleep(args.stepMs ?? 300, ctx.signal);
      await ctx.progress(Math.round((i / steps) * 100));
    }
    await ctx.log(`done in ${steps} steps`);
    return { steps };
  },
);

/** Does nothing: for benchmarks and smoke tests. */
export const noop = defineJob("demo.noop", () => {});
