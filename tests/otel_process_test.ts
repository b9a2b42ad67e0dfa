/**
 * @module
 * Deno's built-in OpenTelemetry (`OTEL_DENO=true`) picks up TaskFlow's spans and metrics made
 * through `npm:@opentelemetry/api`: a worker process exports them over OTLP/HTTP (JSON) to a
 * small receiver this test serves on 127.0.0.1, and the job's spans are found there.
 */

import assert from "node:assert/strict";

const fixture = new URL("./fixtures/otel_worker.ts", import.meta.url).pathname;

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}

/** The value of attribute `key` (any OTLP value kind), or undefined. */
function attribute(span: OtlpSpan, key: string): unknown {
  const found = span.attributes.find((a) => a.key === key)?.value;
  return found && Object.values(found)[0];
}

Deno.test({
  name: "OTEL_DENO=true exports a worker's producer and attempt spans and its metrics over OTLP",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const received: { path: string; body: any }[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        received.push({ path: new URL(request.url).pathname, body: await request.json() });
        return Response.json({});
      },
    );
    try {
      const { port } = server.addr;
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", fixture],
        env: {
          NO_COLOR: "1",
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_SERVICE_NAME: "taskflow-otel-test",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(output.stdout);
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      const { id, bad } = JSON.parse(stdout.trim().split("\n").at(-1)!);
      const spans: OtlpSpan[] = received.filter((r) => r.path === "/v1/traces")
        .flatMap((r) => r.body.resourceSpans)
        .flatMap((rs: any) => rs.scopeSpans)
        .filter((ss: any) => ss.scope?.name === "taskflow")
        .flatMap((ss: any) => ss.spans);
      const attempt = spans.find((s) =>
        s.name === "process otel.export" && attribute(s, "messaging.message.id") === id
      );
      assert.ok(attempt, `the attempt's span, among ${spans.map((s) => s.name).join(", ")}`);
      const producer = spans.find((s) => s.name === "enqueue otel.export")!;
      assert.equal(producer.kind, 4, "SPAN_KIND_PRODUCER");
      assert.equal(attempt.kind, 5, "SPAN_KIND_CONSUMER");
      assert.equal(attempt.traceId, producer.traceId);
      assert.equal(attempt.parentSpanId, producer.spanId);
      assert.equal(attribute(attempt, "messaging.system"), "taskflow");
      assert.equal(attribute(attempt, "taskflow.job.outcome"), "succeeded");
      const refused = spans.find((s) =>
        attribute(s, "messaging.message.id") === bad && s.kind === 5
      )!;
      assert.equal(refused.status?.code, 2, "STATUS_CODE_ERROR");
      assert.equal(attribute(refused, "error.type"), "JOB_DISCARDED");
      const metricNames = received.filter((r) => r.path === "/v1/metrics")
        .flatMap((r) => r.body.resourceMetrics)
        .flatMap((rm: any) => rm.scopeMetrics)
        .flatMap((sm: any) => sm.metrics.map((m: any) => m.name));
      for (const name of ["taskflow.job.duration", "taskflow.job.outcomes", "taskflow.job.wait"]) {
        assert.ok(metricNames.includes(name), `${name} among ${metricNames.join(", ")}`);
      }
    } finally {
      await server.shutdown();
    }
  },
});
