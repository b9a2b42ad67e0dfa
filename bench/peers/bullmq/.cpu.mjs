import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";
const JOBS = 20000, c = Number(process.argv[2] ?? 50);
const conn = new IORedis({ maxRetriesPerRequest: null });
const queue = new Queue(`cpu-${Date.now()}`, { connection: conn });
for (let i = 0; i < JOBS; i += 1000) await queue.addBulk(Array.from({ length: 1000 }, (_, j) => ({ name: "noop", data: { i: i + j } })));
async function rcpu() { const info = await conn.info("cpu"); return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]); }
const r0 = await rcpu(); const p0 = process.cpuUsage(); const t0 = performance.now();
let done = 0; let resolve; const fin = new Promise((r) => resolve = r);
const wconn = new IORedis({ maxRetriesPerRequest: null });
const worker = new Worker(queue.name, async () => {}, { connection: wconn, concurrency: c });
worker.on("completed", () => { if (++done === JOBS) resolve(); });
await fin; const el = (performance.now() - t0) / 1000; const p1 = process.cpuUsage(p0); const r1 = await rcpu();
console.log(`bullmq c=${c} ${Math.round(JOBS / el)} jobs/s; node cpu ${((p1.user + p1.system) / 1e6 / el * 100).toFixed(0)}%; redis cpu ${((r1 - r0) / el * 100).toFixed(0)}%`);
await worker.close(); await queue.obliterate({ force: true }); await queue.close(); conn.disconnect(); wconn.disconnect();
