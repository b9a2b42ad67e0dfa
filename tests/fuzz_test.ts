/**
 * @module
 * Seeded fuzzing: random event sequences through the transition function, and random requests
 * at the dashboard and API. No crash, no 500, and the invariants hold afterwards.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { createDashboard } from "../lib/dashboard/app.ts";
import { InvalidTransitionError, TaskFlowError } from "../storage/errors.ts";
import type { JobEvent } from "../lib/events.ts";
import { create, fold, project } from "../lib/projection.ts";
import { canTransition, STATES } from "../lib/states.ts";
import { assertConsistent, seeded } from "./helpers.ts";

Deno.test("fuzz: random events through project() either apply by the table or throw typed errors", () => {
  const random = seeded(99);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  for (let round = 0; round < 2_000; round++) {
    const events: JobEvent[] = [
      {
        type: "created",
        seq: 1,
        at: 0,
        name: "f",
        queue: "q",
        args: round,
        priority: 0,
        options: {},
      },
    ];
    let record = create("j", events[0]);
    let state: string | null = null;
    for (let step = 2; step < 12; step++) {
      const kind = random();
      const seq = random() < 0.05 ? step + 1 : step; // sometimes out of order
      const event: JobEvent = kind < 0.7
        ? {
          type: "state",
          seq,
          at: step,
          state: pick(STATES),
          data: random() < 0.3 ? { durationMs: step } : undefined,
        }
        : kind < 0.85
        ? { type: "progress", seq, at: step, value: Math.floor(random() * 100) }
        : { type: "log", seq, at: step, message: `m${step}` };
      try {
        record = project(record, event);
        if (event.type === "state") {
          assert.ok(
            canTransition(state as never, event.state),
            `${state} → ${event.state} applied`,
          );
          state = event.state;
        }
        events.push(event);
      } catch (error) {
        assert.ok(error instanceof TaskFlowError, `untyped error: ${error}`);
        if (error instanceof InvalidTransitionError) {
          assert.ok(event.type === "state" && !canTransition(state as never, event.state));
        }
        if (seq !== step) break; // a gap ends the sequence, as it would in storage
      }
    }
    if (events.length > 1) assert.deepEqual(fold("j", events), record);
  }
});

Deno.test({
  name: "fuzz: random requests never get a 500 and leave storage consistent",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const random = seeded(2026);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const tf = await TaskFlow.open("memory:");
    const dashboard = createDashboard({ tf, security: { token: "fuzz" } });
    try {
      const first = await dashboard.handler(
        new Request("http://127.0.0.1/queues", { headers: { authorization: "Bearer fuzz" } }),
      );
      await first.body?.cancel();
      const csrf = /tf_csrf=([^;]+)/.exec(first.headers.get("set-cookie") ?? "")![1];
      const ids = await tf.enqueueMany(
        Array.from({ length: 20 }, (_, i) => ({ job: "fz", args: i })),
      );
      const junk = [
        "",
        "%",
        "%00",
        "..",
        "<b>",
        "' OR 1=1",
        "\u{1F600}",
        "9".repeat(40),
        "-1",
        "null",
        "[]",
        "{}",
      ];
      const paths = [
        "/",
        "/jobs/",
        "/job/",
        "/queues",
        "/retries",
        "/recurring",
        "/servers",
        "/search",
        "/metrics",
        "/api/stats",
        "/api/jobs",
        "/api/jobs/",
        "/api/servers",
        "/api/recurring",
        "/static/",
        "/_frsh/",
      ];
      const statuses = new Map<number, number>();
      for (let i = 0; i < 600; i++) {
        const base = pick(paths);
        const tail = random() < 0.5
          ? pick([...ids, ...junk])
          : pick(["enqueued", "failed", "deleted", ...junk]);
        const query = random() < 0.5
          ? `?${pick(["limit", "page", "cursor", "state", "queue", "q", "done"])}=${
            encodeURIComponent(pick(junk))
          }`
          : "";
        const url = `http://127.0.0.1${base}${
          base.endsWith("/") ? encodeURIComponent(tail) : ""
        }${query}`;
        const post = random() < 0.4;
        const body = post
          ? (random() < 0.5
            ? new URLSearchParams({
              action: pick(["requeue", "delete", ...junk]),
              _csrf: csrf,
              ids: pick(ids),
              id: pick(junk),
              queue: pick(junk),
            })
            : pick(junk))
          : undefined;
        const headers: Record<string, string> = {
          authorization: random() < 0.9 ? "Bearer fuzz" : pick(["Bearer nope", "Basic !!", ""]),
          origin: random() < 0.9 ? "http://127.0.0.1" : "http://elsewhere",
          cookie: `tf_csrf=${csrf}`,
        };
        if (post && typeof body === "string") {
          headers["content-type"] = pick(["application/json", "text/plain"]);
        }
        const response = await dashboard.handler(
          new Request(url, { method: post ? "POST" : "GET", body, headers }),
        );
        const text = response.headers.get("content-type")?.includes("event-stream")
          ? ""
          : await response.text();
        if (response.headers.get("content-type")?.includes("event-stream")) {
          await response.body?.cancel();
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(
          response.status < 500,
          `${post ? "POST" : "GET"} ${url} → ${response.status}: ${text.slice(0, 300)}`,
        );
        assert.doesNotMatch(text, /<b>|\.ts:\d+:\d+/, `${url} echoes markup or a stack`);
      }
      assert.ok(
        (statuses.get(200) ?? 0) > 50 && (statuses.get(404) ?? 0) > 10 &&
          (statuses.get(400) ?? 0) > 10,
        JSON.stringify([...statuses]),
      );
      await assertConsistent(tf.storage);
    } finally {
      dashboard.close();
      await tf.close();
    }
  },
});
