/**
 * @module
 * The messages between a worker and its Web Workers, and errors made cloneable: what crosses
 * keeps its name, message, stack and code, so retries and the dashboard treat it as if thrown
 * on the event loop (a {@link TaskFlowError} stays one, with its code and details).
 */

import { type ErrorCode, SnoozeError, TaskFlowError } from "../../../storage/errors.ts";
import type { Json } from "../../payload.ts";
import type { DependencyOutcome } from "../../job.ts";

/** An isolated job to run: where its definition lives and what its handler receives. */
export interface IsolateTask {
  /** The module URL the Web Worker imports. */
  module: string;
  name: string;
  jobId: string;
  attempt: number;
  args: Json;
  /** The outcomes of the job's dependencies, read before it started. */
  dependencies?: Record<string, DependencyOutcome>;
}

/** Anything thrown, in a form structured clone keeps. */
export type WireError =
  | {
    error: true;
    name: string;
    message: string;
    stack?: string;
    code?: string;
    /** Thrown as a TaskFlowError: rebuilt as one, so its code keeps deciding (discard, ...). */
    taskflow?: boolean;
    details?: Record<string, unknown>;
  }
  | { error: false; thrown: unknown };

/** From the worker to a Web Worker. */
export type ToIsolate =
  | { type: "run"; task: IsolateTask }
  /** Load these modules now, before the first job needs them (failures wait for that job). */
  | { type: "preload"; modules: string[] }
  | { type: "abort"; reason: WireError }
  | { type: "ack"; seq: number; error?: WireError };

/** From a Web Worker to the worker. */
export type FromIsolate =
  | { type: "progress"; seq: number; value: number }
  | { type: "log"; seq: number; message: string }
  /** The handler returned `value` (already a plain JSON copy). */
  | { type: "done"; ok: true; value: Json | undefined }
  /** The handler threw, or the job could not run (`retry` false: it never can). */
  | { type: "done"; ok: false; error: WireError; retry: boolean }
  /** A rejection nobody handled: this Web Worker is not to be trusted with another job. */
  | { type: "crash"; error: WireError };

/** `error` in a cloneable form. */
export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) {
    try {
      return { error: false, thrown: structuredClone(error) };
    } catch {
      return { error: false, thrown: String(error) };
    }
  }
  const wire: WireError = { error: true, name: error.name, message: error.message };
  if (error.stack) wire.stack = error.stack;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") wire.code = code;
  if (error instanceof TaskFlowError) {
    wire.taskflow = true;
    try {
      wire.details = structuredClone({ ...error.details });
    } catch {
      // Details that cannot cross are left behind; name, message and code still do.
    }
  }
  return wire;
}

/** The error `wire` describes, rebuilt on this side. */
export function fromWire(wire: WireError): unknown {
  if (!wire.error) return wire.thrown;
  if (wire.code === "JOB_SNOOZED" && typeof wire.details?.ms === "number") {
    // Rebuilt as the class itself, so `instanceof SnoozeError` holds on this side too.
    try {
      const snooze = new SnoozeError(wire.details.ms);
      if (wire.stack !== undefined) snooze.stack = wire.stack;
      return snooze;
    } catch {
      // An ms the class refuses cannot have come from it: rebuilt below as any other error.
    }
  }
  const error = wire.taskflow && wire.code
    ? new TaskFlowError(wire.code as ErrorCode, wire.message, wire.details ?? {})
    : new Error(wire.message);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  if (wire.code !== undefined && !wire.taskflow) {
    Object.defineProperty(error, "code", { value: wire.code, enumerable: true });
  }
  return error;
}
