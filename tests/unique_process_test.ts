/**
 * @module
 * Unique jobs across processes: 4 processes make 250 concurrent enqueues each of the same
 * unique job, on a KV file and on Redis; exactly one job exists and it logged 999
 * `deduplicated` events.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { doctor } from "../lib/doctor.ts";
import { fold } from "../lib/projection.ts";
import { deletePrefix, REDIS_URL, whenRedis } from "./redis_helpers.ts";

const root = new URL("..", import.meta.url).pathname;
const PROCESSES = 4;
const EACH = 250;

/** Runs the enqueuers against `url` together; returns every id they got back. */
async function race(url: string): Promise<string[]> {
  const children = Array.from({ length: PROCESSES }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tests/fixtures/unique_enqueuer.ts", url, String(EACH)],
      cwd: root,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn());
  const lines = children.map((child) => lineReader(child.stdout));
  try {
    // Every process is open and waiting before any enqueues.
    for (const next of lines) assert.equal(await next(), "ready");
    const go = new TextEncoder().encode("go\n");
    await Promise.all(children.map(async (child) => {
      const writer = child.stdin.getWriter();
      await writer.write(go);
      await writer.close();
    }));
    const ids = (await Promise.all(lines.map((next) => next()))).flatMap((line) =>
      JSON.parse(line) as string[]
    );
    for (const child of children) assert.equal((await child.status).code, 0);
    return ids;
  } catch (error) {
    for (const child of children) child.kill("SIGKILL");
    throw error;
  }
}

function lineReader(stream: Deno.ChildProcess["stdout"]): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return async () => {
    while (!buffer.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the enqueuer ended early: ${JSON.stringify(buffer)}`);
      buffer += value;
    }
    const at = buffer.indexOf("\n");
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    return line;
  };
}

async function check(url: string): Promise<void> {
  const ids = await race(url);
  assert.equal(ids.length, PROCESSES * EACH);
  const distinct = [...new Set(ids)];
  assert.equal(distinct.length, 1, `one job for every enqueue, got ${distinct.length}`);
  const tf = await TaskFlow.open(url);
  try {
    assert.equal((await tf.counts()).totals.created, 1);
    const events = await tf.events(distinct[0]);
    assert.equal(events.filter((e) => e.type === "deduplicated").length, PROCESSES * EACH - 1);
    const record = await tf.get(distinct[0]);
    assert.equal(record?.deduplicated, PROCESSES * EACH - 1);
    assert.deepEqual(fold(distinct[0], events), record);
    assert.deepEqual((await doctor(tf.storage)).findings, []);
  } finally {
    await tf.close();
  }
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "unique: 1,000 concurrent duplicate enqueues from 4 processes on a KV file make 1 job",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "taskflow-unique-" });
    try {
      await check(`kv:${dir}/unique.sqlite`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

await whenRedis("unique processes (redis)", () => {
  Deno.test({
    ...opts,
    name: "unique: 1,000 concurrent duplicate enqueues from 4 processes on Redis make 1 job",
    fn: async () => {
      const prefix = `tftest-unique-${crypto.randomUUID().slice(0, 12)}`;
      try {
        await check(`${REDIS_URL}?prefix=${prefix}`);
      } finally {
        await deletePrefix(prefix);
      }
    },
  });
});
