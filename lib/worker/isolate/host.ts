/**
 * @module
 * The entry of each Web Worker of the isolate pool: imports the module an isolated job names,
 * finds the definition of that name made while the module loaded, and runs its handler with a
 * context whose progress, log and signal travel as messages to the worker holding the job.
 */

import { JobModuleError } from "../../../storage/errors.ts";
import { DEFINED_HOOK, type JobContext, type JobDefinition } from "../../job.ts";
import { toJson } from "../../payload.ts";
import { InvalidOptionError, SnoozeError } from "../../../storage/errors.ts";
import { UnsupportedError } from "../../../storage/event_errors.ts";
import { type FromIsolate, fromWire, type IsolateTask, type ToIsolate, toWire } from "./wire.ts";

/** The Web Worker's side of its port (typed here: this file is checked with the window lib). */
const port = globalThis as unknown as {
  postMessage(message: FromIsolate): void;
  onmessage: ((event: MessageEvent<ToIsolate>) => void) | null;
};

/** A name defined by two different definitions: which one to run is unknown. */
const TWICE = Symbol("defined twice");
const defined = new Map<string, JobDefinition | typeof TWICE>();
(globalThis as Record<symbol, unknown>)[DEFINED_HOOK] = (definition: JobDefinition) => {
  const other = defined.get(definition.name);
  defined.set(definition.name, other && other !== definition ? TWICE : definition);
};

/** The job running now (one at a time per Web Worker). */
let running: AbortController | undefined;
/** Progress and log writes waiting for the worker's answer, by sequence number. */
const pending = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
let seq = 0;

// Reported as the job's failure (with the rejection's own stack) instead of an uncaught error.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  port.postMessage({ type: "crash", error: toWire(event.reason) });
});

port.onmessage = ({ data }) => {
  if (data.type === "run") void run(data.task);
  else if (data.type === "preload") {
    for (const module of data.modules) import(module).catch(() => {});
  } else if (data.type === "abort") running?.abort(fromWire(data.reason));
  else {
    const waiting = pending.get(data.seq);
    pending.delete(data.seq);
    if (data.error) waiting?.reject(fromWire(data.error));
    else waiting?.resolve();
  }
};

async function run(task: IsolateTask): Promise<void> {
  const controller = new AbortController();
  running = controller;
  let done: FromIsolate;
  try {
    const definition = await find(task);
    try {
      // Aborted while its module loaded: the handler would only see a signal already fired.
      if (controller.signal.aborted) throw controller.signal.reason;
      const value = await definition.handler(task.args, context(task, controller.signal));
      try {
        // Checked here, where the value still is what the handler returned (a class instance
        // would lose its prototype in structured clone and pass on the other side).
        done = {
          type: "done",
          ok: true,
          value: value === undefined ? undefined : toJson(value, "result"),
        };
      } catch (error) {
        done = { type: "done", ok: false, error: toWire(error), retry: false };
      }
    } catch (error) {
      done = { type: "done", ok: false, error: toWire(error), retry: true };
    }
  } catch (error) {
    done = { type: "done", ok: false, error: toWire(error), retry: false };
  }
  running = undefined;
  port.postMessage(done);
}

/** The definition of `task.name` made while `task.module` (or a module it imports) loaded. */
async function find(task: IsolateTask): Promise<JobDefinition> {
  try {
    await import(task.module);
  } catch (error) {
    throw new JobModuleError(
      task.module,
      `could not be imported in a Web Worker to run the isolated job "${task.name}": ` +
        (error instanceof Error ? error.message : String(error)),
    );
  }
  const definition = defined.get(task.name);
  if (definition === TWICE) {
    throw new JobModuleError(
      task.module,
      `defines the isolated job "${task.name}" twice, so a Web Worker cannot tell which to run`,
    );
  }
  if (!definition) {
    throw new JobModuleError(
      task.module,
      `defines no job "${task.name}" as it loads in a Web Worker: an isolated job must be ` +
        "created by defineJob at the top level of its module (or of a module it imports)",
    );
  }
  return definition;
}

function context(task: IsolateTask, signal: AbortSignal): JobContext {
  const ask = (message: FromIsolate & { seq: number }) =>
    new Promise<void>((resolve, reject) => {
      pending.set(message.seq, { resolve, reject });
      port.postMessage(message);
    });
  return {
    jobId: task.jobId,
    name: task.name,
    attempt: task.attempt,
    signal,
    progress(value: number): Promise<void> {
      // Refused here what structured clone could not carry; the worker checks the rest.
      if (typeof value !== "number") {
        return Promise.reject(new InvalidOptionError("progress", value, "must be a finite number"));
      }
      return ask({ type: "progress", seq: ++seq, value });
    },
    log(message: string): Promise<void> {
      return ask({ type: "log", seq: ++seq, message: String(message) });
    },
    snooze(ms: number): never {
      throw new SnoozeError(ms);
    },
    dependencies: () => Promise.resolve(structuredClone(task.dependencies ?? {})),
    atomic(): void {
      const hint = "its outcome is committed by the worker outside this Web Worker";
      throw new UnsupportedError("ctx.atomic", `isolated job ${task.name}`, hint);
    },
  };
}
