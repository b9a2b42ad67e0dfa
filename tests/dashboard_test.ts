/**
 * @module
 * The dashboard in-process: pages, API, actions, security, live hub, manifest.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard, serveDashboard } from "../lib/dashboard/app.ts";
import type { SecurityConfig } from "../lib/dashboard/security.ts";
import { generateManifest } from "../lib/fresh/manifest.ts";
import { claimCommit, eventually } from "./helpers.ts";
import { appendCommit } from "../lib/changes.ts";
import { deletePrefix, openTestRedis, REDIS_REQUIRED, redisUnreachable } from "./redis_helpers.ts";
import {
  dropSchema,
  openTestPostgres,
  POSTGRES_REQUIRED,
  postgresUnreachable,
} from "./postgres_helpers.ts";
import type { PostgresStorage } from "../storage/postgres/mod.ts";

const ORIGIN = "http://127.0.0.1:8000";
const XSS = `<script>alert("x")</script>`;

interface App {
  tf: TaskFlow;
  get(path: string, init?: RequestInit): Promise<Response>;
  post(
    path: string,
    form: Record<string, string | string[]>,
    headers?: Record<string, string>,
  ): Promise<Response>;
  csrf: string;
  close(): void;
}

async function app(security: Partial<SecurityConfig> = {}, liveIntervalMs = 1_000): Promise<App> {
  const tf = await TaskFlow.open("memory:");
  const dashboard = createDashboard({ tf, security, liveIntervalMs });
  const first = await dashboard.handler(
    new Request(`${ORIGIN}/queues`, { headers: auth(security) }),
  );
  await first.body?.cancel();
  const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")?.[1] ?? "";
  const get = (path: string, init: RequestInit = {}) =>
    dashboard.handler(
      new Request(`${ORIGIN}${path}`, {
        ...init,
        headers: { ...auth(security), ...init.headers as Record<string, string> },
      }),
    );
  const post = (
    path: string,
    form: Record<string, string | string[]>,
    headers: Record<string, string> = {},
  ) => {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(form)) {
      for (const v of [value].flat()) body.append(key, v);
    }
    return dashboard.handler(
      new Request(`${ORIGIN}${path}`, {
        method: "POST",
        body,
        headers: { origin: ORIGIN, cookie: `tf_csrf=${csrf}`, ...auth(security), ...headers },
        redirect: "manual",
      }),
    );
  };
  return { tf, get, post, csrf, close: () => dashboard.close() };
}

function auth(security: Partial<SecurityConfig>): Record<string, string> {
  if (security.password) {
    return { authorization: `Basic ${btoa(`${security.user ?? "admin"}:${security.password}`)}` };
  }
  return {};
}

async function text(response: Response): Promise<string> {
  return await response.text();
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "dashboard: every page renders, with security headers",
  fn: async () => {
    const a = await app();
    try {
      const id = await a.tf.enqueue("mail.send", { to: "a@example.com" }, { queue: "mail" });
      for (
        const path of [
          "/",
          "/jobs/enqueued",
          "/jobs/failed",
          "/jobs/scheduled",
          "/queues",
          "/retries",
          "/servers",
          "/recurring",
          `/job/${id}`,
        ]
      ) {
        const response = await a.get(path);
        const body = await text(response);
        assert.equal(response.status, 200, `${path}: ${body.slice(0, 300)}`);
        assert.match(response.headers.get("content-type")!, /text\/html/);
        assert.match(
          response.headers.get("content-security-policy")!,
          /default-src 'self'; script-src 'self'/,
        );
        assert.equal(response.headers.get("x-frame-options"), "DENY");
        assert.equal(response.headers.get("x-content-type-options"), "nosniff");
        assert.match(body, /<!DOCTYPE html><html lang="en">/);
        assert.doesNotMatch(body, /<script>(?!<\/script>)/, "no inline script");
      }
      const job = await text(await a.get(`/job/${id}`));
      assert.match(job, /mail\.send/);
      assert.match(job, /&quot;to&quot;: &quot;a@example\.com&quot;|"to": "a@example\.com"/);
      assert.match(job, /Timeline/);
      const queues = await text(await a.get("/queues"));
      assert.match(queues, /<td>mail<\/td><td>active.*?<\/td><td>1<\/td>/);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: bad ids, states, page numbers and cursors get 404/400 pages, never a stack",
  fn: async () => {
    const a = await app();
    try {
      const cases: Array<[string, number]> = [
        ["/jobs/bogus", 404],
        ["/job/no-such-job", 404],
        ["/nothing/here", 404],
        ["/job/bad%20id", 400],
        ["/job/%E0%A4%A", 400],
        ["/jobs/failed?limit=0", 400],
        ["/jobs/failed?limit=99999", 400],
        ["/jobs/failed?page=abc", 400],
        ["/jobs/failed?page=99999999999999999999", 400],
        ["/jobs/failed?cursor=not-a-cursor", 400],
        ["/api/jobs?state=bogus", 400],
        ["/api/jobs", 400],
        ["/api/jobs/nope", 404],
        ["/../etc/passwd", 404],
        ["/%2e%2e/%2e%2e/etc/passwd", 404],
        ["/..%2fdeno.json", 404],
        ["/style.css/../../deno.json", 404],
      ];
      for (const [path, status] of cases) {
        const response = await a.get(path);
        const body = await text(response);
        assert.equal(
          response.status,
          status,
          `${path} → ${response.status}: ${body.slice(0, 200)}`,
        );
        assert.doesNotMatch(body, /at .*\.ts:\d+|Error:|"imports"/, `${path} leaks internals`);
      }
      assert.equal((await a.get("/style.css")).status, 200);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: values are escaped everywhere (args, reasons, errors, queries)",
  fn: async () => {
    const a = await app();
    try {
      const id = await a.tf.enqueue("x", { html: XSS, [XSS]: 1 });
      await a.tf.delete(id, { reason: XSS });
      const record = (await a.tf.get(id))!;
      await a.tf.requeue(id, { reason: XSS });
      const claimed = claimCommit((await a.tf.get(id))!, Date.now());
      await a.tf.storage.append([{ commits: [claimed] }]);
      await a.tf.storage.append([{
        commits: [appendCommit(claimed.record, [{
          type: "state",
          at: Date.now(),
          state: "Failed",
          reason: XSS,
          data: { error: { name: XSS, message: XSS, stack: XSS } },
        }])],
      }]);
      assert.ok(record);
      for (
        const path of [
          `/job/${id}`,
          "/jobs/failed",
          "/",
          `/jobs/failed?done=${encodeURIComponent(XSS)}`,
          `/job/${id}?done=${encodeURIComponent(XSS)}`,
        ]
      ) {
        const body = await text(await a.get(path));
        assert.doesNotMatch(body, /<script>alert/, `${path} has an unescaped script`);
      }
      assert.match(await text(await a.get(`/job/${id}`)), /&lt;script>alert|&lt;script&gt;alert/);
      const notFound = await text(await a.get(`/jobs/${encodeURIComponent(XSS)}`));
      assert.doesNotMatch(notFound, /<script>alert/);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: actions need POST, same origin and the CSRF token, and answer 303",
  fn: async () => {
    const a = await app();
    try {
      const id = await a.tf.enqueue("x", {});
      const missing = await a.post(`/job/${id}`, { action: "delete" });
      assert.equal(missing.status, 403);
      assert.match(await missing.text(), /missing or invalid CSRF token/);
      const forged = await a.post(`/job/${id}`, {
        action: "delete",
        _csrf: "forged-token-forged-token",
      });
      assert.equal(forged.status, 403);
      const crossOrigin = await a.post(`/job/${id}`, { action: "delete", _csrf: a.csrf }, {
        origin: "http://evil.example",
      });
      assert.equal(crossOrigin.status, 403);
      assert.match(await crossOrigin.text(), /cross-origin request refused/);
      const noOrigin = await a.post(`/job/${id}`, { action: "delete", _csrf: a.csrf }, {
        origin: "",
      });
      assert.equal(noOrigin.status, 403);
      assert.equal((await a.tf.get(id))!.state, "Enqueued", "nothing changed");
      const ok = await a.post(`/job/${id}`, { action: "delete", _csrf: a.csrf });
      assert.equal(ok.status, 303);
      assert.match(ok.headers.get("location")!, new RegExp(`^/job/${id}\\?done=Deleted`));
      assert.equal((await a.tf.get(id))!.state, "Deleted");
      const bad = await a.post(`/job/${id}`, { action: "explode", _csrf: a.csrf });
      assert.equal(bad.status, 400);
      const forbidden = await a.post(`/job/${id}`, { action: "delete", _csrf: a.csrf });
      assert.equal(forbidden.status, 409);
      assert.match(await forbidden.text(), /cannot move from Deleted to Deleted/);
      const [b, c] = await a.tf.enqueueMany([{ job: "y", args: 1 }, { job: "y", args: 2 }]);
      await a.tf.delete(b);
      await a.tf.delete(c);
      const bulk = await a.post("/jobs/deleted", {
        action: "requeue",
        ids: [b, c, id],
        _csrf: a.csrf,
      });
      assert.equal(bulk.status, 303);
      assert.equal(
        new URL(bulk.headers.get("location")!, ORIGIN).searchParams.get("done"),
        "requeue: 3 done",
      );
      assert.equal((await a.tf.counts()).states.Enqueued, 3);
      const get = await a.get(`/job/${id}`, { method: "GET" });
      assert.match(await get.text(), /name="_csrf" value="[\w-]+"/);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: read-only mode hides and refuses actions",
  fn: async () => {
    const a = await app({ readOnly: true });
    try {
      const id = await a.tf.enqueue("x", {});
      const page = await text(await a.get(`/job/${id}`));
      assert.doesNotMatch(page, /<button/);
      assert.match(page, /read-only/);
      const response = await a.post(`/job/${id}`, { action: "delete", _csrf: a.csrf });
      assert.equal(response.status, 403);
      assert.equal((await a.tf.get(id))!.state, "Enqueued");
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: basic auth and token auth",
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    const dashboard = createDashboard({ tf, security: { password: "s3cret", token: "tok-123" } });
    const get = (path: string, headers: Record<string, string> = {}) =>
      dashboard.handler(new Request(`${ORIGIN}${path}`, { headers }));
    try {
      const none = await get("/");
      assert.equal(none.status, 401);
      assert.match(none.headers.get("www-authenticate")!, /Basic realm="TaskFlow"/);
      await none.body?.cancel();
      assert.equal((await get("/", { authorization: `Basic ${btoa("admin:wrong")}` })).status, 401);
      assert.equal((await get("/api/stats", { authorization: "Bearer nope" })).status, 401);
      const basic = await get("/queues", { authorization: `Basic ${btoa("admin:s3cret")}` });
      assert.equal(basic.status, 200);
      await basic.body?.cancel();
      const bearer = await get("/api/stats", { authorization: "Bearer tok-123" });
      assert.equal(bearer.status, 200);
      await bearer.body?.cancel();
      // ?token= answers 303 to the address without it, with a session cookie that is not the token.
      const query = await get("/queues?token=tok-123");
      assert.equal(query.status, 303);
      assert.equal(query.headers.get("location"), "/queues");
      const session = /tf_session=([^;]+); Path=\/; HttpOnly; SameSite=Lax/.exec(
        query.headers.get("set-cookie")!,
      )![1];
      assert.doesNotMatch(session, /tok-123/);
      const cookie = await get("/queues", { cookie: `tf_session=${session}` });
      assert.equal(cookie.status, 200);
      await cookie.body?.cancel();
      const created = await dashboard.handler(
        new Request(`${ORIGIN}/api/jobs`, {
          method: "POST",
          headers: { authorization: "Bearer tok-123", "content-type": "application/json" },
          body: JSON.stringify({ name: "api.job", args: { n: 1 }, options: { queue: "api" } }),
        }),
      );
      assert.equal(created.status, 201);
      const { id } = await created.json();
      assert.equal((await tf.get(id))!.queue, "api");
      const scheduled = await dashboard.handler(
        new Request(`${ORIGIN}/api/jobs`, {
          method: "POST",
          headers: { authorization: "Bearer tok-123", "content-type": "application/json" },
          body: JSON.stringify({ name: "api.job", args: null, options: { delayMs: 60_000 } }),
        }),
      );
      assert.equal(scheduled.status, 201);
      assert.equal((await tf.get((await scheduled.json()).id))!.state, "Scheduled");
      for (
        const [body, status, message] of [
          ["{not json", 400, /malformed JSON/],
          ["[1,2]", 400, /must be an object/],
          [JSON.stringify({ name: "<bad name>", args: 1 }), 400, /invalid job name/],
          [
            JSON.stringify({ name: "ok", args: 1, options: { priority: "high" } }),
            400,
            /options\.priority "high"/,
          ],
          [JSON.stringify({ name: "ok", args: 1, options: { delayMs: -1 } }), 400, /delayMs -1/],
        ] as const
      ) {
        const response = await dashboard.handler(
          new Request(`${ORIGIN}/api/jobs`, {
            method: "POST",
            headers: { authorization: "Bearer tok-123", "content-type": "application/json" },
            body,
          }),
        );
        assert.equal(response.status, status, body);
        assert.match((await response.json()).error, message);
      }
      assert.equal((await tf.counts()).totals.created, 2);
    } finally {
      dashboard.close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: JSON API and Prometheus metrics",
  fn: async () => {
    const a = await app();
    try {
      const id = await a.tf.enqueue("x", { n: 1 }, { queue: "q1" });
      const stats = await (await a.get("/api/stats")).json();
      assert.equal(stats.counts.states.Enqueued, 1);
      const list = await (await a.get("/api/jobs?state=enqueued")).json();
      assert.deepEqual(list.jobs.map((j: { id: string }) => j.id), [id]);
      const queue = await (await a.get("/api/jobs?queue=q1")).json();
      assert.equal(queue.jobs.length, 1);
      const one = await (await a.get(`/api/jobs/${id}`)).json();
      assert.equal(one.job.id, id);
      assert.equal(one.events.length, 2);
      assert.deepEqual(await (await a.get("/api/servers")).json(), []);
      assert.deepEqual(await (await a.get("/api/recurring")).json(), []);
      const metrics = await a.get("/metrics");
      assert.match(metrics.headers.get("content-type")!, /text\/plain; version=0\.0\.4/);
      const body = await metrics.text();
      assert.match(body, /taskflow_jobs\{queue="q1",state="Enqueued"\} 1/);
      assert.match(body, /taskflow_jobs_total\{event="created"\} 1/);
      // An open (no token) dashboard takes API writes from its own origin; a form is not JSON.
      const formPost = await a.post("/api/jobs", {});
      assert.equal(formPost.status, 415);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: one storage poll per process feeds every open live page",
  fn: async () => {
    const a = await app({}, 100);
    try {
      await a.tf.enqueue("x", {});
      const streams = await Promise.all([1, 2, 3, 4, 5].map(() => a.get("/api/live")));
      const readers = streams.map((s) => s.body!.pipeThrough(new TextDecoderStream()).getReader());
      const received = readers.map(() => [] as string[]);
      const pumps = readers.map(async (reader, i) => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          received[i].push(...value.split("\n").filter((l) => l.startsWith("data: ")));
        }
      });
      await eventually(() => assert.ok(received.every((r) => r.length >= 4)), 5_000);
      const polls = received.map((r) => JSON.parse(r.at(-1)!.slice(6)).polls as number);
      const maxPolls = Math.max(...polls);
      const eachSaw = Math.min(...received.map((r) => r.length));
      assert.ok(
        maxPolls <= eachSaw + 2,
        `5 pages saw ${eachSaw}+ snapshots from ${maxPolls} polls`,
      );
      await a.tf.enqueue("x", {});
      await eventually(() => {
        const last = JSON.parse(received[0].at(-1)!.slice(6));
        assert.equal(last.counts.states.Enqueued, 2);
      }, 2_000);
      for (const reader of readers) await reader.cancel();
      await Promise.all(pumps);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: islands are server-rendered with props and the bundle hydrates them",
  fn: async () => {
    const a = await app();
    try {
      const page = await text(await a.get("/"));
      for (const island of ["LiveCounters", "RealtimeGraph", "ProcessingList"]) {
        assert.match(page, new RegExp(`data-tf-island="${island}"`));
      }
      assert.match(page, /<script type="application\/json" id="tf-islands">\[\{"initial":/);
      assert.match(page, /<script type="module" src="\/_frsh\/islands\.js"><\/script>/);
      const bundle = await a.get("/_frsh/islands.js");
      assert.equal(bundle.status, 200);
      const js = await bundle.text();
      assert.match(js, /data-tf-island/);
      assert.ok(js.length > 5_000);
    } finally {
      a.close();
    }
  },
});

Deno.test("dashboard: fresh.gen.ts matches routes/ and islands/ (run `deno task manifest`)", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const expected = await generateManifest(root);
  const actual = await Deno.readTextFile(`${root}/fresh.gen.ts`);
  assert.equal(actual, expected, "fresh.gen.ts is stale: run `deno task manifest`");
});

Deno.test({
  ...opts,
  name: "dashboard: refuses a non-loopback address without auth unless --insecure",
  fn: async () => {
    const tf = await TaskFlow.open("memory:");
    try {
      assert.throws(
        () => serveDashboard({ tf, hostname: "0.0.0.0", port: 0 }),
        /invalid --host "0\.0\.0\.0": is not a loopback address: set TASKFLOW_DASHBOARD_PASSWORD or TASKFLOW_DASHBOARD_TOKEN, or pass --insecure/,
      );
      const controller = new AbortController();
      const { server } = serveDashboard({
        tf,
        hostname: "0.0.0.0",
        port: 0,
        insecure: true,
        signal: controller.signal,
      });
      controller.abort();
      await server.finished;
      const secured = new AbortController();
      const second = serveDashboard({
        tf,
        hostname: "0.0.0.0",
        port: 0,
        security: { token: "a-long-enough-token-4f9c2" },
        signal: secured.signal,
      });
      secured.abort();
      await second.server.finished;
    } finally {
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: recurring page lists definitions and triggers, pauses, resumes, deletes",
  fn: async () => {
    const a = await app();
    try {
      await a.tf.recurring.upsert("digest", "0 9 * * MON-FRI", "mail.digest", { to: XSS }, {
        timezone: "Europe/Berlin",
      });
      const page = await text(await a.get("/recurring"));
      assert.match(page, /0 9 \* \* MON-FRI/);
      assert.match(page, /Europe\/Berlin/);
      assert.doesNotMatch(page, /<script>alert/);
      const trigger = await a.post("/recurring", {
        id: "digest",
        action: "trigger",
        _csrf: a.csrf,
      });
      assert.equal(trigger.status, 303);
      assert.equal((await a.tf.counts()).totals.created, 1);
      assert.equal(
        (await a.post("/recurring", { id: "digest", action: "pause", _csrf: a.csrf })).status,
        303,
      );
      assert.equal((await a.tf.recurring.get("digest"))!.paused, true);
      assert.match(await text(await a.get("/recurring")), /value="resume"/);
      assert.equal(
        (await a.post("/recurring", { id: "digest", action: "resume", _csrf: a.csrf })).status,
        303,
      );
      assert.equal((await a.tf.recurring.get("digest"))!.paused, false);
      assert.equal(
        (await a.post("/recurring", { id: "digest", action: "explode", _csrf: a.csrf })).status,
        400,
      );
      assert.equal(
        (await a.post("/recurring", { id: "nope", action: "pause", _csrf: a.csrf })).status,
        404,
      );
      assert.equal(
        (await a.post("/recurring", { id: "digest", action: "delete", _csrf: a.csrf })).status,
        303,
      );
      assert.equal(await a.tf.recurring.get("digest"), null);
      const api = await (await a.get("/api/recurring")).json();
      assert.deepEqual(api, []);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: search by name prefix, queue pause/resume, duration histogram in /metrics",
  fn: async () => {
    const a = await app();
    try {
      const id = await a.tf.enqueue("mail.send", {}, { queue: "mail" });
      await a.tf.enqueue("report.build", {});
      const byId = await a.get(`/search?q=${id}`, { redirect: "manual" });
      assert.equal(byId.status, 303);
      assert.equal(byId.headers.get("location"), `/job/${id}`);
      const byName = await text(await a.get("/search?q=mail."));
      assert.match(byName, new RegExp(id));
      assert.doesNotMatch(byName, /report\.build/);
      assert.equal((await a.get(`/search?q=${encodeURIComponent(XSS)}`)).status, 400);
      assert.equal(
        (await a.post("/queues", { queue: "mail", action: "pause", _csrf: a.csrf })).status,
        303,
      );
      assert.deepEqual(await a.tf.pausedQueues(), ["mail"]);
      assert.match(await text(await a.get("/queues")), /paused/);
      assert.equal(
        (await a.post("/queues", { queue: "mail", action: "resume", _csrf: a.csrf })).status,
        303,
      );
      assert.deepEqual(await a.tf.pausedQueues(), []);
      assert.equal(
        (await a.post("/queues", { queue: "mail", action: "explode", _csrf: a.csrf })).status,
        400,
      );
      const metrics = await text(await a.get("/metrics"));
      assert.match(metrics, /# TYPE taskflow_job_duration_seconds histogram/);
      assert.match(metrics, /taskflow_job_duration_seconds_bucket\{le="\+Inf"\} 0/);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "dashboard: batch pages show progress and members, and cancel",
  fn: async () => {
    const a = await app();
    try {
      const { id, jobIds } = await a.tf.batch(
        Array.from({ length: 60 }, (_, n) => ({ job: "b.member", args: { n } })),
        { then: { job: "b.then", args: {} } },
      );
      await a.tf.delete(jobIds[0]);
      const list = await text(await a.get("/batches"));
      assert.match(list, new RegExp(id));
      assert.match(list, /1 \/ 60/);
      const page = await text(await a.get(`/batch/${id}`));
      assert.match(page, /Page 1 of 2/);
      assert.match(page, new RegExp(jobIds[1]));
      assert.match(await text(await a.get(`/batch/${id}?page=2`)), new RegExp(jobIds[59]));
      assert.equal((await a.get(`/batch/${id}?page=9`)).status, 400);
      assert.equal((await a.get("/batch/nope")).status, 404);
      assert.match(await text(await a.get(`/job/${jobIds[3]}`)), new RegExp(`/batch/${id}`));
      const cancel = await a.post(`/batch/${id}`, { action: "cancel", _csrf: a.csrf });
      assert.equal(cancel.status, 303);
      assert.equal((await a.tf.batchStatus(id))!.batch.state, "cancelled");
      assert.equal((await a.tf.batchStatus(id))!.counts.deleted, 60);
    } finally {
      a.close();
    }
  },
});

for (
  const [label, open] of [
    ["kv :memory:", () => TaskFlow.open("kv::memory:")],
    ["redis", async () => new TaskFlow((await openTestRedis("dash")).storage)],
    ["postgres", async () => new TaskFlow((await openTestPostgres("dash")).storage)],
  ] as const
) {
  Deno.test({
    ...opts,
    name: `dashboard on ${label}: pages, API and an action work`,
    ignore: (label === "redis" && !!(await redisUnreachable()) && !REDIS_REQUIRED) ||
      (label === "postgres" && !!(await postgresUnreachable()) && !POSTGRES_REQUIRED),
    fn: async () => {
      const tf = await open();
      const dashboard = createDashboard({ tf });
      const prefix = (tf.storage as { prefix?: string }).prefix;
      try {
        const id = await tf.enqueue("mail.send", { to: "x" }, { queue: "mail" });
        await tf.recurring.upsert("nightly", "0 3 * * *", "report", null);
        const { id: batch } = await tf.batch([{ job: "b", args: 1 }]);
        for (
          const path of [
            "/",
            "/jobs/enqueued",
            `/job/${id}`,
            "/queues",
            "/retries",
            "/recurring",
            "/servers",
            "/batches",
            `/batch/${batch}`,
            "/search?q=mail",
            "/metrics",
            "/api/stats",
          ]
        ) {
          const response = await dashboard.handler(new Request(`${ORIGIN}${path}`));
          assert.equal(
            response.status,
            200,
            `${label} ${path}: ${(await response.text()).slice(0, 200)}`,
          );
          await response.body?.cancel().catch(() => {});
        }
        const first = await dashboard.handler(new Request(`${ORIGIN}/queues`));
        await first.body?.cancel();
        const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")![1];
        const response = await dashboard.handler(
          new Request(`${ORIGIN}/job/${id}`, {
            method: "POST",
            body: new URLSearchParams({ action: "delete", _csrf: csrf }),
            headers: { origin: ORIGIN, cookie: `tf_csrf=${csrf}` },
          }),
        );
        assert.equal(response.status, 303);
        assert.equal((await tf.get(id))!.state, "Deleted");
      } finally {
        dashboard.close();
        await tf.close();
        if (label === "redis") await deletePrefix(prefix ?? "");
        if (label === "postgres") await dropSchema((tf.storage as PostgresStorage).schema);
      }
    },
  });
}
