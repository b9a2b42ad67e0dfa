/**
 * @module
 * A chaos worker whose wall clock is off by TASKFLOW_CHAOS_SKEW_MS (a host with broken NTP):
 * `main.ts worker` with the chaos run's settings, on the storage named by TASKFLOW_CHAOS_URL.
 * With TASKFLOW_CHAOS_KEEP_MS it prunes Succeeded jobs kept that long, every
 * TASKFLOW_CHAOS_PRUNE_MS, archiving each slice to TASKFLOW_CHAOS_ARCHIVE (a directory) first.
 * TASKFLOW_CHAOS_QUEUES (comma-separated) names the queues it serves.
 */

import { openStorage } from "../storage/open.ts";
import { ndjsonArchive } from "../lib/cli/retention.ts";
import { createWorker } from "../lib/worker/worker.ts";
import * as jobs from "./fixtures/chaos_jobs.ts";

const env = (name: string) => Deno.env.get(`TASKFLOW_CHAOS_${name}`);
const skew = Number(env("SKEW_MS") ?? 0);
const keepMs = env("KEEP_MS");
const storage = await openStorage(env("URL")!);
const worker = createWorker({
  storage,
  jobs,
  concurrency: 20,
  heartbeatMs: 1_000,
  pollIntervalMs: 100,
  handleSignals: true,
  ...env("QUEUES") ? { queues: env("QUEUES")!.split(",") } : {},
  now: () => Date.now() + skew,
  ...keepMs === undefined ? {} : {
    retention: {
      succeeded: { maxAgeMs: Number(keepMs) },
      archive: ndjsonArchive(env("ARCHIVE")!),
    },
    pruneIntervalMs: Number(env("PRUNE_MS") ?? 250),
  },
});
await worker.start();
await worker.closed;
await storage.close();
