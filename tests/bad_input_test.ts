/**
 * @module
 * The catalogue of bad input: every entry asserts the typed error (or HTTP status), the message
 * text, and that storage is unchanged afterwards.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import { TaskFlowError } from "../storage/errors.ts";
import { defineJob } from "../lib/job.ts";
import { createWorker } from "../lib/worker/worker.ts";
import { openStorage } from "../storage/open.ts";
import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";

const ORIGIN = "http://127.0.0.1:8000";
const TOKEN = "catalogue-token";
const XSS = `"><script>alert(1)</script>`;
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

type Fixture = {
  tf: TaskFlow;
  http: (req: Request) => Promise<Response>;
  csrf: string;
  jobId: string;
};
type Entry =
  | {
    name: string;
    kind: "client";
    run: (f: Fixture) => Promise<unknown>;
    code: string;
    message: RegExp;
  }
  | {
    name: string;
    kind: "http";
    request: (f: Fixture) => Request;
    status: number;
    message: RegExp;
  }
  | {
    name: string;
    kind: "cli";
    args: string[];
    env?: Record<string, string>;
    exit: number;
    message: RegExp;
  };

const deep = (() => {
  let value: unknown = 0;
  for (let i = 0; i < 100; i++) value = [value];
  return value;
})();

const form = (f: Fixture, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  new Request(`${ORIGIN}/job/${f.jobId}`, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { origin: ORIGIN, cookie: `tf_csrf=${f.csrf}`, ...headers },
  });
const api = (body: string, headers: Record<string, string> = {}) =>
  new Request(`${ORIGIN}/api/jobs`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...headers },
  });

/** Runs a synchronous call as a promise, so that what it throws becomes a rejection. */
const sync = (call: () => unknown): Promise<unknown> => Promise.resolve().then(call);

const CATALOGUE: Entry[] = [
  // The client.
  {
    name: "oversized args",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { blob: "x".repeat(600_000) }),
    code: "PAYLOAD_TOO_LARGE",
    message: /args is 600011 bytes as JSON, over the limit of 524288 bytes/,
  },
  {
    name: "deep nesting",
    kind: "client",
    run: (f) => f.tf.enqueue("x", deep),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /nested deeper than 64 levels/,
  },
  {
    name: "invalid UTF-16",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { s: "\udc00" }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\.s is not plain JSON: the string has a lone UTF-16 surrogate/,
  },
  {
    name: "a function in args",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { cb: () => 1 }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\.cb is not plain JSON: a function/,
  },
  {
    name: "a BigInt in args",
    kind: "client",
    run: (f) => f.tf.enqueue("x", [1n]),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\[0\] is not plain JSON: BigInt/,
  },
  {
    name: "a Date in args",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { at: new Date(0) }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\.at .*Date instance/,
  },
  {
    name: "NaN in args",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { n: NaN }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /NaN is not a finite number/,
  },
  {
    name: "empty job name",
    kind: "client",
    run: (f) => f.tf.enqueue("", {}),
    code: "INVALID_NAME",
    message: /invalid job name ""/,
  },
  {
    name: "XSS as a job name",
    kind: "client",
    run: (f) => f.tf.enqueue(XSS, {}),
    code: "INVALID_NAME",
    message: /invalid job name/,
  },
  {
    name: "queue name too long",
    kind: "client",
    run: (f) => f.tf.enqueue("x", {}, { queue: "q".repeat(65) }),
    code: "INVALID_NAME",
    message: /invalid queue name/,
  },
  {
    name: "negative delay",
    kind: "client",
    run: (f) => f.tf.schedule("x", {}, { delayMs: -1 }),
    code: "INVALID_OPTION",
    message: /invalid delayMs -1: must be a finite number of ms, 0 or more/,
  },
  {
    name: "invalid date",
    kind: "client",
    run: (f) => f.tf.schedule("x", {}, { at: new Date(NaN) }),
    code: "INVALID_OPTION",
    message: /invalid at Invalid Date/,
  },
  {
    name: "unknown job id for requeue",
    kind: "client",
    run: (f) => f.tf.requeue("missing-job"),
    code: "JOB_NOT_FOUND",
    message: /job "missing-job" does not exist/,
  },
  {
    name: "unknown parent for continueWith",
    kind: "client",
    run: (f) => f.tf.continueWith("missing-job", "x", {}),
    code: "JOB_NOT_FOUND",
    message: /missing-job/,
  },
  {
    name: "forbidden transition",
    kind: "client",
    run: (f) => f.tf.requeue(f.jobId),
    code: "INVALID_TRANSITION",
    message: /cannot move from Enqueued to Enqueued/,
  },
  {
    name: "taken custom id",
    kind: "client",
    run: (f) => f.tf.enqueue("x", {}, { id: f.jobId }),
    code: "JOB_EXISTS",
    message: /already exists/,
  },
  {
    name: "invalid cron",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "*/0 * * *", "x", {}),
    code: "INVALID_CRON",
    message: /invalid cron "\*\/0 \* \* \*"/,
  },
  {
    name: "invalid timezone",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "0 9 * * *", "x", {}, { timezone: "Europe/Atlantis" }),
    code: "INVALID_TIMEZONE",
    message: /invalid timezone "Europe\/Atlantis"/,
  },
  {
    name: "invalid storage URL",
    kind: "client",
    run: () => openStorage("mongodb://localhost"),
    code: "UNKNOWN_STORAGE_SCHEME",
    message: /unknown scheme "mongodb:"/,
  },
  {
    name: "bad backoff option",
    kind: "client",
    run: (f) => f.tf.enqueue("x", {}, { backoff: { type: "fixed", delayMs: -5 } }),
    code: "INVALID_OPTION",
    message: /options\.backoff/,
  },
  {
    name: "bad defineJob defaults",
    kind: "client",
    run: () => Promise.resolve().then(() => defineJob("ok", () => {}, { timeoutMs: 0 })),
    code: "INVALID_OPTION",
    message: /defaults\.timeoutMs 0/,
  },
  // Times and durations outside what a Date holds, or past the 10-year horizon (issue 18.5).
  ...([
    ["at: 1e300", (f: Fixture) => f.tf.schedule("x", {}, { at: 1e300 }), /invalid at 1e\+300/],
    [
      "at: -1e17",
      (f: Fixture) => f.tf.schedule("x", {}, { at: -1e17 }),
      /invalid at -100000000000000000/,
    ],
    [
      "at: an Invalid Date",
      (f: Fixture) => f.tf.schedule("x", {}, { at: new Date(NaN) }),
      /invalid at Invalid Date/,
    ],
    [
      "at: 11 years ahead",
      (f: Fixture) => f.tf.schedule("x", {}, { at: Date.now() + 11 * 365.25 * 86_400_000 }),
      /10 years from now/,
    ],
    [
      "at: a string",
      (f: Fixture) => f.tf.schedule("x", {}, { at: "2030-01-01" as unknown as number }),
      /invalid at "2030-01-01": must be a valid Date/,
    ],
    [
      "delayMs: 1e300",
      (f: Fixture) => f.tf.schedule("x", {}, { delayMs: 1e300 }),
      /invalid delayMs 1e\+300: .*at most 315576000000 \(10 years\)/,
    ],
    [
      "delayMs: NaN",
      (f: Fixture) => f.tf.schedule("x", {}, { delayMs: NaN }),
      /invalid delayMs NaN/,
    ],
    [
      "delayMs: Infinity",
      (f: Fixture) => f.tf.schedule("x", {}, { delayMs: Infinity }),
      /invalid delayMs Infinity/,
    ],
    [
      "delayMs: a BigInt",
      (f: Fixture) => f.tf.schedule("x", {}, { delayMs: 5n as unknown as number }),
      /invalid delayMs 5n/,
    ],
    [
      "timeoutMs: 1e300",
      (f: Fixture) => f.tf.enqueue("x", {}, { timeoutMs: 1e300 }),
      /invalid options.timeoutMs 1e\+300: .*10 years/,
    ],
    [
      "backoff delayMs: 1e300",
      (f: Fixture) => f.tf.enqueue("x", {}, { backoff: { type: "fixed", delayMs: 1e300 } }),
      /invalid options.backoff.delayMs 1e\+300/,
    ],
    [
      "continueWith timeoutMs: -1",
      (f: Fixture) => f.tf.continueWith(f.jobId, "x", {}, { timeoutMs: -1 }),
      /invalid options.timeoutMs -1/,
    ],
    [
      "batch item timeoutMs: Infinity",
      (f: Fixture) => f.tf.batch([{ job: "x", args: {}, options: { timeoutMs: Infinity } }]),
      /items\[0\]\.timeoutMs Infinity/,
    ],
    [
      "enqueueMany backoff delayMs: -5",
      (f: Fixture) =>
        f.tf.enqueueMany([{
          job: "x",
          args: {},
          options: { backoff: { type: "exponential", delayMs: -5 } },
        }]),
      /items\[0\]\.backoff\.delayMs -5/,
    ],
    [
      "recurring timeoutMs: 1e300",
      (f: Fixture) => f.tf.recurring.upsert("r", "* * * * *", "x", {}, { timeoutMs: 1e300 }),
      /invalid options.timeoutMs 1e\+300/,
    ],
    [
      "defineJob timeoutMs: NaN",
      () => sync(() => defineJob("x", () => 1, { timeoutMs: NaN })),
      /invalid defaults.timeoutMs NaN/,
    ],
    [
      "defineJob backoff delayMs: 1e300",
      () => sync(() => defineJob("x", () => 1, { backoff: { type: "fixed", delayMs: 1e300 } })),
      /defaults.backoff.delayMs 1e\+300/,
    ],
    [
      "worker heartbeatMs: 1e300",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], heartbeatMs: 1e300 })),
      /invalid heartbeatMs 1e\+300: must be a number of ms from 1 to 2147483647/,
    ],
    [
      "worker heartbeatMs: 0",
      (f: Fixture) => sync(() => createWorker({ storage: f.tf.storage, jobs: [], heartbeatMs: 0 })),
      /invalid heartbeatMs 0/,
    ],
    [
      "worker pollIntervalMs: -1",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], pollIntervalMs: -1 })),
      /invalid pollIntervalMs -1/,
    ],
    [
      "worker shutdownTimeoutMs: 2^31",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], shutdownTimeoutMs: 2 ** 31 })),
      /invalid shutdownTimeoutMs 2147483648/,
    ],
    [
      "timeline over 10,000 buckets",
      (f: Fixture) => f.tf.timeline("minute", { from: 0, to: 1e15 }),
      /invalid timeline range .*at most 10000 minutes apart/,
    ],
  ] as const).map(([name, run, message]) => ({
    name: `time: ${name}`,
    kind: "client" as const,
    run: run as (f: Fixture) => Promise<unknown>,
    code: "INVALID_OPTION",
    message,
  })),
  // Retention policies and per-job keep (issue 19): typed errors naming the value.
  ...([
    [
      "worker retention succeeded: -1 ms",
      (f: Fixture) =>
        sync(() =>
          createWorker({
            storage: f.tf.storage,
            jobs: [],
            retention: { succeeded: { maxAgeMs: -1 } },
          })
        ),
      /invalid retention.succeeded.maxAgeMs -1: must be a finite number of ms/,
    ],
    [
      "worker retention failed: {}",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], retention: { failed: {} } })),
      /invalid retention.failed \{\}: must be false \(keep forever\) or \{ maxAgeMs\?, maxCount\? \}/,
    ],
    [
      "worker retention deleted: true",
      (f: Fixture) =>
        sync(() =>
          createWorker({ storage: f.tf.storage, jobs: [], retention: { deleted: true as never } })
        ),
      /invalid retention.deleted true/,
    ],
    [
      "worker retention maxCount: 1.5",
      (f: Fixture) =>
        sync(() =>
          createWorker({
            storage: f.tf.storage,
            jobs: [],
            retention: { succeeded: { maxCount: 1.5 } },
          })
        ),
      /invalid retention.succeeded.maxCount 1.5: must be an integer from 0 to 1000000000/,
    ],
    [
      "worker retention: a typo",
      (f: Fixture) =>
        sync(() =>
          createWorker({
            storage: f.tf.storage,
            jobs: [],
            retention: { succeded: false } as never,
          })
        ),
      /unknown option "succeded" \(did you mean "succeeded"\?\)/,
    ],
    [
      "worker retention archive: not a function",
      (f: Fixture) =>
        sync(() =>
          createWorker({ storage: f.tf.storage, jobs: [], retention: { archive: "s3" as never } })
        ),
      /invalid retention.archive "s3": must be a function/,
    ],
    [
      "worker pruneIntervalMs: 0",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], pruneIntervalMs: 0 })),
      /invalid pruneIntervalMs 0: must be a number of ms from 1/,
    ],
    [
      "enqueue keep: maxCount",
      (f: Fixture) => f.tf.enqueue("x", {}, { keep: { maxCount: 3 } as never }),
      /invalid options.keep.maxCount 3: a job's keep has no count/,
    ],
    [
      "enqueue keep: true",
      (f: Fixture) => f.tf.enqueue("x", {}, { keep: true as never }),
      /invalid options.keep true: must be false, \{ maxAgeMs \} or \{ succeeded\?, failed\?, deleted\? \}/,
    ],
    [
      "schedule keep.failed maxAgeMs: NaN",
      (f: Fixture) => f.tf.schedule("x", {}, { delayMs: 1, keep: { failed: { maxAgeMs: NaN } } }),
      /invalid options.keep.failed.maxAgeMs NaN/,
    ],
    [
      "defineJob keep: a typo",
      () => sync(() => defineJob("x", () => 1, { keep: { sucess: false } as never })),
      /invalid defaults.keep.sucess false: unknown option "sucess"/,
    ],
    [
      "prune limit: 0",
      (f: Fixture) => f.tf.prune({ limit: 0 }),
      /invalid options.limit 0: must be an integer from 1 to 10000000/,
    ],
    [
      "prune: an option of another call",
      (f: Fixture) => f.tf.prune({ dryrun: true } as never),
      /unknown option "dryrun" \(did you mean "dryRun"\?\)/,
    ],
  ] as const).map(([name, run, message]) => ({
    name: `retention: ${name}`,
    kind: "client" as const,
    run: run as (f: Fixture) => Promise<unknown>,
    code: "INVALID_OPTION",
    message,
  })),
  // Options a call does not take (issue 18.15).
  ...([
    [
      "delayMs on enqueue",
      (f: Fixture) => f.tf.enqueue("x", {}, { delayMs: 5_000 } as never),
      /invalid options.delayMs 5000: enqueue has no delayMs option \(it would be ignored\); it belongs to schedule/,
    ],
    [
      "at on enqueue",
      (f: Fixture) => f.tf.enqueue("x", {}, { at: new Date() } as never),
      /enqueue has no at option/,
    ],
    [
      "on on enqueue",
      (f: Fixture) => f.tf.enqueue("x", {}, { on: "finished" } as never),
      /enqueue has no on option .*continueWith/,
    ],
    [
      "a typo: dealyMs on schedule",
      (f: Fixture) => f.tf.schedule("x", {}, { dealyMs: 5 } as never),
      /unknown option "dealyMs" \(did you mean "delayMs"\?\); schedule takes/,
    ],
    [
      "a typo: dealyMs on enqueue",
      (f: Fixture) => f.tf.enqueue("x", {}, { dealyMs: 5 } as never),
      /unknown option "dealyMs" \(did you mean "delayMs"\? it belongs to schedule/,
    ],
    [
      "a typo: priorty",
      (f: Fixture) => f.tf.enqueue("x", {}, { priorty: 5 } as never),
      /did you mean "priority"/,
    ],
    [
      "timezone on enqueue",
      (f: Fixture) => f.tf.enqueue("x", {}, { timezone: "UTC" } as never),
      /belongs to recurring.upsert/,
    ],
    [
      "id on a recurring definition",
      (f: Fixture) => f.tf.recurring.upsert("r", "* * * * *", "x", {}, { id: "a" } as never),
      /recurring.upsert has no id option/,
    ],
    [
      "id on a batch member",
      (f: Fixture) => f.tf.batch([{ job: "x", args: {}, options: { id: "mine" } }]),
      /items\[0\]\.id "mine": batch has no id option/,
    ],
    [
      "an unknown key on a batch item",
      (f: Fixture) => f.tf.batch([{ job: "x", args: {}, option: {} } as never]),
      /items\[0\]\.option .*did you mean "options"/,
    ],
    [
      "an unknown batch option",
      (f: Fixture) =>
        f.tf.batch(
          [{ job: "x", args: {} }],
          { then: { job: "y", args: {} }, onn: "finished" } as never,
        ),
      /unknown option "onn" \(did you mean "on"\?\)/,
    ],
    [
      "a typo in worker options",
      (f: Fixture) =>
        sync(() => createWorker({ storage: f.tf.storage, jobs: [], concurency: 5 } as never)),
      /unknown option "concurency" \(did you mean "concurrency"\?\)/,
    ],
    [
      "a typo in TaskFlow.open options",
      () => TaskFlow.open("memory:", { prefx: "a" } as never),
      /did you mean "prefix"/,
    ],
    [
      "a typo in defineJob defaults",
      () => sync(() => defineJob("x", () => 1, { atempts: 3 } as never)),
      /did you mean "attempts"/,
    ],
    [
      "a list query with a typo",
      (f: Fixture) => f.tf.list({ state: "Enqueued", limt: 5 } as never),
      /did you mean "limit"/,
    ],
    [
      "requeue with an unknown option",
      (f: Fixture) => f.tf.requeue(f.jobId, { reasn: "x" } as never),
      /did you mean "reason"/,
    ],
    [
      "options that are a class instance",
      (f: Fixture) => f.tf.enqueue("x", {}, new Map() as never),
      /must be a plain object/,
    ],
    [
      "options that are null",
      (f: Fixture) => f.tf.search("x", null as never),
      /the options of search must be an object/,
    ],
    ["a getter that throws", (f: Fixture) =>
      f.tf.enqueue("x", {}, {
        get queue(): string {
          throw new Error("boom");
        },
      }), /invalid options.queue "\(unreadable\)": reading it threw: boom/],
    ["a Proxy whose traps throw", (f: Fixture) =>
      f.tf.enqueue(
        "x",
        {},
        new Proxy({}, {
          ownKeys() {
            throw new Error("trap");
          },
        }),
      ), /reading it threw: trap/],
    ["a revoked Proxy as options", (f: Fixture) => {
      const p = Proxy.revocable({}, {});
      p.revoke();
      return f.tf.schedule("x", {}, p.proxy as never);
    }, /invalid options .*reading it threw/],
    [
      "a symbol key",
      (f: Fixture) => f.tf.enqueue("x", {}, { [Symbol("k")]: 1 } as never),
      /enqueue takes no symbol keys/,
    ],
    [
      "a non-function clock",
      () => TaskFlow.open("memory:", { now: 5 as never }),
      /invalid options.now 5: must be a function/,
    ],
    [
      "something that is no storage",
      () => TaskFlow.open({} as never),
      /invalid storage.append undefined: must be a function/,
    ],
  ] as const).map(([name, run, message]) => ({
    name: `option: ${name}`,
    kind: "client" as const,
    run: run as (f: Fixture) => Promise<unknown>,
    code: "INVALID_OPTION",
    message,
  })),
  // Values that used to escape as a plain TypeError (issue 18.15).
  {
    name: "a BigInt job name",
    kind: "client",
    run: (f) => f.tf.enqueue(1n as never, {}),
    code: "INVALID_NAME",
    message: /invalid job name 1n/,
  },
  {
    name: "a symbol queue",
    kind: "client",
    run: (f) => f.tf.enqueue("x", {}, { queue: Symbol("q") as never }),
    code: "INVALID_NAME",
    message: /invalid queue name Symbol\(q\)/,
  },
  {
    name: "a cyclic parent id",
    kind: "client",
    run: (f) => {
      const c: Record<string, unknown> = {};
      c.c = c;
      return f.tf.continueWith(c as never, "x", {});
    },
    code: "INVALID_NAME",
    message: /invalid job id an unreadable object/,
  },
  {
    name: "a BigInt custom id",
    kind: "client",
    run: (f) => f.tf.enqueue("x", {}, { id: 7n as never }),
    code: "INVALID_NAME",
    message: /invalid job id 7n/,
  },
  {
    name: "a null-prototype cron",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", Object.create(null), "x", {}),
    code: "INVALID_CRON",
    message: /invalid cron "\(an unprintable object\)": must be a string/,
  },
  {
    name: "a null-prototype timezone",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "* * * * *", "x", {}, { timezone: Object.create(null) }),
    code: "INVALID_TIMEZONE",
    message: /invalid timezone "\(an unprintable object\)"/,
  },
  {
    name: "a job definition whose name getter throws",
    kind: "client",
    run: (f) =>
      f.tf.enqueue({
        handler() {},
        defaults: {},
        get name(): string {
          throw new Error("nope");
        },
      } as never, {}),
    code: "INVALID_OPTION",
    message: /invalid job "\(unreadable\)": reading it threw: nope/,
  },
  {
    name: "args whose getter throws",
    kind: "client",
    run: (f) =>
      f.tf.enqueue("x", {
        get a() {
          throw new Error("getter");
        },
      }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args is not plain JSON: reading it threw: getter/,
  },
  {
    name: "a Proxy as args",
    kind: "client",
    run: (f) =>
      f.tf.enqueue(
        "x",
        new Proxy({}, {
          getPrototypeOf() {
            throw new Error("proto");
          },
        }),
      ),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /reading it threw: proto/,
  },
  {
    name: "a sparse array of 2^32-1 items",
    kind: "client",
    run: (f) => f.tf.enqueue("x", { a: new Array(2 ** 32 - 1) }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\.a is not plain JSON: has over 1000000 items/,
  },
  // Recurring definitions are checked as each occurrence will be (issue 18.6).
  {
    name: "recurring args over the backend's limit",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "* * * * *", "x", { blob: "x".repeat(600_000) }),
    code: "PAYLOAD_TOO_LARGE",
    message: /args is 600011 bytes as JSON, over the limit of 524288 bytes/,
  },
  {
    name: "recurring args that are not JSON",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "* * * * *", "x", { at: new Date(0) }),
    code: "ARGS_NOT_SERIALIZABLE",
    message: /args\.at .*Date instance/,
  },
  {
    name: "a recurring backoff function",
    kind: "client",
    run: (f) => f.tf.recurring.upsert("r", "* * * * *", "x", {}, { backoff: (() => 1) as never }),
    code: "INVALID_OPTION",
    message: /a function cannot be stored/,
  },
  // The HTTP API and the dashboard's forms.
  {
    name: "wrong bearer token",
    kind: "http",
    request: () =>
      new Request(`${ORIGIN}/api/stats`, { headers: { authorization: "Bearer wrong" } }),
    status: 401,
    message: /authentication required/,
  },
  {
    name: "no credentials",
    kind: "http",
    request: () => new Request(`${ORIGIN}/`),
    status: 401,
    message: /authentication required/,
  },
  {
    name: "malformed JSON body",
    kind: "http",
    request: () => api('{"name": '),
    status: 400,
    message: /malformed JSON/,
  },
  {
    name: "JSON body of the wrong shape",
    kind: "http",
    request: () => api("42"),
    status: 400,
    message: /must be an object/,
  },
  {
    name: "wrong content type",
    kind: "http",
    request: () => api("name=x", { "content-type": "application/x-www-form-urlencoded" }),
    status: 415,
    message: /application\/json/,
  },
  {
    name: "XSS in an API job name",
    kind: "http",
    request: () => api(JSON.stringify({ name: XSS, args: {} })),
    status: 400,
    message: /invalid job name/,
  },
  {
    name: "missing CSRF token",
    kind: "http",
    request: (f) => form(f, { action: "delete" }, { authorization: `Bearer ${TOKEN}` }),
    status: 403,
    message: /missing or invalid CSRF token/,
  },
  {
    name: "forged CSRF token",
    kind: "http",
    request: (f) =>
      form(f, { action: "delete", _csrf: "forged-forged-forged-forged" }, {
        authorization: `Bearer ${TOKEN}`,
      }),
    status: 403,
    message: /missing or invalid CSRF token/,
  },
  {
    name: "cross-origin POST",
    kind: "http",
    request: (f) =>
      form(f, { action: "delete", _csrf: f.csrf }, {
        origin: "https://evil.example",
        authorization: `Bearer ${TOKEN}`,
      }),
    status: 403,
    message: /cross-origin request refused/,
  },
  {
    name: "unknown form action",
    kind: "http",
    request: (f) => form(f, { action: XSS, _csrf: f.csrf }, { authorization: `Bearer ${TOKEN}` }),
    status: 400,
    message: /invalid action/,
  },
  {
    name: "path traversal on static files",
    kind: "http",
    request: () =>
      new Request(`${ORIGIN}/..%2f..%2fdeno.json`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
    status: 404,
    message: /not found|Nothing here/i,
  },
  {
    name: "huge page number",
    kind: "http",
    request: () =>
      new Request(`${ORIGIN}/jobs/failed?page=123456789012345678901234567890`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
    status: 400,
    message: /invalid page/,
  },
  {
    name: "forged cursor",
    kind: "http",
    request: () =>
      new Request(`${ORIGIN}/jobs/failed?cursor=${encodeURIComponent(XSS)}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
    status: 400,
    message: /invalid cursor/,
  },
  {
    name: "XSS in a state segment",
    kind: "http",
    request: () =>
      new Request(`${ORIGIN}/jobs/${encodeURIComponent(XSS)}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
    status: 404,
    message: /Nothing here/,
  },
  ...([
    ["at: 1e300", { at: 1e300 }, /invalid at 1e\+300/],
    ["delayMs: 1e300", { delayMs: 1e300 }, /invalid delayMs 1e\+300/],
    ["at: -1e17", { at: -1e17 }, /invalid at -100000000000000000/],
    ["at: an unparsable string", { at: "tomorrow" }, /invalid at Invalid Date/],
    [
      "at: a date string past year 275760",
      { at: "+300000-01-01T00:00:00Z" },
      /invalid at Invalid Date/,
    ],
    ["delayMs: a string", { delayMs: "10s" }, /invalid delayMs \\"10s\\"/],
    ["timeoutMs: 1e300", { timeoutMs: 1e300 }, /invalid options.timeoutMs 1e\+300/],
    ["a typo: dealyMs", { dealyMs: 10 }, /did you mean \\"delayMs\\"/],
  ] as const).map(([name, options, message]) => ({
    name: `POST /api/jobs with ${name}`,
    kind: "http" as const,
    request: () => api(JSON.stringify({ name: "x", args: {}, options })),
    status: 400,
    // The answer names the typed error's code as well as the value.
    message: new RegExp(`^(?=[^]*"code":"INVALID_OPTION")[^]*${message.source}`),
  })),
  // The command line, its environment, and job modules.
  {
    name: "unknown flag",
    kind: "cli",
    args: ["worker", "--concurency", "5"],
    exit: 2,
    message: /unknown flag --concurency \(did you mean --concurrency\?\)/,
  },
  {
    name: "bad retention flag",
    kind: "cli",
    args: ["worker", "--retention", "succeeded=1 hour"],
    exit: 2,
    message: /invalid --retention \(TASKFLOW_RETENTION\) "1 hour": must be a duration/,
  },
  {
    name: "bad retention env",
    kind: "cli",
    args: ["worker"],
    env: { TASKFLOW_RETENTION: "done=1h" },
    exit: 2,
    message:
      /invalid --retention \(TASKFLOW_RETENTION\) "done=1h": "done=1h": give state=rule pairs/,
  },
  {
    name: "bad concurrency flag",
    kind: "cli",
    args: ["worker", "--concurrency", "many"],
    exit: 2,
    message: /invalid --concurrency \(TASKFLOW_CONCURRENCY\) "many"/,
  },
  {
    name: "bad concurrency env",
    kind: "cli",
    args: ["worker"],
    env: { TASKFLOW_CONCURRENCY: "-3" },
    exit: 2,
    message: /invalid --concurrency \(TASKFLOW_CONCURRENCY\) "-3"/,
  },
  {
    name: "bad storage env",
    kind: "cli",
    args: ["worker"],
    env: { TASKFLOW_STORAGE: "ftp://x" },
    exit: 2,
    message: /UNKNOWN_STORAGE_SCHEME.*unknown scheme "ftp:"/,
  },
  {
    name: "job module that does not exist",
    kind: "cli",
    args: ["worker", "--jobs", "./no/such/jobs.ts"],
    exit: 1,
    message: /JOB_MODULE_INVALID.*failed to import/,
  },
  {
    name: "job module without jobs",
    kind: "cli",
    args: ["worker", "--jobs", "./lib/states.ts"],
    exit: 1,
    message: /exports no job definitions/,
  },
  {
    name: "empty queue list",
    kind: "cli",
    args: ["worker", "--queues", ","],
    exit: 2,
    message: /must name at least one queue/,
  },
  {
    name: "port out of range",
    kind: "cli",
    args: ["dashboard", "--port", "70000"],
    exit: 2,
    message: /invalid --port \(TASKFLOW_DASHBOARD_PORT\) 70000/,
  },
  {
    name: "public address without auth",
    kind: "cli",
    args: ["dashboard", "--host", "0.0.0.0", "--port", "0"],
    exit: 2,
    message: /is not a loopback address/,
  },
  {
    name: "unknown command",
    kind: "cli",
    args: ["explode"],
    exit: 2,
    message: /unknown command "explode"/,
  },
];

Deno.test("bad input: the catalogue has at least 30 entries across client, HTTP and CLI", () => {
  assert.ok(CATALOGUE.length >= 30);
  for (const kind of ["client", "http", "cli"]) assert.ok(CATALOGUE.some((e) => e.kind === kind));
});

/**
 * Registers the catalogue on a backend: `open` gives a client on a fresh, empty storage and the
 * cleanup that removes it (the CLI entries run once, on a KV file of their own).
 */
function runCatalogue(
  label: string,
  open: () => Promise<{ tf: TaskFlow; cleanup: () => Promise<void> }>,
): void {
  for (const entry of CATALOGUE) {
    if (entry.kind === "cli" && label !== "memory") continue;
    Deno.test({
      name: label === "memory"
        ? `bad input (${entry.kind}): ${entry.name}`
        : `bad input on ${label} (${entry.kind}): ${entry.name}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        if (entry.kind === "cli") return await runCli(entry);
        const dir = await Deno.makeTempDir({ prefix: "taskflow-bad-" });
        const { tf, cleanup } = await open();
        const dashboard = createDashboard({ tf, security: { token: TOKEN } });
        try {
          const first = await dashboard.handler(
            new Request(`${ORIGIN}/queues`, { headers: { authorization: `Bearer ${TOKEN}` } }),
          );
          await first.body?.cancel();
          const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")![1];
          const jobId = await tf.enqueue("existing", { n: 1 });
          const before = await snapshot(tf);
          const fixture: Fixture = { tf, http: dashboard.handler, csrf, jobId };
          if (entry.kind === "client") {
            await assert.rejects(entry.run(fixture), (error: unknown) => {
              assert.ok(error instanceof TaskFlowError, `expected a TaskFlowError, got ${error}`);
              assert.equal(error.code, entry.code);
              assert.match(error.message, entry.message);
              return true;
            });
          } else {
            const response = await dashboard.handler(entry.request(fixture));
            const body = await response.text();
            assert.equal(response.status, entry.status, body.slice(0, 300));
            assert.match(body, entry.message);
            assert.doesNotMatch(
              body,
              /<script>alert|at \S+\.ts:\d+/,
              "no script injected, no stack trace",
            );
          }
          assert.deepEqual(await snapshot(tf), before, "storage is unchanged");
        } finally {
          dashboard.close();
          await tf.close();
          await cleanup();
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}

runCatalogue("memory", async () => ({
  tf: await TaskFlow.open("memory:"),
  cleanup: () => Promise.resolve(),
}));
await whenPostgres("bad input on postgres", () =>
  runCatalogue("postgres", async () => {
    const { storage, cleanup } = await openTestPostgres("bad");
    return { tf: new TaskFlow(storage), cleanup };
  }));

async function snapshot(tf: TaskFlow): Promise<unknown> {
  const counts = await tf.counts();
  const jobs = await tf.list({ state: "Enqueued", limit: 100 });
  return {
    counts,
    jobs: jobs.jobs.map((j) => [j.id, j.version]),
    recurring: await tf.recurring.list(),
  };
}

async function runCli(entry: Extract<Entry, { kind: "cli" }>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-bad-cli-" });
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", ...entry.args],
      cwd: root,
      env: { TASKFLOW_STORAGE: `kv:${dir}/t.sqlite`, ...entry.env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, entry.exit, text);
    assert.match(text, entry.message);
    const files = [];
    for await (const file of Deno.readDir(dir)) files.push(file.name);
    assert.deepEqual(files, [], "nothing was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "bad input: the Recurring page shows a broken definition's mark and message",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const dashboard = createDashboard({ tf, security: { token: TOKEN } });
    try {
      const good = await tf.recurring.upsert("nightly", "0 3 * * *", "x", {});
      const lastError = {
        message: `args is 600011 bytes ${XSS}`,
        code: "PAYLOAD_TOO_LARGE",
        at: 0,
      };
      await tf.storage.recurring.put({ ...good, version: 2, lastError }, 1);
      const response = await dashboard.handler(
        new Request(`${ORIGIN}/recurring`, { headers: { authorization: `Bearer ${TOKEN}` } }),
      );
      const html = await response.text();
      assert.equal(response.status, 200);
      assert.match(html, /<span class="badge broken">error<\/span>/);
      assert.match(
        html,
        /skipped since 1970-01-01T00:00:00Z: args is 600011 bytes .*PAYLOAD_TOO_LARGE/,
      );
      assert.doesNotMatch(html, /<script>alert/);
      assert.equal((await tf.recurring.get("nightly"))?.lastError?.code, "PAYLOAD_TOO_LARGE");
      // A damaged record (fields of the wrong type, or none) still gets its row, not a 500.
      await tf.storage.recurring.put({ id: "bare", version: 1, lastError } as never, 0);
      const damaged = { id: "odd", version: 1, cron: 42, history: "x", options: null, lastError };
      await tf.storage.recurring.put(damaged as never, 0);
      const again = await dashboard.handler(
        new Request(`${ORIGIN}/recurring`, { headers: { authorization: `Bearer ${TOKEN}` } }),
      );
      const page = await again.text();
      assert.equal(again.status, 200);
      assert.match(page, /bare/);
      assert.match(page, /odd/);
    } finally {
      dashboard.close();
      await tf.close();
    }
  },
});

/** Argument shapes that once escaped as a plain TypeError (or were silently accepted). */
function hostileValues(): unknown[] {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const throwing = new Proxy({}, {
    get() {
      throw new Error("trap");
    },
    ownKeys() {
      throw new Error("trap");
    },
    getPrototypeOf() {
      throw new Error("trap");
    },
  });
  return [
    1n,
    Symbol("s"),
    cyclic,
    Object.create(null),
    Object.assign(Object.create(null), { queue: 1n }),
    revoked.proxy,
    throwing,
    {
      get queue() {
        throw new Error("getter");
      },
    },
    NaN,
    Infinity,
    -1,
    1e300,
    new Date(NaN),
    [],
    () => 1,
    "",
    null,
    { dealyMs: 5 },
  ];
}

Deno.test("bad input: fuzzed argument shapes of every public call throw a TaskFlowError", async () => {
  const tf = await TaskFlow.open("memory:");
  try {
    const id = await tf.enqueue("x", {});
    const calls: [string, (v: unknown) => unknown][] = [
      ["enqueue(job)", (v) => tf.enqueue(v as never, {})],
      ["enqueue(options)", (v) => tf.enqueue("x", {}, v as never)],
      ["enqueue(queue)", (v) => tf.enqueue("x", {}, { queue: v as never })],
      ["enqueue(id)", (v) => tf.enqueue("x", {}, { id: v as never })],
      ["enqueue(priority)", (v) => tf.enqueue("x", {}, { priority: v as never })],
      ["enqueue(attempts)", (v) => tf.enqueue("x", {}, { attempts: v as never })],
      ["enqueue(backoff)", (v) => tf.enqueue("x", {}, { backoff: v as never })],
      ["enqueue(timeoutMs)", (v) => tf.enqueue("x", {}, { timeoutMs: v as never })],
      ["enqueueMany(items)", (v) => tf.enqueueMany(v as never)],
      ["enqueueMany(item)", (v) => tf.enqueueMany([v as never])],
      ["schedule(options)", (v) => tf.schedule("x", {}, v as never)],
      ["schedule(at)", (v) => tf.schedule("x", {}, { at: v as never })],
      ["schedule(delayMs)", (v) => tf.schedule("x", {}, { delayMs: v as never })],
      ["continueWith(parent)", (v) => tf.continueWith(v as never, "x", {})],
      ["continueWith(on)", (v) => tf.continueWith(id, "x", {}, { on: v as never })],
      ["requeue(id)", (v) => tf.requeue(v as never)],
      ["requeue(options)", (v) => tf.requeue(id, v as never)],
      ["delete(options)", (v) => tf.delete(id, v as never)],
      ["get(id)", (v) => tf.get(v as never)],
      ["events(id)", (v) => tf.events(v as never)],
      ["getMany(ids)", (v) => tf.getMany(v as never)],
      ["getMany([id])", (v) => tf.getMany([v as never])],
      ["lease(id)", (v) => tf.lease(v as never)],
      ["list(query)", (v) => tf.list(v as never)],
      ["list(state)", (v) => tf.list({ state: v as never })],
      ["list(cursor)", (v) => tf.list({ state: "Enqueued", cursor: v as never })],
      ["search(prefix)", (v) => tf.search(v as never)],
      ["search(options)", (v) => tf.search("x", v as never)],
      ["timeline(resolution)", (v) => tf.timeline(v as never, { from: 0, to: 1 })],
      ["timeline(range)", (v) => tf.timeline("hour", v as never)],
      ["pauseQueue(queue)", (v) => tf.pauseQueue(v as never)],
      ["batch(items)", (v) => tf.batch(v as never)],
      ["batch(options)", (v) => tf.batch([{ job: "x", args: {} }], v as never)],
      ["batch(then)", (v) => tf.batch([{ job: "x", args: {} }], { then: v as never })],
      ["batchStatus(id)", (v) => tf.batchStatus(v as never)],
      ["batches(options)", (v) => tf.batches(v as never)],
      ["enqueue(dependsOn)", (v) => tf.enqueue("x", {}, { dependsOn: v as never })],
      ["enqueue(dependsOn[0])", (v) => tf.enqueue("x", {}, { dependsOn: [v as never] })],
      [
        "enqueue(onDependencyFailure)",
        (v) => tf.enqueue("x", {}, { dependsOn: [id], onDependencyFailure: v as never }),
      ],
      ["schedule(dependsOn)", (v) => tf.schedule("x", {}, { delayMs: 1, dependsOn: v as never })],
      ["flow(node)", (v) => tf.flow(v as never)],
      ["flow(children)", (v) => tf.flow({ job: "x", args: {}, children: v as never })],
      ["flow(child)", (v) => tf.flow({ job: "x", args: {}, children: [v as never] })],
      ["flow(options)", (v) => tf.flow({ job: "x", args: {}, options: v as never })],
      ["flowStatus(id)", (v) => tf.flowStatus(v as never)],
      ["flows(options)", (v) => tf.flows(v as never)],
      ["recurring.upsert(id)", (v) => tf.recurring.upsert(v as never, "* * * * *", "x", {})],
      ["recurring.upsert(cron)", (v) => tf.recurring.upsert("r", v as never, "x", {})],
      ["recurring.upsert(job)", (v) => tf.recurring.upsert("r", "* * * * *", v as never, {})],
      [
        "recurring.upsert(options)",
        (v) => tf.recurring.upsert("r", "* * * * *", "x", {}, v as never),
      ],
      [
        "recurring.upsert(timezone)",
        (v) => tf.recurring.upsert("r", "* * * * *", "x", {}, { timezone: v as never }),
      ],
      [
        "recurring.upsert(misfire)",
        (v) => tf.recurring.upsert("r", "* * * * *", "x", {}, { misfire: v as never }),
      ],
      ["recurring.get(id)", (v) => tf.recurring.get(v as never)],
      ["recurring.trigger(id)", (v) => tf.recurring.trigger(v as never)],
      ["defineJob(name)", (v) => defineJob(v as never, () => 1)],
      ["defineJob(handler)", (v) => defineJob("x", v as never)],
      ["defineJob(defaults)", (v) => defineJob("x", () => 1, v as never)],
      ["createWorker(options)", (v) => createWorker(v as never)],
      ["createWorker(queues)", (v) => createWorker({ jobs: [], queues: v as never })],
      ["createWorker(jobs)", (v) => createWorker({ jobs: v as never })],
      ["createWorker(heartbeatMs)", (v) => createWorker({ jobs: [], heartbeatMs: v as never })],
      ["TaskFlow.open(options)", (v) => TaskFlow.open("memory:", v as never)],
      ["new TaskFlow(storage)", (v) => new TaskFlow(v as never)],
    ];
    const escaped: string[] = [];
    for (const [name, call] of calls) {
      for (const [i, value] of hostileValues().entries()) {
        try {
          const result = await call(value);
          // A call that accepted the value must have made something sound of it.
          if (result && typeof (result as { stop?: unknown }).stop === "function") {
            await (result as { stop(): Promise<void> }).stop();
          }
        } catch (error) {
          if (!(error instanceof TaskFlowError) || typeof error.code !== "string") {
            escaped.push(`${name} with value #${i}: ${String(error).slice(0, 120)}`);
          }
        }
      }
    }
    assert.deepEqual(escaped, [], "every error is a TaskFlowError with a code");
  } finally {
    await tf.close();
  }
});
