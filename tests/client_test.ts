import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import {
  ArgsNotSerializableError,
  InvalidNameError,
  InvalidOptionError,
  InvalidTransitionError,
  JobNotFoundError,
  TaskFlowError,
  UnknownStorageError,
} from "../storage/errors.ts";
import { defineJob } from "../lib/job.ts";
import { fold, project } from "../lib/projection.ts";
import { allowedActions, canTransition, STATES, TRANSITIONS } from "../lib/states.ts";
import { openStorage } from "../storage/open.ts";
import { TestClock } from "./helpers.ts";

async function withClient(fn: (tf: TaskFlow, clock: TestClock) => Promise<void>): Promise<void> {
  const clock = new TestClock();
  const tf = await TaskFlow.open("memory:", { now: clock.now });
  try {
    await fn(tf, clock);
  } finally {
    await tf.close();
  }
}

async function assertNothingWritten(tf: TaskFlow): Promise<void> {
  const counts = await tf.counts();
  assert.equal(counts.totals.created, 0, "storage must be unchanged");
}

/** Asserts `promise` rejects with `type`, the stable `code`, and a message matching `text`. */
async function rejects(
  promise: Promise<unknown>,
  type: new (...args: any[]) => TaskFlowError,
  code: string,
  text: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    assert.equal(error.code, code);
    assert.match(error.message, text);
    return true;
  });
}

const date = new Date("2026-01-01T00:00:00Z");
class Point {
  x = 1;
}
const cycle: Record<string, unknown> = { a: 1 };
cycle.self = cycle;
let deep: unknown = 1;
for (let i = 0; i < 70; i++) deep = { d: deep };

const badArgs: Array<[string, unknown, RegExp]> = [
  ["function", { user: { cb: () => 1 } }, /args\.user\.cb is not plain JSON: a function/],
  ["symbol", { s: Symbol("x") }, /args\.s is not plain JSON: a symbol/],
  ["BigInt", { n: 10n }, /args\.n is not plain JSON: BigInt/],
  ["cycle", { wrap: cycle }, /args\.wrap\.self is not plain JSON: a cycle/],
  [
    "Date",
    { user: { at: date } },
    /args\.user\.at is not plain JSON: a Date instance .*toISOString/,
  ],
  ["class instance", { p: new Point() }, /args\.p is not plain JSON: a Point instance/],
  ["Map", { m: new Map() }, /args\.m is not plain JSON: a Map instance/],
  ["undefined in array", { list: [1, undefined] }, /args\.list\[1\] is not plain JSON: undefined/],
  ["NaN", { n: NaN }, /args\.n is not plain JSON: NaN is not a finite number/],
  ["Infinity", [Infinity], /args\[0\] is not plain JSON: Infinity/],
  ["lone surrogate", { s: "a\ud800b" }, /args\.s is not plain JSON: .*lone UTF-16 surrogate/],
  ["deep nesting", deep, /nested deeper than 64 levels/],
  ["odd key", { "a b": { c: 1n } }, /args\["a b"\]\.c is not plain JSON/],
];

for (const [label, args, message] of badArgs) {
  Deno.test(`bad args: ${label} is refused with its path and nothing is written`, async () => {
    await withClient(async (tf) => {
      await rejects(
        tf.enqueue("x", args),
        ArgsNotSerializableError,
        "ARGS_NOT_SERIALIZABLE",
        message,
      );
      await assertNothingWritten(tf);
    });
  });
}

Deno.test("undefined object properties are dropped, as JSON does", async () => {
  await withClient(async (tf) => {
    const id = await tf.enqueue("x", { a: 1, b: undefined });
    assert.deepEqual((await tf.get(id))!.args, { a: 1 });
  });
});

Deno.test("bad names, ids and options get typed errors and write nothing", async () => {
  await withClient(async (tf) => {
    await rejects(
      tf.enqueue("", {}),
      InvalidNameError,
      "INVALID_NAME",
      /invalid job name "": 1–128/,
    );
    await rejects(
      tf.enqueue("x".repeat(129), {}),
      InvalidNameError,
      "INVALID_NAME",
      /invalid job name/,
    );
    await rejects(tf.enqueue("has space", {}), InvalidNameError, "INVALID_NAME", /"has space"/);
    await rejects(
      tf.enqueue(42 as unknown as string, {}),
      InvalidNameError,
      "INVALID_NAME",
      /invalid job name 42/,
    );
    await rejects(
      tf.enqueue("x", {}, { queue: "" }),
      InvalidNameError,
      "INVALID_NAME",
      /invalid queue name ""/,
    );
    await rejects(
      tf.enqueue("x", {}, { queue: "q".repeat(65) }),
      InvalidNameError,
      "INVALID_NAME",
      /queue name/,
    );
    await rejects(
      tf.enqueue("x", {}, { queue: "a/b" }),
      InvalidNameError,
      "INVALID_NAME",
      /"a\/b"/,
    );
    await rejects(
      tf.enqueue("x", {}, { id: "../etc" }),
      InvalidNameError,
      "INVALID_NAME",
      /invalid job id/,
    );
    await rejects(
      tf.enqueue("x", {}, { priority: 1.5 }),
      InvalidOptionError,
      "INVALID_OPTION",
      /options\.priority 1\.5/,
    );
    await rejects(
      tf.enqueue("x", {}, { attempts: 0 }),
      InvalidOptionError,
      "INVALID_OPTION",
      /options\.attempts 0/,
    );
    await rejects(
      tf.enqueue("x", {}, { timeoutMs: -1 }),
      InvalidOptionError,
      "INVALID_OPTION",
      /timeoutMs -1/,
    );
    await rejects(
      tf.enqueue("x", {}, { backoff: "linear" as "fixed" }),
      InvalidOptionError,
      "INVALID_OPTION",
      /options\.backoff "linear"/,
    );
    await rejects(
      tf.schedule("x", {}, { delayMs: -5 }),
      InvalidOptionError,
      "INVALID_OPTION",
      /delayMs -5: must be a finite/,
    );
    await rejects(
      tf.schedule("x", {}, { delayMs: NaN }),
      InvalidOptionError,
      "INVALID_OPTION",
      /delayMs NaN/,
    );
    await rejects(
      tf.schedule("x", {}, { at: new Date("nope") }),
      InvalidOptionError,
      "INVALID_OPTION",
      /at Invalid Date: must be a valid Date/,
    );
    await rejects(
      tf.schedule("x", {}, {} as { delayMs: number }),
      InvalidOptionError,
      "INVALID_OPTION",
      /exactly one of delayMs or at/,
    );
    await rejects(
      tf.enqueueMany([{ job: "ok", args: 1 }, { job: "ok", args: { f: () => 1 } }]),
      ArgsNotSerializableError,
      "ARGS_NOT_SERIALIZABLE",
      /args\.f/,
    );
    await rejects(
      tf.enqueueMany([{ job: "ok", args: 1 }, { job: "ok", args: 2, options: { priority: 5000 } }]),
      InvalidOptionError,
      "INVALID_OPTION",
      /items\[1\]\.priority 5000/,
    );
    await rejects(
      tf.continueWith("x", "c", {}, { on: "maybe" as "finished" }),
      InvalidOptionError,
      "INVALID_OPTION",
      /on "maybe"/,
    );
    await assertNothingWritten(tf);
    await rejects(
      tf.requeue("unknown-id"),
      JobNotFoundError,
      "JOB_NOT_FOUND",
      /job "unknown-id" does not exist/,
    );
    await rejects(tf.delete("unknown-id"), JobNotFoundError, "JOB_NOT_FOUND", /unknown-id/);
    await rejects(
      tf.continueWith("unknown-id", "c", {}),
      JobNotFoundError,
      "JOB_NOT_FOUND",
      /unknown-id/,
    );
    await rejects(
      tf.list({ state: "Running" as "Enqueued" }),
      InvalidOptionError,
      "INVALID_OPTION",
      /invalid list state "Running": is not a job state/,
    );
    await rejects(
      tf.list({ state: "Enqueued", limit: 0 }),
      InvalidOptionError,
      "INVALID_OPTION",
      /limit 0/,
    );
    await rejects(
      tf.list({ state: "Enqueued", cursor: "garbage!" }),
      InvalidOptionError,
      "INVALID_OPTION",
      /cursor/,
    );
    await assertNothingWritten(tf);
  });
});

Deno.test("a forbidden transition names both states and writes nothing", async () => {
  await withClient(async (tf) => {
    const id = await tf.enqueue("x", {});
    const before = await tf.events(id);
    await rejects(
      tf.requeue(id),
      InvalidTransitionError,
      "INVALID_TRANSITION",
      /cannot move from Enqueued to Enqueued/,
    );
    assert.deepEqual(await tf.events(id), before);
  });
});

Deno.test("unknown storage URLs are refused with the known schemes listed", async () => {
  for (const url of ["mysql://localhost/db", "nonsense", "", "file:./x"]) {
    await rejects(
      openStorage(url),
      UnknownStorageError,
      "UNKNOWN_STORAGE_SCHEME",
      /cannot open storage .*use memory:/,
    );
  }
});

Deno.test("defineJob validates its name, handler and defaults", () => {
  assert.throws(() => defineJob("", () => {}), InvalidNameError);
  assert.throws(
    () => defineJob("ok", 5 as unknown as () => void),
    /handler "number": must be a function/,
  );
  assert.throws(() => defineJob("ok", () => {}, { attempts: -1 }), /defaults\.attempts -1/);
  const job = defineJob("ok", (a: { n: number }) => a.n * 2, { queue: "q", attempts: 3 });
  assert.equal(job.name, "ok");
  assert.ok(Object.isFrozen(job));
});

Deno.test("enqueueing by definition uses its defaults; by name needs no handler", async () => {
  await withClient(async (tf) => {
    const job = defineJob("mail", () => {}, {
      queue: "mail",
      attempts: 3,
      timeoutMs: 500,
      priority: 2,
      backoff: () => 5,
    });
    const a = (await tf.get(await tf.enqueue(job, {})))!;
    assert.equal(a.queue, "mail");
    assert.equal(a.priority, 2);
    assert.deepEqual(a.options, { attempts: 3, timeoutMs: 500 });
    const b = (await tf.get(await tf.enqueue(job, {}, { queue: "other", attempts: 7 })))!;
    assert.equal(b.queue, "other");
    assert.equal(b.options.attempts, 7);
    const c = (await tf.get(await tf.enqueue("mail", {})))!;
    assert.equal(c.queue, "default");
    assert.deepEqual(c.options, {});
  });
});

Deno.test("the transition table is the only rule, and project() enforces it", () => {
  assert.deepEqual(TRANSITIONS.new, ["Enqueued", "Scheduled", "Awaiting"]);
  for (const from of STATES) {
    for (const to of STATES) {
      assert.equal(canTransition(from, to), TRANSITIONS[from].includes(to));
    }
  }
  assert.deepEqual(allowedActions("Failed"), ["requeue", "delete"]);
  assert.deepEqual(allowedActions("Enqueued"), ["delete"]);
  assert.deepEqual(allowedActions("Deleted"), ["requeue"]);
  const events = [
    { type: "created", seq: 1, at: 1, name: "x", queue: "q", args: null, priority: 0, options: {} },
    { type: "state", seq: 2, at: 2, state: "Enqueued" },
  ] as const;
  const record = fold("j", [...events]);
  assert.equal(record.state, "Enqueued");
  assert.throws(
    () => project(record, { type: "state", seq: 3, at: 3, state: "Succeeded" }),
    InvalidTransitionError,
  );
  assert.throws(
    () => project(record, { type: "log", seq: 5, at: 3, message: "gap" }),
    /event seq 5 follows version 2/,
  );
  assert.throws(() => fold("j", [events[0]]), /created without a state event/);
  assert.throws(() => fold("j", []), /no events/);
});

Deno.test("default storage is a KV file under ./data, or kv: on Deno Deploy", async () => {
  const { defaultStorageUrl } = await import("../storage/open.ts");
  const previous = Deno.env.get("DENO_DEPLOYMENT_ID");
  try {
    Deno.env.delete("DENO_DEPLOYMENT_ID");
    assert.equal(defaultStorageUrl(), "kv:./data/taskflow.sqlite");
    Deno.env.set("DENO_DEPLOYMENT_ID", "abc");
    assert.equal(defaultStorageUrl(), "kv:");
  } finally {
    if (previous === undefined) Deno.env.delete("DENO_DEPLOYMENT_ID");
    else Deno.env.set("DENO_DEPLOYMENT_ID", previous);
  }
});

Deno.test("TaskFlow.open with no URL creates ./data/taskflow.sqlite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-default-" });
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir);
    const tf = await TaskFlow.open();
    const id = await tf.enqueue("x", { ok: true });
    await tf.close();
    assert.ok((await Deno.stat(`${dir}/data/taskflow.sqlite`)).isFile);
    const again = await TaskFlow.open(`kv:${dir}/data/taskflow.sqlite`);
    assert.equal((await again.get(id))!.state, "Enqueued");
    await again.close();
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});
