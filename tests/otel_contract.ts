/**
 * @module
 * Telemetry cases run by `runWorkerSuite` on every backend: the W3C trace context stored in a
 * job's created event round-trips through storage (also once the job is finished), each attempt
 * runs in a CONSUMER span opened from it, and the worker's metrics record what happened. The
 * OpenTelemetry SDK is installed in memory for each case (see otel_helpers.ts).
 */

import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "npm:@opentelemetry/api@1.10.0";
import { DiscardError } from "../storage/errors.ts";
import { defineJob } from "../lib/job.ts";
import type { CreatedEvent } from "../lib/events.ts";
import { METRIC_NAMES } from "../lib/telemetry/metrics.ts";
import { eventually } from "./helpers.ts";
import { installSdk, traceparentOf } from "./otel_helpers.ts";
import type { Harness } from "./worker_suite.ts";

type Case = (title: string, fn: (h: Harness) => Promise<void>) => void;

/** An error with a code, as a handler's own errors often carry. */
class FlakyError extends Error {
  readonly code = "E_FLAKY";
}

/** Registers the telemetry worker cases with the worker suite's `test`. */
export function otelWorkerCases(test: Case): void {
  test("telemetry: no active span stores no trace context", async (h) => {
    const plain = defineJob("otel.plain", () => "ok");
    const id = await h.tf.enqueue(plain, {});
    const [created] = await h.tf.events(id);
    assert.equal("traceparent" in created, false);
    assert.equal("traceparent" in (await h.tf.get(id))!, false);
    await h.worker([plain]);
    await h.waitFor(id, "Succeeded");
    assert.equal("traceparent" in (await h.tf.events(id))[0], false);
  });

  test(
    "telemetry: attempts run in CONSUMER spans under the enqueue's PRODUCER span, retries in " +
      "the same trace, errors recorded with their code, the context round-trips",
    async (h) => {
      const sdk = installSdk();
      try {
        let childId: string | undefined;
        const traced = defineJob("otel.traced", async (_: unknown, ctx) => {
          if (ctx.attempt === 1) throw new FlakyError("flaky once");
          childId = await h.tf.enqueue("otel.child", { from: ctx.jobId });
          return "ok";
        }, { attempts: 3, backoff: { type: "fixed", delayMs: 1_000 } });
        const id = await h.tf.enqueue(traced, { n: 1 });
        const producer = sdk.spans().find((s) => s.name === "enqueue otel.traced")!;
        assert.equal(producer.kind, SpanKind.PRODUCER);
        assert.equal(producer.attributes["messaging.message.id"], id);
        const created = (await h.tf.events(id))[0] as CreatedEvent;
        assert.equal(created.traceparent, traceparentOf(producer));
        assert.equal(created.tracestate, undefined);
        await h.worker([traced]);
        await h.waitFor(id, "Scheduled");
        h.clock.advance(1_000);
        await h.waitFor(id, "Succeeded");
        const attempts = await eventually(() => {
          const found = sdk.spans().filter((s) => s.name === "process otel.traced");
          assert.equal(found.length, 2);
          return found;
        });
        for (const [i, span] of attempts.entries()) {
          assert.equal(span.kind, SpanKind.CONSUMER);
          assert.equal(span.spanContext().traceId, producer.spanContext().traceId);
          assert.equal(span.parentSpanContext?.spanId, producer.spanContext().spanId);
          assert.equal(span.attributes["messaging.system"], "taskflow");
          assert.equal(span.attributes["messaging.message.id"], id);
          assert.equal(span.attributes["messaging.destination.name"], "default");
          assert.equal(span.attributes["taskflow.job.attempt"], i + 1);
        }
        const [failed, succeeded] = attempts;
        assert.equal(failed.attributes["taskflow.job.outcome"], "retried");
        assert.equal(failed.attributes["error.type"], "E_FLAKY");
        assert.equal(failed.status.code, SpanStatusCode.ERROR);
        assert.equal(failed.status.message, "flaky once");
        assert.equal(failed.events[0]?.name, "exception");
        assert.equal(succeeded.attributes["taskflow.job.outcome"], "succeeded");
        assert.notEqual(succeeded.status.code, SpanStatusCode.ERROR);
        // A job created by the handler continues the trace, under the attempt's span.
        const child = (await h.tf.events(childId!))[0] as CreatedEvent;
        const send = sdk.spans().find((s) => s.name === "enqueue otel.child")!;
        assert.equal(send.parentSpanContext?.spanId, succeeded.spanContext().spanId);
        assert.equal(child.traceparent, traceparentOf(send));
        // Stored finished (Redis collapses a finished job's log), the context is intact.
        assert.equal(((await h.tf.events(id))[0] as CreatedEvent).traceparent, created.traceparent);
        assert.equal((await h.tf.get(id))!.traceparent, created.traceparent);
      } finally {
        await sdk.uninstall();
      }
    },
  );

  test("telemetry: a continuation created outside any span joins its parent's trace", async (h) => {
    const sdk = installSdk();
    try {
      const parentId = await h.tf.enqueue("otel.parent", {});
      const childId = await h.tf.continueWith(parentId, "otel.after", {});
      const [send, after] = ["enqueue otel.parent", "continueWith otel.after"].map((name) =>
        sdk.spans().find((s) => s.name === name)!
      );
      assert.equal(after.spanContext().traceId, send.spanContext().traceId);
      assert.equal(after.parentSpanContext?.spanId, send.spanContext().spanId);
      const created = (await h.tf.events(childId))[0] as CreatedEvent;
      assert.equal(created.traceparent, traceparentOf(after));
    } finally {
      await sdk.uninstall();
    }
  });

  test("telemetry: with traceContext link an attempt is a root span linked to its creator", async (h) => {
    const sdk = installSdk();
    try {
      const linked = defineJob("otel.linked", () => {
        throw new DiscardError("not wanted");
      });
      const ids = await h.tf.enqueueMany([{ job: linked, args: 1 }, { job: linked, args: 2 }]);
      const producer = sdk.spans().find((s) => s.name === "enqueueMany otel.linked")!;
      assert.equal(producer.attributes["messaging.batch.message_count"], 2);
      await h.worker([linked], { traceContext: "link" });
      for (const id of ids) await h.waitFor(id, "Failed");
      const spans = await eventually(() => {
        const found = sdk.spans().filter((s) => s.name === "process otel.linked");
        assert.equal(found.length, 2);
        return found;
      });
      for (const span of spans) {
        assert.equal(span.parentSpanContext, undefined);
        assert.notEqual(span.spanContext().traceId, producer.spanContext().traceId);
        assert.equal(span.links.length, 1);
        assert.equal(span.links[0].context.spanId, producer.spanContext().spanId);
        assert.equal(span.attributes["taskflow.job.outcome"], "discarded");
        assert.equal(span.attributes["error.type"], "JOB_DISCARDED");
      }
    } finally {
      await sdk.uninstall();
    }
  });

  test("telemetry: the worker records wait, duration, outcomes and in-flight metrics", async (h) => {
    const sdk = installSdk();
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => release = resolve);
      const measured = defineJob("otel.measured", async (args: { fail?: boolean }) => {
        await gate;
        if (args.fail) throw new DiscardError("no");
        return "ok";
      }, { queue: "metered" });
      const ok = await h.tf.enqueue(measured, {});
      const bad = await h.tf.enqueue(measured, { fail: true });
      h.clock.advance(2_000); // both have waited 2 s when claimed
      const worker = await h.worker([measured], { queues: ["metered"] });
      const inFlight = (await eventually(async () => {
        const points = await sdk.points(METRIC_NAMES.inFlight);
        assert.equal(points[0]?.value, 2);
        return points;
      }))[0];
      assert.equal(inFlight.attributes["taskflow.worker.id"], worker.id);
      release();
      await h.waitFor(ok, "Succeeded");
      await h.waitFor(bad, "Failed");
      const outcomes = await eventually(async () => {
        const points = await sdk.points(METRIC_NAMES.outcomes);
        assert.equal(points.length, 2);
        return points;
      });
      const byOutcome = Object.fromEntries(
        outcomes.map((p) => [p.attributes["taskflow.job.outcome"], p]),
      );
      assert.equal(byOutcome.succeeded.value, 1);
      assert.equal(byOutcome.discarded.value, 1);
      assert.equal(byOutcome.succeeded.attributes["taskflow.job.name"], "otel.measured");
      assert.equal((await sdk.points(METRIC_NAMES.inFlight))[0].value, 0);
      const [wait] = await sdk.points(METRIC_NAMES.wait);
      const waited = wait.value as { count: number; min: number };
      assert.equal(wait.attributes["messaging.destination.name"], "metered");
      assert.equal(waited.count, 2);
      assert.equal(waited.min, 2, "seconds from enqueue to start, on the worker's clock");
      const durations = await sdk.points(METRIC_NAMES.duration);
      assert.equal(durations.length, 2);
      for (const point of durations) assert.equal((point.value as { count: number }).count, 1);
    } finally {
      await sdk.uninstall();
    }
  });

  test("telemetry: pruned jobs and a rate limit's decisions are counted", async (h) => {
    const sdk = installSdk();
    try {
      const quick = defineJob("otel.quick", () => "ok", { queue: "limited" });
      await h.tf.queues.configure("limited", { rateLimit: { max: 2, perMs: 60_000 } });
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await h.tf.enqueue(quick, { i }));
      await h.worker([quick], {
        queues: ["limited"],
        pruneIntervalMs: 50,
        retention: { succeeded: { maxAgeMs: 0 } },
      });
      const decisions = await eventually(async () => {
        const points = await sdk.points(METRIC_NAMES.limiter);
        const admitted = points.find((p) =>
          p.attributes["taskflow.limiter.decision"] === "admitted"
        );
        const refused = points.find((p) => p.attributes["taskflow.limiter.decision"] === "refused");
        assert.equal(admitted?.value, 2, "two starts in the window");
        assert.ok((refused?.value as number) >= 1, "the third waits");
        return [admitted!, refused!];
      });
      for (const point of decisions) {
        assert.equal(point.attributes["messaging.destination.name"], "limited");
      }
      const [pruned] = await eventually(async () => {
        const points = await sdk.points(METRIC_NAMES.pruned);
        assert.equal(points[0]?.value, 2, "both succeeded jobs pruned");
        return points;
      });
      assert.equal(pruned.attributes["taskflow.job.state"], "succeeded");
      assert.equal((await h.tf.get(ids[2]))?.state, "Enqueued");
    } finally {
      await sdk.uninstall();
    }
  });
}
