/**
 * @module
 * `watch` across process deaths and a storage restart: a watcher SIGKILLed and started again
 * from its last saved cursor yields every event exactly once, in order (KV file, Redis); and a
 * watcher resuming after Redis itself restarted (AOF on, a private redis-server on a free port)
 * misses nothing of what the server kept.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import type { WatchedEvent } from "../lib/watch/watch.ts";
import { eventually } from "./helpers.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("..", import.meta.url).pathname;
const step = defineJob("watch.step", async (args: { n: number }, ctx) => {
  await ctx.progress(args.n);
  return args.n;
});

/** The complete lines of the watchers' output file, as `[cursor, "jobId/seq"]`. */
async function linesOf(out: string): Promise<[string, string][]> {
  let text = "";
  try {
    text = await Deno.readTextFile(out);
  } catch {
    return [];
  }
  const complete = text.endsWith("\n") ? text : text.slice(0, text.lastIndexOf("\n") + 1);
  return complete.split("\n").filter(Boolean).map((line) => {
    const [cursor, jobId, seq] = line.split("\t");
    return [cursor, `${jobId}/${seq}`];
  });
}

function spawnWatcher(url: string, since: string, out: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/fixtures/watcher.ts", url, since, out],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Every event the storage's feed holds, read from the start in this process. */
async function everything(tf: TaskFlow, count: number): Promise<WatchedEvent[]> {
  const all: WatchedEvent[] = [];
  const signal = AbortSignal.timeout(20_000);
  for await (const item of tf.watch({ since: "start", signal })) {
    all.push(item);
    if (all.length === count) break;
  }
  return all;
}

async function killAndResume(url: string, dir: string): Promise<void> {
  const out = `${dir}/seen.tsv`;
  const tf = await TaskFlow.open(url);
  const worker = createWorker({
    storage: tf.storage,
    jobs: [step],
    concurrency: 4,
    logger: () => {},
  });
  let watcher = spawnWatcher(url, "start", out);
  try {
    await worker.start();
    let ids: string[] = [];
    // Three times: more work, then SIGKILL the watcher once it has seen more, and restart it
    // after the last cursor it saved.
    for (let round = 0; round < 3; round++) {
      ids = ids.concat(
        await tf.enqueueMany(Array.from({ length: 30 }, (_, n) => ({ job: step, args: { n } }))),
      );
      const before = (await linesOf(out)).length;
      await eventually(async () => assert.ok((await linesOf(out)).length > before + 10), 20_000);
      watcher.kill("SIGKILL");
      await watcher.status;
      const lines = await linesOf(out);
      watcher = spawnWatcher(url, lines[lines.length - 1][0], out);
    }
    for (const id of ids) await tf.waitFor(id, { timeoutMs: 30_000 });
    let total = 0;
    for (const id of ids) total += (await tf.events(id)).length;
    const expected = (await everything(tf, total)).map((w) => `${w.jobId}/${w.event.seq}`);
    assert.equal(expected.length, total);
    await eventually(async () => assert.equal((await linesOf(out)).length, total), 30_000);
    assert.deepEqual((await linesOf(out)).map(([, key]) => key), expected);
  } finally {
    watcher.kill("SIGKILL");
    await watcher.status;
    await worker.stop();
    await tf.close();
  }
}

Deno.test({
  ...opts,
  name:
    "watch process (kv file): a SIGKILLed watcher resumed from its saved cursor sees every event once, in order",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-watchproc-" });
    try {
      await killAndResume(`kv:${dir}/w.sqlite`, dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

await whenRedis("redis watch process", () => {
  Deno.test({
    ...opts,
    name:
      "watch process (redis): a SIGKILLed watcher resumed from its saved cursor sees every event once, in order",
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "taskflow-watchproc-" });
      const prefix = `tftest-watchproc-${crypto.randomUUID().slice(0, 8)}`;
      try {
        await killAndResume(`${REDIS_URL}?prefix=${prefix}`, dir);
      } finally {
        await deletePrefix(prefix);
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
});

/** A free TCP port on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts a private redis-server with AOF in `dir` on `port`; resolves once it answers. */
async function startRedis(dir: string, port: number): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Ready once it answers PING with PONG (while it loads its AOF it answers LOADING).
  await eventually(async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      assert.equal(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), "+PONG\r\n");
    } finally {
      conn.close();
    }
  }, 10_000);
  return child;
}

function hasRedisServer(): boolean {
  try {
    new Deno.Command("redis-server", { args: ["--version"], stdout: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  ...opts,
  name:
    "watch across a Redis restart (AOF): resumed from its saved cursor, nothing the server kept is missed",
  ignore: !hasRedisServer(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-aof-" });
    const port = freePort();
    const url = `redis://127.0.0.1:${port}?prefix=aof`;
    let server = await startRedis(dir, port);
    try {
      let tf = await TaskFlow.open(url);
      const first = await tf.enqueueMany(
        Array.from({ length: 20 }, (_, n) => ({ job: step, args: { n } })),
      );
      const seen: WatchedEvent[] = [];
      for await (const item of tf.watch({ since: "start", signal: AbortSignal.timeout(10_000) })) {
        seen.push(item);
        if (seen.length === 40) break; // created + Enqueued of each
      }
      const saved = seen[seen.length - 1].cursor;
      await tf.close();
      // SIGTERM: Redis writes its AOF and stops; then the same directory serves again.
      server.kill("SIGTERM");
      await server.status;
      server = await startRedis(dir, port);
      tf = await TaskFlow.open(url);
      const worker = createWorker({
        storage: tf.storage,
        jobs: [step],
        concurrency: 4,
        logger: () => {},
      });
      await worker.start();
      const second = await tf.enqueueMany(
        Array.from({ length: 10 }, (_, n) => ({ job: step, args: { n } })),
      );
      const ids = [...first, ...second];
      for (const id of ids) await tf.waitFor(id, { timeoutMs: 30_000 });
      await worker.stop();
      let total = 0;
      for (const id of ids) total += (await tf.events(id)).length;
      const rest: WatchedEvent[] = [];
      for await (const item of tf.watch({ since: saved, signal: AbortSignal.timeout(10_000) })) {
        rest.push(item);
        if (seen.length + rest.length >= total) break;
      }
      const keys = new Set([...seen, ...rest].map((w) => `${w.jobId}/${w.event.seq}`));
      const missing: string[] = [];
      for (const id of ids) {
        for (const event of await tf.events(id)) {
          if (!keys.has(`${id}/${event.seq}`)) missing.push(`${id}/${event.seq}`);
        }
      }
      assert.deepEqual(missing, []);
      await tf.close();
    } finally {
      server.kill("SIGTERM");
      await server.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
