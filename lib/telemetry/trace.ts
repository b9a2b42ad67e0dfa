/**
 * @module
 * Traces through `npm:@opentelemetry/api`: a PRODUCER span around each create call, the W3C
 * trace context of the active span stored in each new job's created event, and a CONSUMER span
 * around each attempt opened from it. Without a registered SDK every call here is a no-op.
 */

import {
  type Attributes,
  type Context,
  context,
  createTraceState,
  INVALID_SPANID,
  INVALID_TRACEID,
  type Link,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
  type TracerProvider,
} from "npm:@opentelemetry/api@1.10.0";
import type { JobRecord } from "../job.ts";
import { VERSION } from "../version.ts";
import { Memo } from "./memo.ts";

/** The instrumentation scope name of TaskFlow's spans and metrics. */
export const SCOPE = "taskflow";

/** How an attempt's span refers to the span that created its job. */
export type TraceLink = "parent" | "link";

/** The trace fields of a created event. */
export interface TraceFields {
  /** W3C `traceparent` of the creating span. */
  traceparent: string;
  /** W3C `tracestate`, when not empty. */
  tracestate?: string;
}

let cached: { provider: TracerProvider; tracer: Tracer } | undefined;
/** The API's no-op provider: what a global proxy delegates to while no SDK is registered. */
const NO_SDK = new ProxyTracerProvider().getDelegate();

/**
 * TaskFlow's tracer on the global provider, or undefined while no SDK is registered (then
 * nothing is traced, and the attempt path skips even the no-op spans). Made again when the
 * provider changed (after `trace.disable()` a new global proxy replaces the cached one's).
 */
export function tracerOf(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider && provider.getDelegate() === NO_SDK) return;
  if (cached?.provider !== provider) {
    cached = { provider, tracer: provider.getTracer(SCOPE, VERSION) };
  }
  return cached.tracer;
}

/**
 * The trace context of the span active now, as the fields a created event stores; undefined
 * when no span is active or its context is invalid (no SDK), so nothing is stored then.
 */
export function activeTrace(): TraceFields | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
  const fields: TraceFields = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
  const state = sc.traceState?.serialize();
  if (state) fields.tracestate = state;
  return fields;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote span context a stored `traceparent` names, or undefined when it is not one. */
export function parseTraceparent(
  traceparent: string,
  tracestate?: string,
): SpanContext | undefined {
  const match = TRACEPARENT.exec(traceparent);
  // The pattern checked the hex digits: what is left of a valid context is not all zeros.
  if (!match || match[1] === "ff" || match[2] === INVALID_TRACEID) return undefined;
  if (match[3] === INVALID_SPANID) return undefined;
  const sc: SpanContext = {
    traceId: match[2],
    spanId: match[3],
    traceFlags: parseInt(match[4], 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (tracestate) sc.traceState = createTraceState(tracestate);
  return sc;
}

/** A job's stored trace context, parsed, with the context a child span of it starts in. */
interface Origin {
  traceparent: string;
  tracestate?: string;
  context: SpanContext;
  parent: Context;
}

// The jobs of one enqueueMany share their creator's context, as retries of a job share theirs:
// the last one parsed is kept (a context is immutable, so reusing it is safe).
let lastOrigin: Origin | undefined;

function originOf(record: JobRecord): Origin | undefined {
  const { traceparent, tracestate } = record;
  if (traceparent === undefined) return undefined;
  if (lastOrigin?.traceparent === traceparent && lastOrigin.tracestate === tracestate) {
    return lastOrigin;
  }
  const context = parseTraceparent(traceparent, tracestate);
  if (!context) return undefined;
  const parent = trace.setSpanContext(ROOT_CONTEXT, context);
  return lastOrigin = { traceparent, tracestate, context, parent };
}

/**
 * Runs `fn` inside a PRODUCER span `<operation> <name>` (its context active, so the jobs
 * created record it), ending it with `fn`'s outcome; `done` adds attributes from the result.
 */
export async function producing<T>(
  operation: string,
  name: string,
  fn: () => Promise<T>,
  done?: (span: Span, result: T) => void,
): Promise<T> {
  const tracer = tracerOf();
  if (!tracer) return await fn();
  const span = tracer.startSpan(`${operation} ${name}`, {
    kind: SpanKind.PRODUCER,
    attributes: {
      "messaging.system": SCOPE,
      "messaging.operation.name": operation,
      "messaging.operation.type": "send",
      "taskflow.job.name": name,
    },
  });
  try {
    const result = await context.with(trace.setSpan(context.active(), span), fn);
    if (span.isRecording()) done?.(span, result);
    return result;
  } catch (error) {
    failSpan(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs `fn` in the trace of a job (`read` reads it) when tracing is on and no span is active:
 * a continuation created by a caller that traces nothing joins its parent's trace.
 */
export async function inJobTrace<T>(
  read: () => Promise<JobRecord | null>,
  fn: () => Promise<T>,
): Promise<T> {
  if (!tracerOf() || trace.getActiveSpan()) return await fn();
  const record = await read();
  const origin = record?.traceparent === undefined
    ? undefined
    : parseTraceparent(record.traceparent, record.tracestate);
  if (!origin) return await fn();
  return await context.with(trace.setSpanContext(context.active(), origin), fn);
}

/**
 * Starts the CONSUMER span `process <job name>` of an attempt of `record`: a child of the span
 * that created the job (`"parent"`), or a root span linked to it (`"link"`). Returns the span
 * and the context to run the attempt in; undefined while no SDK is registered.
 */
export function startAttempt(
  record: JobRecord,
  how: { link: TraceLink; serverId: string },
): { span: Span; context: Context } | undefined {
  const tracer = tracerOf();
  if (!tracer) return undefined;
  const origin = originOf(record);
  const parent = origin && how.link === "parent" ? origin.parent : context.active();
  const links: Link[] | undefined = origin && how.link === "link"
    ? [{ context: origin.context }]
    : undefined;
  const attributes: Attributes = {
    "messaging.system": SCOPE,
    "messaging.operation.name": "process",
    "messaging.operation.type": "process",
    "messaging.destination.name": record.queue,
    "messaging.message.id": record.id,
    "taskflow.worker.id": how.serverId,
    "taskflow.job.name": record.name,
    "taskflow.job.attempt": record.attempt,
  };
  const span = tracer.startSpan(
    spanNames.get(record.name),
    { kind: SpanKind.CONSUMER, attributes, links },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

// One span name per job name: every span of it holds the same string until it is exported.
const spanNames = new Memo((name: string) => `process ${name}`);

/** Runs `fn` in `ctx` when there is one (an attempt traced by an SDK), else just runs it. */
export function within<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx === undefined ? fn() : context.with(ctx, fn);
}

/** Ends an attempt's span with its outcome (and its error, recorded with its code). */
export function endAttempt(span: Span, outcome: string, error?: unknown): void {
  if (span.isRecording()) {
    span.setAttribute("taskflow.job.outcome", outcome);
    if (error !== undefined) failSpan(span, error);
  }
  span.end();
}

/** Records `error` on `span` (type, code, message) and marks the span failed. */
function failSpan(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const code = (error as { code?: unknown })?.code;
  const type = typeof code === "string" ? code : (error as Error)?.name ?? "Error";
  span.setAttribute("error.type", type);
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: (error as Error)?.message ?? String(error),
  });
}

/** The trace id of the span active now, when there is a valid one (for log lines). */
export function activeTraceId(): string | undefined {
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}
