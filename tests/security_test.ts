/**
 * @module
 * The dashboard's HTTP security, one test per class of attack or mistake (issue 18): DNS
 * rebinding, the login link's cookie, read-only writes, unbounded bodies, unknown actions, a
 * malformed CSRF cookie, weak protection of a public address, awkward secrets, headers on every
 * response, `$` patterns in the page's data block, and refusals that name their real cause.
 */

import assert from "node:assert/strict";
import { h } from "preact";
import { TaskFlow } from "../lib/client.ts";
import {
  checkBind,
  createDashboard,
  type Dashboard,
  isLoopback,
  parseAllowedHosts,
  securityFromEnv,
  serveDashboard,
} from "../lib/dashboard/app.ts";
import { FORM_LIMIT, JSON_LIMIT } from "../lib/dashboard/body.ts";
import type { SecurityConfig } from "../lib/dashboard/security.ts";
import { newSession, SESSION_TTL_MS } from "../lib/dashboard/session.ts";
import { registerIslands, renderPage } from "../lib/fresh/render.ts";
import { TaskFlowError } from "../lib/mod.ts";
import { claimCommit } from "./helpers.ts";

const ORIGIN = "http://127.0.0.1:8000";
const opts = { sanitizeOps: false, sanitizeResources: false };

/** Text as the bytes of its UTF-8 encoding, one char per byte: what an HTTP header carries. */
const latin1 = (text: string) => String.fromCharCode(...new TextEncoder().encode(text));

interface Fixture {
  tf: TaskFlow;
  dashboard: Dashboard;
  http(path: string, init?: RequestInit, origin?: string): Promise<Response>;
  /** A form POST as the dashboard's own page sends it (origin, CSRF cookie and field). */
  form(path: string, fields: Record<string, string | string[]>, headers?: HeadersInit): Promise<
    Response
  >;
  csrf: string;
}

async function withDashboard(
  security: Partial<SecurityConfig>,
  fn: (f: Fixture) => Promise<void>,
  options: { drain?: () => Promise<unknown> } = {},
): Promise<void> {
  const tf = await TaskFlow.open("memory:");
  const dashboard = createDashboard({ tf, security, drain: options.drain });
  const headers: Record<string, string> = security.password
    ? { authorization: `Basic ${btoa(latin1(`${security.user ?? "admin"}:${security.password}`))}` }
    : security.token
    ? { authorization: `Bearer ${latin1(security.token)}` }
    : {};
  const http = (path: string, init: RequestInit = {}, origin = ORIGIN) =>
    dashboard.handler(
      new Request(`${origin}${path}`, {
        redirect: "manual",
        ...init,
        headers: { ...headers, ...Object.fromEntries(new Headers(init.headers)) },
      }),
    );
  const first = await http("/queues");
  await first.body?.cancel();
  const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")?.[1] ?? "";
  const form = (
    path: string,
    fields: Record<string, string | string[]>,
    extra: HeadersInit = {},
  ) => {
    const body = new URLSearchParams({ _csrf: csrf });
    for (const [key, value] of Object.entries(fields)) {
      for (const v of [value].flat()) body.append(key, v);
    }
    return http(path, {
      method: "POST",
      body,
      headers: {
        origin: ORIGIN,
        cookie: `tf_csrf=${csrf}`,
        ...Object.fromEntries(new Headers(extra)),
      },
    });
  };
  try {
    await fn({ tf, dashboard, http, form, csrf });
  } finally {
    dashboard.close();
    await tf.close();
  }
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

Deno.test({
  ...opts,
  name: "security 1: only the dashboard's own host names are answered (DNS rebinding)",
  fn: () =>
    withDashboard({}, async ({ tf, http, form, csrf }) => {
      const id = await tf.enqueue("x", {});
      const evil = "http://evil.example:8000";
      const page = await http("/", {}, evil);
      assert.equal(page.status, 421);
      assert.match(
        await page.text(),
        /does not answer for the host name (&quot;|")evil\.example(&quot;|").*--allowed-hosts/s,
      );
      const api = await http("/api/stats", {}, evil);
      assert.equal(api.status, 421);
      assert.match((await api.json()).error, /TASKFLOW_ALLOWED_HOSTS/);
      const action = await http(`/job/${id}`, {
        method: "POST",
        body: new URLSearchParams({ action: "delete", _csrf: csrf }),
        headers: { origin: evil, cookie: `tf_csrf=${csrf}` },
      }, evil);
      assert.equal(action.status, 421);
      const enqueue = await http("/api/jobs", json({ name: "x", args: 1 }, { origin: evil }), evil);
      assert.equal(enqueue.status, 421);
      assert.equal((await tf.get(id))!.state, "Enqueued");
      assert.equal((await tf.counts()).totals.created, 1);
      for (
        const origin of [
          ORIGIN,
          "http://localhost:8000",
          "http://[::1]:8000",
          "http://a.localhost:8000",
        ]
      ) {
        const ok = await http("/queues", {}, origin);
        assert.equal(ok.status, 200, origin);
        await ok.body?.cancel();
      }
      assert.equal((await form(`/job/${id}`, { action: "delete" })).status, 303);
    }).then(() =>
      withDashboard(
        { allowedHosts: parseAllowedHosts("dash.example.com, .corp.example"), trustProxy: false },
        async ({ http }) => {
          for (
            const [origin, status] of [
              ["http://dash.example.com", 200],
              ["http://corp.example", 200],
              ["http://jobs.corp.example:8443", 200],
              ["http://evilcorp.example", 421],
              ["http://dash.example.com.evil.example", 421],
            ] as const
          ) {
            const response = await http("/queues", {}, origin);
            assert.equal(response.status, status, origin);
            await response.body?.cancel();
          }
          // Without trust, a forwarded host changes nothing.
          const spoofed = await http("/queues", {
            headers: { "x-forwarded-host": "dash.example.com" },
          }, "http://evil.example");
          assert.equal(spoofed.status, 421);
          await spoofed.body?.cancel();
        },
      )
    ).then(() =>
      withDashboard({ trustProxy: true }, async ({ http }) => {
        const proxied = await http("/queues", {
          headers: { "x-forwarded-host": "jobs.example.com", "x-forwarded-proto": "https" },
        }, "http://taskflow-upstream:8000");
        assert.equal(proxied.status, 200);
        await proxied.body?.cancel();
        const direct = await http("/queues", {}, "http://evil.example");
        assert.equal(direct.status, 421);
        await direct.body?.cancel();
      })
    ).then(() => {
      assert.throws(() => parseAllowedHosts("https://dash.example.com:443"), (error: unknown) => {
        assert.ok(error instanceof TaskFlowError);
        assert.equal(error.code, "INVALID_OPTION");
        assert.match(error.message, /TASKFLOW_ALLOWED_HOSTS.*"https:\/\/dash\.example\.com:443"/);
        return true;
      });
      const before = Deno.env.get("TASKFLOW_ALLOWED_HOSTS");
      Deno.env.set("TASKFLOW_ALLOWED_HOSTS", "Dash.Example.com,10.0.0.5");
      try {
        assert.deepEqual(securityFromEnv().allowedHosts, ["dash.example.com", "10.0.0.5"]);
      } finally {
        if (before === undefined) Deno.env.delete("TASKFLOW_ALLOWED_HOSTS");
        else Deno.env.set("TASKFLOW_ALLOWED_HOSTS", before);
      }
    }),
});

Deno.test({
  ...opts,
  name:
    "security 2: ?token= gives a session cookie that is not the token and drops it from the address",
  fn: async () => {
    const token = "tok-2f1e9c7b5a";
    await withDashboard({ token }, async ({ dashboard }) => {
      const get = (url: string, headers: Record<string, string> = {}) =>
        dashboard.handler(new Request(url, { headers, redirect: "manual" }));
      const login = await get(`${ORIGIN}/jobs/failed?page=2&token=${token}&limit=20`);
      assert.equal(login.status, 303);
      assert.equal(login.headers.get("location"), "/jobs/failed?page=2&limit=20");
      const setCookie = login.headers.get("set-cookie")!;
      assert.doesNotMatch(setCookie, new RegExp(token));
      assert.doesNotMatch(setCookie, /tf_token/);
      assert.match(setCookie, /^tf_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200$/);
      const session = /tf_session=([^;]+)/.exec(setCookie)![1];
      const page = await get(`${ORIGIN}/jobs/failed`, { cookie: `tf_session=${session}` });
      assert.equal(page.status, 200);
      await page.body?.cancel();
      // Secure over HTTPS, directly or (trusted) through a proxy; not on a spoofed header.
      const https = await get(`https://127.0.0.1:8000/?token=${token}`);
      assert.match(https.headers.get("set-cookie")!, /; Secure/);
      const spoofed = await get(`${ORIGIN}/?token=${token}`, { "x-forwarded-proto": "https" });
      assert.doesNotMatch(spoofed.headers.get("set-cookie")!, /Secure/);
      // The raw token is no cookie credential, an old tf_token cookie is cleared, sessions expire.
      for (const cookie of [`tf_token=${token}`, `tf_session=${token}`]) {
        const refused = await get(`${ORIGIN}/queues`, { cookie });
        assert.equal(refused.status, 401, cookie);
        await refused.body?.cancel();
      }
      const legacy = await get(`${ORIGIN}/queues`, {
        cookie: `tf_session=${session}; tf_token=${token}`,
      });
      assert.equal(legacy.status, 200);
      await legacy.body?.cancel();
      assert.match(legacy.headers.get("set-cookie")!, /tf_token=; Path=\/; Max-Age=0/);
      const old = newSession(token, Date.now() - SESSION_TTL_MS - 1);
      const expired = await get(`${ORIGIN}/queues`, { cookie: `tf_session=${old}` });
      assert.equal(expired.status, 401);
      assert.match(await expired.text(), /session expired/);
    });
    await withDashboard({ token, trustProxy: true }, async ({ dashboard }) => {
      const proxied = await dashboard.handler(
        new Request(`${ORIGIN}/?token=${token}`, { headers: { "x-forwarded-proto": "https" } }),
      );
      assert.match(proxied.headers.get("set-cookie")!, /; Secure/);
    });
  },
});

Deno.test({
  ...opts,
  name: "security 3: read-only refuses every write path (forms, bulk, API with a token, drain)",
  fn: async () => {
    const token = "tok-readonly-7c1d";
    let drained = 0;
    const drain = () => Promise.resolve(++drained);
    await withDashboard({ token, readOnly: true }, async ({ tf, http, form }) => {
      const id = await tf.enqueue("x", {});
      await tf.recurring.upsert("r", "* * * * *", "x", {});
      const before = await tf.counts();
      const bearer = { authorization: `Bearer ${token}` };
      const attempts = [
        await http("/api/jobs", json({ name: "x", args: 1 }, bearer)),
        await http("/api/drain", { method: "POST", headers: bearer }),
        await form(`/job/${id}`, { action: "delete" }),
        await form("/jobs/enqueued", { action: "delete", ids: [id] }),
        await form("/queues", { action: "pause", queue: "default" }),
        await form("/recurring", { action: "delete", id: "r" }),
      ];
      for (const response of attempts) {
        assert.equal(response.status, 403);
        assert.match(await response.text(), /read-only/);
      }
      assert.deepEqual(await tf.counts(), before);
      assert.equal((await tf.get(id))!.state, "Enqueued");
      assert.deepEqual(await tf.pausedQueues(), []);
      assert.ok(await tf.recurring.get("r"));
      assert.equal(drained, 0);
    }, { drain });
  },
});

/** A body of `total` bytes that counts how much the server pulled from it. */
function countingBody(total: number, chunk = 64 * 1024) {
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) return controller.close();
      counter.pulled += chunk;
      controller.enqueue(new Uint8Array(chunk).fill(0x61));
    },
  }, { highWaterMark: 0 });
  return { stream, counter, chunk };
}

Deno.test({
  ...opts,
  name: "security 4: request bodies are bounded while streaming, on every route (413)",
  fn: async () => {
    const token = "tok-bodies-3e8a";
    const total = 16 * 1024 * 1024;
    await withDashboard({ token }, async ({ tf, dashboard, http, csrf }) => {
      const id = await tf.enqueue("x", {});
      const cases: Array<[string, string, number]> = [
        [`/job/${id}`, "application/x-www-form-urlencoded", FORM_LIMIT],
        ["/jobs/enqueued", "application/x-www-form-urlencoded", FORM_LIMIT],
        ["/queues", "multipart/form-data; boundary=x", FORM_LIMIT],
        ["/api/jobs", "application/json", JSON_LIMIT],
      ];
      for (const [path, type, limit] of cases) {
        const body = countingBody(total);
        const response = await http(path, {
          method: "POST",
          body: body.stream,
          headers: { origin: ORIGIN, cookie: `tf_csrf=${csrf}`, "content-type": type },
        });
        assert.equal(response.status, 413, path);
        const text = await response.text();
        assert.match(text, new RegExp(`over the limit of ${limit} bytes`), path);
        assert.ok(
          body.counter.pulled <= limit + 2 * body.chunk,
          `${path} pulled ${body.counter.pulled}`,
        );
      }
      // A declared length over the limit is refused before anything is read.
      const declared = countingBody(total);
      const response = await http("/api/jobs", {
        method: "POST",
        body: declared.stream,
        headers: { "content-type": "application/json", "content-length": String(total) },
      });
      assert.equal(response.status, 413);
      assert.match((await response.json()).error, /Content-Length 16777216/);
      assert.ok(declared.counter.pulled <= declared.chunk);
      // Unauthenticated: refused without reading the body at all.
      const anonymous = countingBody(total);
      const refused = await dashboard.handler(
        new Request(`${ORIGIN}/api/jobs`, {
          method: "POST",
          body: anonymous.stream,
          headers: { "content-type": "application/json" },
        }),
      );
      assert.equal(refused.status, 401);
      assert.ok(anonymous.counter.pulled <= anonymous.chunk);
      assert.equal((await tf.get(id))!.state, "Enqueued");
      assert.equal((await tf.counts()).totals.created, 1);
    });
  },
});

Deno.test({
  ...opts,
  name: "security 7: only listed actions act; prototype names are 400 on the job page and in bulk",
  fn: () =>
    withDashboard({}, async ({ tf, form }) => {
      const id = await tf.enqueue("x", {});
      for (
        const action of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf", ""]
      ) {
        for (
          const response of [
            await form(`/job/${id}`, { action }),
            await form("/jobs/enqueued", { action, ids: [id] }),
          ]
        ) {
          assert.equal(response.status, 400, action);
          assert.match(await response.text(), /invalid action .*must be one of requeue, delete/);
        }
      }
      assert.equal((await tf.get(id))!.state, "Enqueued");
      assert.equal((await form(`/job/${id}`, { action: "delete" })).status, 303);
    }),
});

Deno.test({
  ...opts,
  name: "security 8: a malformed CSRF cookie is replaced, so forms work again",
  fn: () =>
    withDashboard({}, async ({ tf, http }) => {
      const id = await tf.enqueue("x", {});
      for (const bad of ["x", "%%%", "a=b=c", "not valid at all!", "é".repeat(30)]) {
        const page = await http(`/job/${id}`, { headers: { cookie: `tf_csrf=${encodeURI(bad)}` } });
        assert.equal(page.status, 200);
        const fresh = /tf_csrf=([\w-]+); Path=\/; HttpOnly; SameSite=Strict/.exec(
          page.headers.get("set-cookie") ?? "",
        )?.[1];
        assert.ok(fresh, `a new cookie replaces ${bad}`);
        assert.match(await page.text(), new RegExp(`name="_csrf" value="${fresh}"`));
      }
      // A browser may still send the stale cookie (another path) next to the new one.
      const good = "g".repeat(24);
      const both = await http(`/job/${id}`, {
        method: "POST",
        body: new URLSearchParams({ action: "delete", _csrf: good }),
        headers: { origin: ORIGIN, cookie: `tf_csrf=bad!; tf_csrf=${good}` },
      });
      assert.equal(both.status, 303);
      assert.equal((await tf.get(id))!.state, "Deleted");
    }),
});

Deno.test({
  ...opts,
  name: "security 9: loopback is decided by the resolved address; public binds need strong secrets",
  fn: async () => {
    for (
      const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]
    ) {
      assert.equal(isLoopback(host), true, host);
    }
    for (
      const host of ["0.0.0.0", "::", "127.0.0.1.example.com", "127.0.0.1.invalid", "10.0.0.1"]
    ) {
      assert.equal(isLoopback(host), false, host);
    }
    const refused = (host: string, security: Partial<SecurityConfig>, pattern: RegExp) =>
      assert.throws(() => checkBind(host, security), (error: unknown) => {
        assert.ok(error instanceof TaskFlowError);
        assert.equal(error.code, "INVALID_OPTION");
        assert.match(error.message, pattern);
        for (const secret of [security.token, security.password]) {
          if (secret && secret.length > 3) {
            assert.ok(!error.message.includes(secret), "the secret is not printed");
          }
        }
        return true;
      });
    refused("127.0.0.1.invalid", {}, /is not a loopback address \(it does not resolve/);
    refused("0.0.0.0", {}, /is not a loopback address: set TASKFLOW_DASHBOARD_PASSWORD/);
    refused("0.0.0.0", { token: "t" }, /TASKFLOW_DASHBOARD_TOKEN is 1 characters; at least 16/);
    refused(
      "0.0.0.0",
      { password: "hunter2" },
      /TASKFLOW_DASHBOARD_PASSWORD is 7 characters; at least 12/,
    );
    refused("0.0.0.0", { token: "a".repeat(32) }, /TASKFLOW_DASHBOARD_TOKEN repeats too few/);
    refused(
      "0.0.0.0",
      { token: "9f86d081884c7d659a2feaa0c55ad015", password: "short" },
      /PASSWORD is 5/,
    );
    checkBind("0.0.0.0", { token: "9f86d081884c7d659a2feaa0c55ad015" });
    checkBind("0.0.0.0", { password: "correct horse battery" });
    checkBind("127.0.0.1", { token: "t" });
    checkBind("localhost", { token: "t" });
    checkBind("0.0.0.0", { token: "t" }, true);
    const tf = await TaskFlow.open("memory:");
    try {
      assert.throws(
        () => serveDashboard({ tf, hostname: "0.0.0.0", port: 0, security: { token: "t" } }),
        /at least 16/,
      );
    } finally {
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "security 10: tokens and passwords with spaces, ; , = % + and non-ASCII log in; control characters are refused at start",
  fn: async () => {
    for (
      const token of ["a;b,c d=e%f+g", "tök€n; with, spaces", "x=y; tf_csrf=zzzzzzzzzzzzzzzzzzzzzz"]
    ) {
      await withDashboard({ token }, async ({ dashboard }) => {
        const get = (path: string, headers: Record<string, string> = {}) =>
          dashboard.handler(new Request(`${ORIGIN}${path}`, { headers, redirect: "manual" }));
        const bearer = await get("/api/stats", { authorization: `Bearer ${latin1(token)}` });
        assert.equal(bearer.status, 200, token);
        await bearer.body?.cancel();
        const login = await get(`/?token=${encodeURIComponent(token)}`);
        assert.equal(login.status, 303, token);
        assert.equal(login.headers.get("location"), "/");
        const session = /tf_session=([^;]+)/.exec(login.headers.get("set-cookie")!)![1];
        const page = await get("/queues", { cookie: `tf_session=${session}` });
        assert.equal(page.status, 200, token);
        await page.body?.cancel();
      });
    }
    const password = "pässwörd; with, spaces ✓";
    await withDashboard({ password, user: "jürgen" }, async ({ dashboard }) => {
      const bytes = new TextEncoder().encode(`jürgen:${password}`);
      const utf8 = await dashboard.handler(
        new Request(`${ORIGIN}/queues`, {
          headers: { authorization: `Basic ${btoa(String.fromCharCode(...bytes))}` },
        }),
      );
      assert.equal(utf8.status, 200);
      await utf8.body?.cancel();
      const wrong = await dashboard.handler(
        new Request(`${ORIGIN}/queues`, { headers: { authorization: "Basic %%%" } }),
      );
      assert.equal(wrong.status, 401);
      assert.match(wrong.headers.get("www-authenticate")!, /charset="UTF-8"/);
      assert.match(await wrong.text(), /basic-auth header is malformed/);
    });
    const tf = await TaskFlow.open("memory:");
    try {
      for (const token of ["bad\ntoken", "tab\there", " padded ", "del\u007f"]) {
        assert.throws(() => createDashboard({ tf, security: { token } }), (error: unknown) => {
          assert.ok(error instanceof TaskFlowError);
          assert.equal(error.code, "INVALID_OPTION");
          assert.match(
            error.message,
            /TASKFLOW_DASHBOARD_TOKEN "<\d+ characters>": has a control character/,
          );
          return true;
        });
      }
      assert.throws(
        () => createDashboard({ tf, security: { user: "a:b", password: "p" } }),
        /TASKFLOW_DASHBOARD_USER/,
      );
      // Odd cookie headers never crash a request.
      const dashboard = createDashboard({ tf, security: { token: "tok-odd-cookies" } });
      try {
        for (
          const cookie of ["tf_session=%%%; tf_csrf==;;", "=;=;tf_session", "tf_session=a.b.c"]
        ) {
          const response = await dashboard.handler(
            new Request(`${ORIGIN}/`, { headers: { cookie } }),
          );
          assert.equal(response.status, 401, cookie);
          assert.match(await response.text(), /authentication required/);
        }
      } finally {
        dashboard.close();
      }
    } finally {
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name:
    "security 11: every response carries the security headers (500, 404, 401, 413, 421, 303, API errors, static)",
  fn: () =>
    withDashboard({}, async ({ tf, http, form }) => {
      const id = await tf.enqueue("x", {});
      const broken = tf.counts.bind(tf);
      const responses: Array<[string, Response]> = [
        ["404 page", await http("/no/such/page")],
        ["404 job", await http("/job/01ARZ3NDEKTSV4RRFFQ69G5FAV")],
        ["400 API", await http("/api/jobs?state=nope")],
        ["421", await http("/", {}, "http://evil.example")],
        ["303", await form(`/job/${id}`, { action: "requeue" })],
        ["static", await http("/style.css")],
      ];
      tf.counts = () => Promise.reject(new Error("storage exploded"));
      const error = console.error;
      console.error = () => {};
      try {
        responses.push(["500 page", await http("/")]);
        responses.push(["500 API", await http("/api/stats")]);
      } finally {
        console.error = error;
        tf.counts = broken;
      }
      assert.equal(responses.at(-2)![1].status, 500);
      for (const [label, response] of responses) {
        await response.body?.cancel();
        assert.match(
          response.headers.get("content-security-policy") ?? "",
          /default-src 'self'/,
          label,
        );
        assert.equal(response.headers.get("x-frame-options"), "DENY", label);
        assert.equal(response.headers.get("x-content-type-options"), "nosniff", label);
        assert.equal(response.headers.get("referrer-policy"), "same-origin", label);
      }
    }).then(() =>
      withDashboard({ token: "tok-headers-5d2a" }, async ({ dashboard }) => {
        const response = await dashboard.handler(new Request(`${ORIGIN}/api/stats`));
        assert.equal(response.status, 401);
        assert.equal(response.headers.get("x-frame-options"), "DENY");
        await response.body?.cancel();
      })
    ),
});

Deno.test({
  ...opts,
  name: "security 12: `$` sequences in data never corrupt the page's island data block",
  fn: async () => {
    const Probe = (props: { text: string }) => h("span", null, props.text);
    registerIslands({ Probe });
    const text = "w$'x$&y$`z$$ $1 </body>";
    // Built inside a component, as pages are, so that the island is marked while rendering.
    const Page = () => h("html", null, h("body", null, h(Probe, { text }), h("p", null, "after")));
    const html = renderPage(h(Page, {}), "/islands.js");
    const data = /<script type="application\/json" id="tf-islands">(.*?)<\/script>/.exec(html)!;
    assert.deepEqual(JSON.parse(data[1]), [{ text }]);
    assert.ok(html.endsWith('<script type="module" src="/islands.js"></script></body></html>'));
    await withDashboard({}, async ({ tf, http }) => {
      const id = await tf.enqueue("x", {});
      const worker = "worker$'$&$`-1";
      await tf.storage.append([{
        commits: [claimCommit((await tf.get(id))!, Date.now(), worker)],
      }]);
      const page = await (await http("/")).text();
      const block = /<script type="application\/json" id="tf-islands">(.*?)<\/script>/s.exec(page)!;
      const props = JSON.parse(block[1]) as Array<
        { initial?: { processing?: Array<{ serverId?: string }> } }
      >;
      assert.ok(props.some((p) => p.initial?.processing?.some((j) => j.serverId === worker)));
      assert.equal(page.match(/id="tf-islands"/g)!.length, 1);
    });
  },
});

Deno.test({
  ...opts,
  name:
    "security 18: refusals name their real cause; the README's curl works against a default start",
  fn: async () => {
    // The README: TASKFLOW_DASHBOARD_TOKEN=s3cret deno task start, then this curl (its headers).
    await withDashboard({ token: "s3cret" }, async ({ tf, dashboard }) => {
      const curl = (headers: Record<string, string>) =>
        dashboard.handler(
          new Request("http://127.0.0.1:8000/api/jobs", {
            method: "POST",
            headers: { accept: "*/*", "user-agent": "curl/8.5.0", ...headers },
            body: '{"name":"demo.sleep","args":{"ms":2000}}',
          }),
        );
      const created = await curl({
        authorization: "Bearer s3cret",
        "content-type": "application/json",
      });
      assert.equal(created.status, 201);
      const { id } = await created.json();
      assert.deepEqual((await tf.get(id))!.args, { ms: 2000 });
      const missing = await curl({ "content-type": "application/json" });
      assert.equal(missing.status, 401);
      const message = (await missing.json()).error;
      assert.match(message, /no credentials were sent; send `Authorization: Bearer/);
      assert.doesNotMatch(message, /cross-origin/);
      const wrong = await curl({
        authorization: "Bearer nope",
        "content-type": "application/json",
      });
      assert.match(
        (await wrong.json()).error,
        /Bearer token does not match TASKFLOW_DASHBOARD_TOKEN/,
      );
    });
    // No token on loopback: a script (no Origin) may enqueue, as Sidekiq's local dashboard allows;
    // browsers stay behind the origin and CSRF checks.
    await withDashboard({}, async ({ tf, http }) => {
      const created = await http("/api/jobs", json({ name: "demo.sleep", args: { ms: 1 } }));
      assert.equal(created.status, 201);
      const crossSite = await http(
        "/api/jobs",
        json({ name: "x", args: 1 }, { origin: "http://evil.example" }),
      );
      assert.equal(crossSite.status, 403);
      assert.match(
        (await crossSite.json()).error,
        /cross-origin request refused: Origin http:\/\/evil\.example is not this dashboard's http:\/\/127\.0\.0\.1:8000/,
      );
      const simpleForm = await http("/api/jobs", {
        method: "POST",
        body: new URLSearchParams({ name: "x" }),
      });
      assert.equal(simpleForm.status, 415);
      assert.match(
        (await simpleForm.json()).error,
        /without an Origin header must send application\/json/,
      );
      const id = await tf.enqueue("x", {});
      const noOrigin = await http(`/job/${id}`, {
        method: "POST",
        body: new URLSearchParams({ action: "delete" }),
      });
      assert.equal(noOrigin.status, 403);
      const text = await noOrigin.text();
      assert.match(text, /no Origin or Referer header/);
      assert.doesNotMatch(text, /cross-origin/);
      assert.equal((await tf.get(id))!.state, "Enqueued");
      assert.equal((await tf.counts()).totals.created, 2);
    });
  },
});
