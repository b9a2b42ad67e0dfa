/**
 * @module
 * Workflows on the dashboard: the job page draws the job's dependency graph (its dependencies
 * and dependents, coloured by state, as SVG rendered on the server); the Flows page lists
 * flows with their progress, linked from the navigation.
 */

import assert from "node:assert/strict";
import { appendCommit, withContinuations } from "../lib/changes.ts";
import { dashboardSetup } from "./dashboard_helpers.ts";
import { claimCommit } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  ...opts,
  name: "job page: draws the dependency graph (dependencies left, dependents right, by state)",
  fn: async () => {
    const { tf, clock, get, close } = await dashboardSetup();
    try {
      const a = await tf.enqueue("fetch.a", {});
      const b = await tf.enqueue("fetch.b", {});
      const d = await tf.enqueue("report", {}, { dependsOn: [a, b] });
      const e = await tf.enqueue("mail", {}, { dependsOn: [d] });
      const claim = claimCommit((await tf.get(a))!, clock.t);
      await tf.storage.append([{ commits: [claim] }]);
      const done = appendCommit(claim.record, [{ type: "state", at: clock.t, state: "Succeeded" }]);
      await tf.storage.append([await withContinuations(tf.storage, done, clock.t)]);
      const page = (await get(`/job/${d}`)).text;
      assert.match(page, /<section class="dependency-graph" data-graph="true">/);
      assert.match(page, /<svg[^>]*role="img"/);
      const node = (id: string, state: string) =>
        new RegExp(
          `<g class="node ${state.toLowerCase()}[^"]*" data-node="${id}" data-state="${state}">`,
        );
      assert.match(page, node(a, "Succeeded"));
      assert.match(page, node(b, "Enqueued"));
      assert.match(page, new RegExp(`<g class="node awaiting current" data-node="${d}"`));
      assert.match(page, node(e, "Awaiting"));
      for (const edge of [`${a} ${d}`, `${b} ${d}`, `${d} ${e}`]) {
        assert.match(page, new RegExp(`data-edge="${edge}"`));
      }
      assert.match(page, new RegExp(`href="/job/${e}"`));
      // Two columns left of the last one: a is a dependency of a dependency of e.
      assert.match((await get(`/job/${e}`)).text, node(a, "Succeeded"));
      const plain = await tf.enqueue("plain", {});
      assert.doesNotMatch((await get(`/job/${plain}`)).text, /data-graph/);
    } finally {
      close();
      await tf.close();
    }
  },
});

Deno.test({
  ...opts,
  name: "flows page: lists flows with progress and their root's state; the nav links it",
  fn: async () => {
    const { tf, get, close } = await dashboardSetup();
    try {
      assert.match((await get("/flows")).text, /No flow yet\./);
      const flow = await tf.flow({
        job: "report.build",
        args: {},
        children: [{ job: "fetch", args: 1 }, { job: "fetch", args: 2 }],
      });
      await tf.delete(flow.children[0].id);
      const page = await get("/flows");
      assert.equal(page.status, 200);
      assert.match(page.text, /<a href="\/flows" class="active">Flows<\/a>/);
      assert.match(page.text, new RegExp(`<tr data-flow="${flow.id}">`));
      assert.match(page.text, new RegExp(`href="/job/${flow.id}"`));
      assert.match(page.text, /report\.build/);
      // The root fails with its deleted child (the default policy): 2 of 3 nodes done.
      assert.match(page.text, /<span class="state failed">Failed<\/span>/);
      assert.match(page.text, /<progress max="3" value="2">67%<\/progress> 2 \/ 3/);
      assert.match(page.text, /\(2 failed or deleted\)/);
      assert.match((await get("/")).text, /<a href="\/flows">Flows<\/a>/);
    } finally {
      close();
      await tf.close();
    }
  },
});
