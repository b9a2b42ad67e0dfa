/**
 * @module
 * A chaos worker whose wall clock is off by TASKFLOW_CHAOS_SKEW_MS (a host with broken NTP):
 * `main.ts worker` with the chaos run's settings, on the storage named by TASKFLOW_CHAOS_URL.
 */

import { openStorage } from "../storage/open.ts";
import { createWorker } from "../lib/worker/worker.ts";
import * as jobs from "./fixtures/chaos_jobs.ts";

const skew = Number(Deno.env.get("TASKFLOW_CHAOS_SKEW_MS") ?? 0);
const storage = await openStorage(Deno.env.get("TASKFLOW_CHAOS_URL")!);
const worker = createWorker({
  storage,
  jobs,
  concurrency: 20,
  heartbeatMs: 1_000,
  pollIntervalMs: 100,
  handleSignals: true,
  now: () => Date.now() + skew,
});
await worker.start();
await worker.closed;
await storage.close();
