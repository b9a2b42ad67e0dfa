/**
 * @module
 * Where a job's time goes on PostgreSQL: `deno run -A bench/pg_profile.ts [jobs] [concurrency]`
 * enqueues `jobs` no-op jobs in chunks of 1,000, then processes them at `concurrency`, each phase
 * after an unmeasured pass, in a fresh schema (dropped after), and prints per job: this process's
 * CPU, the CPU of this process's PostgreSQL backends (from /proc, Linux only), statements sent,
 * transactions committed and WAL bytes (the WAL is the server's: quiet servers only).
 */

import process from "node:process";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { pg } from "../storage/postgres/db.ts";
import { PostgresStorage } from "../storage/postgres/mod.ts";

const BASE = Deno.env.get("TASKFLOW_PG_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
const jobs = Number(Deno.args[0] ?? 20_000);
const concurrency = Number(Deno.args[1] ?? 50);
const noop = defineJob("bench.noop", () => {});

let statements = 0;
const query = pg.Client.prototype.query;
// Counts every statement this process sends (a simple-protocol string of several counts once).
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  statements++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

const admin = new pg.Client({ connectionString: BASE });
await admin.connect();
const database = (await admin.query("select current_database() as d")).rows[0].d as string;

/** CPU ticks of the server processes connected to this database (this process's pool). */
async function backendTicks(): Promise<number> {
  const { rows } = await admin.query(
    "select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    [database],
  );
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* gone */ }
  }
  return ticks;
}

async function snapshot() {
  // Statistics reach pg_stat_database up to a second after a transaction ends.
  await new Promise((r) => setTimeout(r, 1_100));
  const { rows } = await admin.query(
    `select xact_commit::bigint as x, pg_current_wal_lsn() - '0/0'::pg_lsn as wal
     from pg_stat_database where datname = $1`,
    [database],
  );
  const cpu = process.cpuUsage();
  return {
    xacts: Number(rows[0].x),
    wal: Number(rows[0].wal),
    ticks: await backendTicks(),
    cpu: cpu.user + cpu.system,
    statements,
    at: performance.now(),
  };
}

type Snap = Awaited<ReturnType<typeof snapshot>>;

function report(phase: string, a: Snap, b: Snap, seconds: number, n: number) {
  const per = (x: number) => (x / n).toFixed(2);
  console.log(
    `${phase}: ${(n / seconds).toFixed(0)} jobs/s, deno CPU ${per(b.cpu - a.cpu)} µs/job, ` +
      `pg CPU ${per((b.ticks - a.ticks) * 10_000)} µs/job, statements ${
        per(b.statements - a.statements)
      }/job, commits ${per(b.xacts - a.xacts)}/job, WAL ${per(b.wal - a.wal)} B/job`,
  );
}

async function pass(measured: boolean, n: number) {
  const schema = `prof_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const storage = await PostgresStorage.open(`${BASE}?schema=${schema}`);
  const tf = new TaskFlow(storage);
  try {
    let a = await snapshot();
    let started = performance.now();
    for (let i = 0; i < n; i += 1_000) {
      await tf.enqueueMany(
        Array.from({ length: Math.min(1_000, n - i) }, () => ({ job: noop, args: null })),
      );
    }
    let seconds = (performance.now() - started) / 1_000;
    let b = await snapshot();
    if (measured) report("enqueueMany", a, b, seconds, n);
    const worker = createWorker({ storage, jobs: [noop], concurrency, logger: () => {} });
    a = await snapshot();
    started = performance.now();
    await worker.start();
    while ((await tf.counts()).states.Succeeded < n) await new Promise((r) => setTimeout(r, 5));
    seconds = (performance.now() - started) / 1_000;
    b = await snapshot();
    await worker.stop();
    if (measured) report(`process c=${concurrency}`, a, b, seconds, n);
  } finally {
    await tf.close();
    const drop = await PostgresStorage.open(`${BASE}?schema=${schema}`, { poolSize: 1 });
    await drop.dropSchema();
    await drop.close();
  }
}

await pass(false, jobs);
await pass(true, jobs);
await admin.end();
