/**
 * @module
 * The OpenTelemetry SDK in memory for tests: a tracer provider whose spans land in an
 * in-memory exporter, a meter provider read on demand, and async context across awaits.
 * Installed as the API's global providers for one test, removed again after it.
 */

import { context, metrics, trace } from "npm:@opentelemetry/api@1.10.0";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "npm:@opentelemetry/sdk-trace@3.1.1";
import { type DataPoint, MeterProvider, MetricReader } from "npm:@opentelemetry/sdk-metrics@3.1.1";
import { AsyncLocalStorageContextManager } from "npm:@opentelemetry/context-async-hooks@3.1.1";

/** A metric reader collected by the test itself. */
class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The SDK installed for a test. */
export interface TestSdk {
  /** Spans ended so far. */
  spans(): ReadableSpan[];
  /** The data points of metric `name` collected now (empty when it recorded nothing). */
  points(name: string): Promise<DataPoint<unknown>[]>;
  /** Removes the SDK: the API is a no-op again. */
  uninstall(): Promise<void>;
}

/** Installs the in-memory SDK as the global tracer, meter and context providers. */
export function installSdk(): TestSdk {
  const exporter = new InMemorySpanExporter();
  const tracing = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new TestReader();
  const meters = new MeterProvider({ readers: [reader] });
  const manager = new AsyncLocalStorageContextManager().enable();
  if (
    !trace.setGlobalTracerProvider(tracing) || !metrics.setGlobalMeterProvider(meters) ||
    !context.setGlobalContextManager(manager)
  ) throw new Error("another OpenTelemetry SDK is registered already");
  return {
    spans: () => exporter.getFinishedSpans(),
    async points(name) {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics)
        .filter((metric) => metric.descriptor.name === name)
        .flatMap((metric) => metric.dataPoints as DataPoint<unknown>[]);
    },
    async uninstall() {
      trace.disable();
      metrics.disable();
      context.disable();
      await tracing.shutdown();
      await meters.shutdown();
    },
  };
}

/** The `traceparent` naming a span. */
export function traceparentOf(span: ReadableSpan): string {
  const { traceId, spanId } = span.spanContext();
  return `00-${traceId}-${spanId}-01`;
}
