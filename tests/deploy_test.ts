/**
 * @module
 * Deno Deploy mode, simulated here: main.ts runs with no write permission at all, on an
 * in-memory KV without queues; jobs arrive over the API and run when the drain is triggered, and
 * the dashboard answers from the island bundle built ahead of time.
 */

import assert from "node:assert/strict";
import { eventually } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const TOKEN = "deploy-token";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test({
  name: "deploy mode: no file writes, no KV queue, jobs run by the drain, dashboard answers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "build"],
      cwd: root,
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-net",
        "--allow-env",
        "--allow-sys",
        "--deny-write",
        "--unstable-kv",
        "--unstable-cron",
        "--unstable-bundle",
        "main.ts",
        "start",
        "--deploy",
        "--storage",
        "kv::memory:",
        "--port",
        String(port),
      ],
      cwd: root,
      env: { TASKFLOW_DASHBOARD_TOKEN: TOKEN, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      await eventually(async () => {
        const response = await fetch(`${base}/api/stats`, { headers: auth });
        await response.body?.cancel();
        assert.equal(response.status, 200);
      }, 20_000);
      const ids: string[] = [];
      for (
        const body of [
          { name: "demo.noop", args: null },
          { name: "demo.noop", args: { n: 2 } },
          { name: "demo.progress", args: { steps: 2, stepMs: 10 } },
          { name: "demo.noop", args: null, options: { delayMs: 0 } },
        ]
      ) {
        const response = await fetch(`${base}/api/jobs`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        assert.equal(response.status, 201);
        ids.push((await response.json()).id);
      }
      const drained = await fetch(`${base}/api/drain`, { method: "POST", headers: auth });
      assert.equal(drained.status, 200);
      const result = await drained.json();
      assert.equal(result.ran, 4);
      assert.equal(result.stopped, "idle");
      for (const id of ids) {
        const { job } = await (await fetch(`${base}/api/jobs/${id}`, { headers: auth })).json();
        assert.equal(job.state, "Succeeded", JSON.stringify(job));
      }
      const page = await fetch(`${base}/`, { headers: auth });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /data-tf-island="LiveCounters"/);
      const bundle = await fetch(`${base}/_frsh/islands.js`, { headers: auth });
      assert.equal(bundle.status, 200);
      assert.ok((await bundle.text()).length > 5_000);
    } finally {
      child.kill("SIGTERM");
      const output = await child.output();
      const text = new TextDecoder().decode(output.stdout) +
        new TextDecoder().decode(output.stderr);
      assert.doesNotMatch(text, /NotCapable|PermissionDenied|Requires write access/, text);
    }
  },
});
