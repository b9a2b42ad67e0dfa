/**
 * @module
 * Middleware: create middleware of a client (order, options added, validation that writes
 * nothing, the jobs of each call and their ids) and attempt middleware of a worker (order,
 * timing, context, an error turned into a discard, arguments decrypted, isolated jobs), with
 * end-to-end encryption of arguments through the pair. Storage is not involved beyond what the
 * client and worker write, so memory stands for every backend.
 */

import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker, type WorkerOptions } from "../lib/worker/worker.ts";
import type { AttemptMiddleware, CreateMiddleware } from "../lib/middleware/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { DiscardError, InvalidOptionError, TaskFlowError } from "../storage/errors.ts";
import * as isolated from "./fixtures/isolate_jobs.ts";
import { eventually } from "./helpers.ts";

async function settled(tf: TaskFlow, id: string, state: string, timeoutMs = 30_000) {
  return await eventually(async () => {
    const record = (await tf.get(id))!;
    assert.equal(record.state, state, `${record.name}: ${record.reason ?? ""}`);
    return record;
  }, timeoutMs);
}

/** A client with `middleware` and a started worker with `options`, both on one memory storage. */
async function withBoth(
  middleware: CreateMiddleware[],
  options: Partial<WorkerOptions>,
  fn: (tf: TaskFlow) => Promise<void>,
): Promise<void> {
  const storage = new MemoryStorage();
  const tf = await TaskFlow.open(storage, { middleware });
  const worker = createWorker({
    storage,
    jobs: [],
    pollIntervalMs: 20,
    heartbeatMs: 100,
    shutdownTimeoutMs: 200,
    recurring: false,
    ...options,
  });
  await worker.start();
  try {
    await fn(tf);
  } finally {
    await worker.stop();
    await tf.close();
  }
}

Deno.test("create middleware runs first-outermost, may add options, and sees the ids", async () => {
  const order: string[] = [];
  const seen: string[][] = [];
  const outer: CreateMiddleware = async (ctx, next) => {
    order.push(`outer ${ctx.call} before`);
    const ids = await next();
    seen.push(ids);
    order.push("outer after");
    return ids;
  };
  const inner: CreateMiddleware = async (ctx, next) => {
    order.push("inner before");
    for (const job of ctx.jobs) job.options = { ...job.options, priority: 7 };
    return await next();
  };
  const tf = await TaskFlow.open("memory:", { middleware: [outer, inner] });
  try {
    const given = { queue: "mail" };
    const id = await tf.enqueue("mail.send", { to: "a" }, given);
    assert.deepEqual(order, ["outer enqueue before", "inner before", "outer after"]);
    assert.deepEqual(seen, [[id]]);
    const record = (await tf.get(id))!;
    assert.equal(record.priority, 7);
    assert.equal(record.queue, "mail");
    assert.deepEqual(given, { queue: "mail" }, "the caller's options object is left alone");
  } finally {
    await tf.close();
  }
});

Deno.test("create middleware sees every job of every create call, in order", async () => {
  const calls: { call: string; names: string[]; ids: string[] }[] = [];
  const record: CreateMiddleware = async (ctx, next) => {
    const ids = await next();
    calls.push({ call: ctx.call, names: ctx.jobs.map((j) => j.name), ids });
    return ids;
  };
  const tf = await TaskFlow.open("memory:", { middleware: [record] });
  try {
    const a = await tf.schedule("a", 1, { delayMs: 1_000 });
    const many = await tf.enqueueMany([{ job: "b", args: 1 }, { job: "c", args: 2 }]);
    const after = await tf.continueWith(a, "d", 3);
    const batch = await tf.batch([{ job: "e", args: 1 }], { then: { job: "f", args: 2 } });
    const flow = await tf.flow({
      job: "root",
      args: 0,
      children: [{ job: "left", args: 1, children: [{ job: "leaf", args: 3 }] }, {
        job: "right",
        args: 2,
      }],
    });
    assert.deepEqual(calls, [
      { call: "schedule", names: ["a"], ids: [a] },
      { call: "enqueueMany", names: ["b", "c"], ids: many },
      { call: "continueWith", names: ["d"], ids: [after] },
      { call: "batch", names: ["e", "f"], ids: [...batch.jobIds, batch.thenId!] },
      {
        call: "flow",
        names: ["root", "left", "leaf", "right"],
        ids: [flow.id, flow.children[0].id, flow.children[0].children[0].id, flow.children[1].id],
      },
    ]);
  } finally {
    await tf.close();
  }
});

Deno.test("a create middleware that throws before next() writes nothing; after, the jobs exist", async () => {
  class QuotaError extends TaskFlowError {
    constructor() {
      super("INVALID_OPTION", "tenant over quota");
    }
  }
  const validate: CreateMiddleware = async (ctx, next) => {
    if (ctx.jobs.some((job) => (job.args as { tenant?: string })?.tenant === "over")) {
      throw new QuotaError();
    }
    return await next();
  };
  let afterIds: string[] = [];
  const audit: CreateMiddleware = async (_, next) => {
    afterIds = await next();
    throw new Error("audit log unreachable");
  };
  const tf = await TaskFlow.open("memory:", { middleware: [validate] });
  const tf2 = new TaskFlow(tf.storage, { middleware: [audit] });
  try {
    await assert.rejects(tf.enqueue("report", { tenant: "over" }), QuotaError);
    await assert.rejects(
      tf.enqueueMany([{ job: "report", args: { tenant: "ok" } }, {
        job: "report",
        args: { tenant: "over" },
      }]),
      QuotaError,
    );
    assert.equal((await tf.counts()).totals.created, 0, "nothing written");
    await assert.rejects(tf2.enqueue("report", {}), /audit log unreachable/);
    assert.equal((await tf.get(afterIds[0]))?.state, "Enqueued", "written before the throw");
  } finally {
    await tf.close();
  }
});

Deno.test("bad middleware is refused with INVALID_OPTION naming it", async () => {
  for (const middleware of [[42], "nope", [() => {}, null]]) {
    await assert.rejects(
      TaskFlow.open("memory:", { middleware: middleware as never }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.equal(error.code, "INVALID_OPTION");
        assert.match(error.message, /middleware/);
        return true;
      },
    );
    assert.throws(
      () =>
        createWorker({ storage: new MemoryStorage(), jobs: [], middleware: middleware as never }),
      (error: unknown) => error instanceof InvalidOptionError && /middleware/.test(error.message),
    );
  }
  const twice: CreateMiddleware = async (_, next) => {
    await next();
    return await next();
  };
  const silent: CreateMiddleware = () => Promise.resolve([]);
  const tf = await TaskFlow.open("memory:", { middleware: [twice] });
  const tf2 = new TaskFlow(tf.storage, { middleware: [silent] });
  try {
    await assert.rejects(tf.enqueue("x", 1), /called next\(\) more than once/);
    assert.equal((await tf.counts()).totals.created, 1, "the first next() wrote once");
    await assert.rejects(tf2.enqueue("x", 2), /without calling next\(\)/);
  } finally {
    await tf.close();
  }
});

Deno.test("attempt middleware wraps each attempt: order, timing, context, discard", async () => {
  const order: string[] = [];
  const store = new AsyncLocalStorage<string>();
  const timings: number[] = [];
  const timing: AttemptMiddleware = async (ctx, next) => {
    const start = performance.now();
    order.push(`outer ${ctx.job.name} #${ctx.context.attempt}`);
    try {
      return await next();
    } finally {
      timings.push(performance.now() - start);
      order.push("outer done");
    }
  };
  const context: AttemptMiddleware = (ctx, next) => {
    order.push("inner");
    return store.run(`request of ${ctx.job.id}`, next);
  };
  // Turns a client error (a 4xx) into a discard: no retries for what will never succeed.
  const discard4xx: AttemptMiddleware = async (_, next) => {
    try {
      return await next();
    } catch (error) {
      if ((error as { status?: number }).status === 404) throw new DiscardError("gone (404)");
      throw error;
    }
  };
  const fetchPage = defineJob("page.fetch", async (args: { status: number }) => {
    await new Promise((r) => setTimeout(r, 20));
    if (args.status !== 200) throw Object.assign(new Error("HTTP error"), { status: args.status });
    return store.getStore();
  }, { attempts: 5 });
  await withBoth(
    [],
    { jobs: [fetchPage], middleware: [timing, context, discard4xx] },
    async (tf) => {
      const ok = await tf.enqueue(fetchPage, { status: 200 });
      const done = await settled(tf, ok, "Succeeded");
      assert.equal(done.result, `request of ${ok}`, "the handler ran inside the context set");
      assert.deepEqual(order, [`outer page.fetch #1`, "inner", "outer done"]);
      assert.ok(timings[0] >= 15, `timed the handler: ${timings[0]} ms`);
      const gone = await tf.enqueue(fetchPage, { status: 404 });
      const failed = await settled(tf, gone, "Failed");
      assert.equal(failed.attempt, 1, "discarded: no retry");
      assert.equal(failed.error?.code, "JOB_DISCARDED");
      assert.match(failed.reason!, /discarded by the handler: gone \(404\)/);
    },
  );
});

/** AES-GCM with a fixed test key: what a producer and its workers would share. */
const key = await crypto.subtle.importKey("raw", new Uint8Array(32).fill(7), "AES-GCM", false, [
  "encrypt",
  "decrypt",
]);
const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const bytesOf = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

const encrypt: CreateMiddleware = async (ctx, next) => {
  for (const job of ctx.jobs) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const plain = new TextEncoder().encode(JSON.stringify(job.args));
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
    job.args = { sealed: base64(sealed), iv: base64(iv) };
  }
  return await next();
};
const decrypt: AttemptMiddleware = async (ctx, next) => {
  const { sealed, iv } = ctx.args as { sealed: string; iv: string };
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytesOf(iv) },
    key,
    bytesOf(sealed),
  );
  ctx.args = JSON.parse(new TextDecoder().decode(plain));
  return await next();
};

Deno.test("arguments encrypted by create middleware are stored sealed and decrypted for the handler, isolated too", async () => {
  const secret = defineJob("secret.use", (args: { card: string }) => `used ${args.card}`);
  await withBoth(
    [encrypt],
    { jobs: { secret, echo: isolated.echo }, middleware: [decrypt] },
    async (tf) => {
      const id = await tf.enqueue(secret, { card: "4111-1111" });
      const stored = JSON.stringify(await tf.events(id));
      assert.doesNotMatch(stored, /4111/, "the storage never sees the plain arguments");
      assert.equal((await settled(tf, id, "Succeeded")).result, "used 4111-1111");
      // An isolated job: the middleware runs on the worker's side; the Web Worker gets the result.
      const iso = await tf.enqueue(isolated.echo, { n: 42 });
      const result = (await settled(tf, iso, "Succeeded")).result as {
        args: unknown;
        inWorker: string;
      };
      assert.deepEqual(result.args, { n: 42 });
      assert.equal(result.inWorker, "function", "ran in a Web Worker");
    },
  );
});
