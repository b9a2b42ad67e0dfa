/**
 * @module
 * Issue 23's overhead figures: processing at c=50 with `npm:@opentelemetry/api` and no SDK
 * (TaskFlow then skips its spans), and with the SDK in memory (every attempt a recorded span
 * under its enqueue's span, batched to an in-memory exporter; every metric aggregated),
 * alternating in fresh processes.
 */

import { context, metrics, trace } from "npm:@opentelemetry/api@1.10.0";
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  TracerProvider,
} from "npm:@opentelemetry/sdk-trace@3.1.1";
import { MeterProvider, MetricReader } from "npm:@opentelemetry/sdk-metrics@3.1.1";
import { AsyncLocalStorageContextManager } from "npm:@opentelemetry/context-async-hooks@3.1.1";
import { type Backend, type Figure, processing } from "./scenarios.ts";

/** A reader nobody collects: the SDK aggregates every measurement, as it would between exports. */
class IdleReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** `n` no-op jobs at c=50, with (`sdk`) or without an OpenTelemetry SDK registered. */
export async function processingTraced(backend: Backend, sdk: boolean, n: number): Promise<Figure> {
  if (!sdk) return await processing(backend, 50, n);
  const exporter = new InMemorySpanExporter();
  // Batched, as an SDK is set up in production (a span exported alone costs ~4× as much).
  const processor = new BatchSpanProcessor({ exporter, maxQueueSize: 65_536 });
  const tracing = new TracerProvider({ spanProcessors: [processor] });
  const meters = new MeterProvider({ readers: [new IdleReader()] });
  trace.setGlobalTracerProvider(tracing);
  metrics.setGlobalMeterProvider(meters);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  try {
    const figure = await processing(backend, 50, n);
    await tracing.forceFlush();
    const spans = exporter.getFinishedSpans().length;
    if (spans < n) throw new Error(`only ${spans} spans for ${n} jobs: the SDK was not used`);
    return { ...figure, extra: { ...figure.extra, spans } };
  } finally {
    trace.disable();
    metrics.disable();
    context.disable();
    await tracing.shutdown();
    await meters.shutdown();
  }
}
