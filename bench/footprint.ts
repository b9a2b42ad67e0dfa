/**
 * @module
 * Storage footprint: bytes each finished job keeps on Redis and on a KV file, and which keys
 * hold them. No-op jobs with args `{ i, to: "user<i>@example.com" }` and result `{ ok: i }`
 * run through one worker at concurrency 50; nothing is removed.
 *
 * ```sh
 * deno run -A bench/footprint.ts [--backend redis|kv] [--jobs 10000] [--concurrency 50]
 *   [--redis redis://127.0.0.1:6379]
 * ```
 *
 * `deno task bench --only footprint` prints the per-job figures beside BullMQ's.
 *
 * Redis: `used_memory` (INFO memory) after minus before, per job, and `MEMORY USAGE` of each key
 * of the run's prefix grouped by kind (other clients of the same server add noise to the first
 * figure, never to the second). KV: the database file's size (with its -wal) after closing
 * minus an empty database's, per job, and the bytes of keys and values per key kind.
 */

import { parseArgs } from "node:util";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import type { Storage } from "../storage/storage.ts";

const job = defineJob(
  "bench.footprint",
  (args: { i: number; to: string }) => ({ ok: args.i }),
);

/** Bytes per key kind, for the breakdown. */
type Rooms = Map<string, number>;

/** What one backend keeps: the whole-store figure, and the bytes per key kind. */
export interface Footprint {
  /** Redis `used_memory` delta, or the KV file's growth, in bytes. */
  bytes: number;
  /** Bytes summed over the run's keys (Redis `MEMORY USAGE`, KV keys + values as JSON). */
  keyBytes: number;
  jobs: number;
  rooms: Rooms;
}

/** Enqueues `n` jobs and runs them to Succeeded at `concurrency`. */
async function runJobs(storage: Storage, n: number, concurrency: number): Promise<void> {
  const tf = new TaskFlow(storage);
  for (let i = 0; i < n; i += 1_000) {
    await tf.enqueueMany(
      Array.from({ length: Math.min(1_000, n - i) }, (_, j) => ({
        job,
        args: { i: i + j, to: `user${i + j}@example.com` },
      })),
    );
  }
  const worker = createWorker({ storage, jobs: [job], concurrency, logger: () => {} });
  await worker.start();
  while ((await storage.counts()).states.Succeeded < n) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await worker.stop();
}

/** The kind of a Redis key: its name without the prefix, the job id or the bucket time. */
function redisRoom(key: string, keyPrefix: string): string {
  const name = key.slice(keyPrefix.length);
  if (name.startsWith("log:")) return "log:<id> (list per job)";
  if (name.startsWith("bucket:")) return "bucket:* (time buckets)";
  return name;
}

/** Redis `INFO memory`'s `used_memory`, in bytes. */
export async function usedMemory(redis: RedisStorage): Promise<number> {
  const info = await redis.command<string>("INFO", "memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/** Runs `n` jobs under a prefix of their own on the Redis at `url`; measures what stays. */
export async function redisFootprint(
  url: string,
  n: number,
  concurrency: number,
): Promise<Footprint> {
  const prefix = `footprint-${crypto.randomUUID().slice(0, 8)}`;
  const redis = await RedisStorage.open(`${url}?prefix=${prefix}`);
  try {
    const before = await usedMemory(redis);
    await runJobs(redis, n, concurrency);
    const after = await usedMemory(redis);
    const rooms: Rooms = new Map();
    let cursor = "0";
    do {
      const [next, keys] = await redis.command<[string, string[]]>(
        "SCAN",
        cursor,
        "MATCH",
        `${redis.keyPrefix}*`,
        "COUNT",
        1_000,
      );
      const sizes = await Promise.all(
        keys.map((key) => redis.command<number | null>("MEMORY", "USAGE", key, "SAMPLES", 0)),
      );
      keys.forEach((key, i) => {
        const room = redisRoom(key, redis.keyPrefix);
        rooms.set(room, (rooms.get(room) ?? 0) + (sizes[i] ?? 0));
      });
      cursor = next;
    } while (cursor !== "0");
    return { bytes: after - before, keyBytes: sum(rooms), jobs: n, rooms };
  } finally {
    await redis.deleteAllKeys();
    await redis.close();
  }
}

/** Size of a SQLite database with its write-ahead log. */
export async function fileSize(path: string): Promise<number> {
  let total = 0;
  for (const suffix of ["", "-wal"]) {
    try {
      total += (await Deno.stat(path + suffix)).size;
    } catch {
      // no such file
    }
  }
  return total;
}

/** Bytes of a KV value as stored (JSON text as a stand-in for V8 serialization). */
function valueBytes(value: unknown): number {
  if (value instanceof Deno.KvU64) return 8;
  if (value === null) return 1;
  return new TextEncoder().encode(JSON.stringify(value)).length;
}

/** Runs `n` jobs on a fresh KV file; measures its growth. */
export async function kvFootprint(n: number, concurrency: number): Promise<Footprint> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-footprint-" });
  const path = `${dir}/footprint.sqlite`;
  try {
    (await KvStorage.open(path, `kv:${path}`)).close();
    const before = await fileSize(path);
    const kv = await KvStorage.open(path, `kv:${path}`);
    await runJobs(kv, n, concurrency);
    const rooms: Rooms = new Map();
    for await (const entry of kv.kv.list({ prefix: ["taskflow"] })) {
      const room = String(entry.key[1]);
      const keyBytes = new TextEncoder().encode(JSON.stringify(entry.key)).length;
      rooms.set(room, (rooms.get(room) ?? 0) + keyBytes + valueBytes(entry.value));
    }
    await kv.close();
    const after = await fileSize(path);
    return { bytes: after - before, keyBytes: sum(rooms), jobs: n, rooms };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function sum(rooms: Rooms): number {
  return [...rooms.values()].reduce((a, b) => a + b, 0);
}

function report(what: string, total: string, { bytes, keyBytes, jobs: n, rooms }: Footprint): void {
  console.log(`\n${what}: ${n} finished jobs`);
  console.log(`  ${total}: ${bytes} B = ${(bytes / n).toFixed(0)} B per job`);
  console.log(`  by key kind (${(keyBytes / n).toFixed(0)} B per job in all):`);
  for (const [room, bytes] of [...rooms].sort((a, b) => b[1] - a[1])) {
    const share = ((100 * bytes) / keyBytes).toFixed(1).padStart(5);
    console.log(`    ${(bytes / n).toFixed(1).padStart(8)} B/job ${share}%  ${room}`);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string" },
      jobs: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "50" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
    },
  });
  const n = Number(values.jobs), concurrency = Number(values.concurrency);
  const backends = values.backend ? [values.backend] : ["redis", "kv"];
  for (const backend of backends) {
    if (backend === "redis") {
      const redis = await redisFootprint(values.redis!, n, concurrency);
      report(`redis (${values.redis})`, "used_memory delta", redis);
    } else if (backend === "kv") {
      report("kv file", "file size delta", await kvFootprint(n, concurrency));
    } else throw new Error(`--backend ${backend}: expected redis or kv`);
  }
}
