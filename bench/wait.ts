/**
 * @module
 * `waitFor` latency: how long after a job's final commit `tf.waitFor` resolves. In one process
 * the commit time is taken when the worker's append resolves (the waiter is woken by the feed
 * with the written ids); across processes the worker runs in a `main.ts worker` subprocess and
 * the figure runs from the Succeeded event's time (stamped just before its commit, so it
 * includes the commit) to the waiter's resolve, woken by the backend's cross-process wake-ups.
 */

import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import type { Change, Storage } from "../storage/storage.ts";
import type { Backend, Figure } from "./scenarios.ts";

const probe = defineJob("demo.noop", () => {});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function figure(latencies: number[]): Figure {
  latencies.sort((a, b) => a - b);
  return {
    value: percentile(latencies, 50),
    unit: "ms p50",
    extra: { p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
  };
}

/** `storage` whose appends note when each Succeeded commit was written (performance.now()). */
function noting(storage: Storage, committed: Map<string, number>): Storage {
  return new Proxy(storage, {
    get(target, name) {
      if (name === "append") {
        return async (changes: readonly Change[]) => {
          const results = await target.append(changes);
          const at = performance.now();
          changes.forEach((change, i) => {
            if (!results[i].ok) return;
            for (const c of change.commits) {
              if (c.record.state === "Succeeded") committed.set(c.id, at);
            }
          });
          return results;
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Same process: final commit (the worker's append resolved) → waitFor resolved, one at a time. */
export async function waitSameProcess(backend: Backend, n = 300): Promise<Figure> {
  const { storage, cleanup } = await backend.open();
  const tf = new TaskFlow(storage);
  const committed = new Map<string, number>();
  const worker = createWorker({
    storage: noting(storage, committed),
    jobs: [probe],
    concurrency: 10,
    logger: () => {},
  });
  try {
    await worker.start();
    const latencies: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = await tf.enqueue(probe, null);
      await tf.waitFor(id, { timeoutMs: 30_000 });
      const resolved = performance.now();
      // The feed wakes the waiter as the commit lands, sometimes before the worker's append
      // call has returned: that counts as 0.
      while (!committed.has(id)) await new Promise((r) => setTimeout(r, 0));
      latencies.push(Math.max(0, resolved - committed.get(id)!));
    }
    return figure(latencies);
  } finally {
    await worker.stop();
    await tf.close();
    await cleanup();
  }
}

/** Another process: the Succeeded event's time → waitFor resolved here (wall clocks). */
export async function waitCrossProcess(backend: Backend, n = 100): Promise<Figure> {
  const { storage, url, cleanup } = await backend.open();
  const tf = new TaskFlow(storage);
  if (url === "memory:" || url === "kv::memory:") {
    await tf.close();
    await cleanup();
    return { value: NaN, unit: "ms p50" };
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "worker", "--storage", url, "--jobs", "examples/jobs.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 2_000));
    const latencies: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = await tf.enqueue(probe, null);
      const record = await tf.waitFor(id, { timeoutMs: 30_000 });
      latencies.push(Date.now() - record.stateAt);
    }
    return figure(latencies);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await tf.close();
    await cleanup();
  }
}
