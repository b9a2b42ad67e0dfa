// pg-boss side of `deno task bench --backends postgres`: the same scenarios as TaskFlow's, on the
// same PostgreSQL database, each in a schema of its own (dropped afterwards).
//
//   node bench.mjs <enqueueSingle|enqueueBulk|c10|c50|idle> [--quick]   (PG_URL in the env)
//     one scenario as {"value": ..., "extra": {...}} after an unmeasured pass (../../warm.mjs)
//
// Scenarios:
//   enqueueSingle  `await boss.send()` one job at a time (jobs/s)
//   enqueueBulk    `boss.insert()` in chunks of 1,000 (jobs/s)
//   c10 / c50      no-op jobs with 10 / 50 in flight, first completion to last (jobs/s), in
//                  pg-boss's best configuration for that many in flight: one worker fetching
//                  batches of N (`localConcurrency: 1, batchSize: N, burstWhenBatchFull`);
//                  extra.perJob: `localConcurrency: N, batchSize: 1` (N workers polling)
//   idle           enqueue→start latency on idle workers (ms, median; 10 at once, sends 2 ms
//                  apart), LISTEN/NOTIFY on (`useListenNotify`, queue `notify: true`): pg-boss's
//                  fastest wake-up
import { parseArgs } from "node:util";
import { PgBoss } from "pg-boss";
import { warm } from "../../warm.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: "boolean", default: false } },
});
const url = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const scale = values.quick ? 0.1 : 1;
const CHUNK = 1_000;

/** A promise and its resolve function (Node 20 has no Promise.withResolvers). */
function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** Runs `fn` with a started pg-boss in a fresh schema and a fresh queue; drops the schema. */
async function withBoss(options, fn) {
  const schema = `pgboss_bench_${process.pid}_${Date.now().toString(36)}`;
  const boss = new PgBoss({
    connectionString: url,
    schema,
    max: 20,
    supervise: false,
    schedule: false,
    ...options,
  });
  boss.on("error", () => {});
  await boss.start();
  const queue = "bench";
  await boss.createQueue(queue, { notify: options.useListenNotify === true });
  try {
    return await fn(boss, queue);
  } finally {
    await boss.stop({ graceful: false, wait: true });
    const drop = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false });
    drop.on("error", () => {});
    await drop.start();
    await drop.getDb().executeSql(`drop schema if exists ${schema} cascade`);
    await drop.stop({ graceful: false, wait: true });
  }
}

async function insertMany(boss, queue, n) {
  for (let i = 0; i < n; i += CHUNK) {
    const size = Math.min(CHUNK, n - i);
    await boss.insert(queue, Array.from({ length: size }, (_, j) => ({ data: { i: i + j } })));
  }
}

async function enqueueSingle(n) {
  return await withBoss({}, async (boss, queue) => {
    const started = performance.now();
    for (let i = 0; i < n; i++) await boss.send(queue, { i });
    return { value: n / ((performance.now() - started) / 1000) };
  });
}

async function enqueueBulk(n) {
  return await withBoss({}, async (boss, queue) => {
    const started = performance.now();
    await insertMany(boss, queue, n);
    return { value: n / ((performance.now() - started) / 1000) };
  });
}

/** No-op jobs/s with `work` options, first completion to last. */
async function processing(n, work) {
  return await withBoss({}, async (boss, queue) => {
    await insertMany(boss, queue, n);
    let done = 0, first = 0;
    const { promise, resolve } = deferred();
    await boss.work(queue, { pollingIntervalSeconds: 0.5, ...work }, (jobs) => {
      if (!first) first = performance.now();
      done += jobs.length;
      if (done >= n) resolve(performance.now());
    });
    const last = await promise;
    return n / ((last - first) / 1000);
  });
}

async function process_(n, inFlight) {
  const batched = await processing(n, {
    localConcurrency: 1,
    batchSize: inFlight,
    burstWhenBatchFull: true,
  });
  // One worker per job in flight polls on its own: far slower, reported beside.
  const perJob = await processing(Math.max(50, Math.round(500 * scale)), {
    localConcurrency: inFlight,
    batchSize: 1,
  });
  return { value: batched, extra: { perJob } };
}

/** As TaskFlow's idleLatency: an idle worker (10 at once), n awaited sends 2 ms apart. */
async function idle(n) {
  return await withBoss({ useListenNotify: true }, async (boss, queue) => {
    const sent = new Map();
    const latencies = [];
    const all = deferred();
    await boss.work(
      queue,
      { localConcurrency: 10, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 30 },
      ([job]) => {
        latencies.push(performance.now() - sent.get(job.data.i));
        if (latencies.length === n) all.resolve();
      },
    );
    await new Promise((r) => setTimeout(r, 600)); // let the workers go idle
    for (let i = 0; i < n; i++) {
      sent.set(i, performance.now());
      await boss.send(queue, { i });
      await new Promise((r) => setTimeout(r, 2));
    }
    await all.promise;
    latencies.sort((a, b) => a - b);
    return {
      value: latencies[latencies.length >> 1],
      extra: { p95: latencies[Math.floor(latencies.length * 0.95)] },
    };
  });
}

const SCENARIOS = {
  enqueueSingle: [enqueueSingle, 2_000],
  enqueueBulk: [enqueueBulk, 20_000],
  c10: [(n) => process_(n, 10), 20_000],
  c50: [(n) => process_(n, 50), 20_000],
  idle: [idle, 1_000],
};

const [fn, size] = SCENARIOS[positionals[0]] ?? [];
if (!fn) {
  console.error(`unknown scenario ${positionals[0]}; known: ${Object.keys(SCENARIOS).join(", ")}`);
  process.exit(2);
}
const n = Math.max(20, Math.round(size * scale));
// As bench.ts does for TaskFlow: an unmeasured pass first (a tenth for the latency scenario).
if (positionals[0] === "idle") {
  await fn(Math.max(20, Math.round(n / 10)));
  console.log(JSON.stringify(await fn(n)));
} else {
  console.log(JSON.stringify(await warm(() => fn(n))));
}
process.exit(0);
