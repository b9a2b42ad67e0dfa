/**
 * @module
 * The isolate pool: Web Workers that run isolated handlers one job at a time each, so a handler
 * that computes never stalls the worker's event loop (its heartbeats, claims and writes).
 * Web Workers start with the worker and stay for the next jobs; an aborted job's Web Worker is
 * terminated and a new one takes its place.
 */

import type { Settled } from "../outcome.ts";
import type { WorkerLogger } from "../config.ts";
import { message } from "../context.ts";
import { type FromIsolate, fromWire, type IsolateTask, type ToIsolate, toWire } from "./wire.ts";

/**
 * How long an aborted handler has to see `ctx.signal` and settle (run its `finally`, cancel what
 * it started) before its Web Worker is terminated; a handler that computes never sees it.
 */
export const ABORT_GRACE_MS = 500;

/** What an isolated handler's context does on the worker's side. */
export interface IsolateHooks {
  /** Aborts the job: the handler's signal fires, then its Web Worker is terminated. */
  signal: AbortSignal;
  /** The job goes to a Web Worker now (after any wait for a free one). */
  begin(): void;
  progress(value: number): Promise<void>;
  log(message: string): Promise<void>;
}

const HOST = new URL("./host.ts", import.meta.url);

/** At most `size` Web Workers, each running one isolated job at a time. */
export class IsolatePool {
  /** Most Web Workers at once. */
  readonly size: number;
  #log: WorkerLogger;
  #idle: Worker[] = [];
  /** Web Workers running a job, with what ends that job at once (used by close). */
  #busy = new Map<Worker, (outcome: Settled) => void>();
  #waiters: Array<() => void> = [];
  #spawned = 0;
  #closed = false;

  /** A pool of at most `size` Web Workers; `log` hears of Web Workers that fail. */
  constructor(size: number, log: WorkerLogger) {
    this.size = size;
    this.#log = log;
  }

  /** Web Workers started since the pool was made (replacements included). */
  get spawned(): number {
    return this.#spawned;
  }

  /** Web Workers alive now (idle or running a job). */
  get alive(): number {
    return this.#idle.length + this.#busy.size;
  }

  /**
   * Starts every Web Worker now and has each import `modules`, so that the first jobs do not
   * wait for that (a module that fails to import fails its jobs when they run).
   */
  warm(modules: readonly string[]): void {
    try {
      while (!this.#closed && this.alive < this.size) {
        const worker = this.#spawn();
        worker.postMessage({ type: "preload", modules: [...modules] } satisfies ToIsolate);
        this.#idle.push(worker);
      }
    } catch (error) {
      // Each isolated job then fails with this error, instead of the worker not starting.
      this.#log("warn", `the isolate pool cannot start a Web Worker: ${message(error)}`);
    }
  }

  /** Runs `task` in a Web Worker (waiting for one when all are busy) and tells how it ended. */
  async run(task: IsolateTask, hooks: IsolateHooks): Promise<Settled> {
    while (this.alive >= this.size && this.#idle.length === 0 && !this.#closed) {
      if (hooks.signal.aborted) break;
      await this.#free(hooks.signal);
    }
    if (hooks.signal.aborted) return { ok: false, error: hooks.signal.reason, retry: true };
    if (this.#closed) {
      return { ok: false, error: new Error("the isolate pool is closed"), retry: true };
    }
    let worker: Worker;
    try {
      worker = this.#idle.pop() ?? this.#spawn();
    } catch (error) {
      return { ok: false, error, retry: true }; // a runtime without Web Workers, a permission
    }
    return await this.#execute(worker, task, hooks);
  }

  /** Terminates every Web Worker; a job still running in one ends as failed (to retry). */
  close(): void {
    this.#closed = true;
    for (const end of [...this.#busy.values()]) {
      end({ ok: false, error: new Error("the worker stopped"), retry: true });
    }
    for (const worker of this.#idle) worker.terminate();
    this.#idle = [];
    this.#wake();
  }

  #spawn(): Worker {
    this.#spawned++;
    return new Worker(HOST, { type: "module", name: `taskflow-isolate-${this.#spawned}` });
  }

  /** Resolves when a Web Worker frees up, or on abort of `signal`. */
  #free(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener("abort", wake);
        this.#waiters = this.#waiters.filter((waiter) => waiter !== wake);
        resolve();
      };
      signal.addEventListener("abort", wake, { once: true });
      this.#waiters.push(wake);
    });
  }

  #wake(): void {
    this.#waiters.shift()?.();
    if (this.#closed) { for (const wake of [...this.#waiters]) wake(); }
  }

  #execute(worker: Worker, task: IsolateTask, hooks: IsolateHooks): Promise<Settled> {
    const send = (message: ToIsolate) => worker.postMessage(message);
    return new Promise<Settled>((resolve) => {
      let grace: ReturnType<typeof setTimeout> | undefined;
      let aborted = false;
      const end = (outcome: Settled, reusable = !aborted) => {
        if (!this.#busy.delete(worker)) return;
        clearTimeout(grace);
        hooks.signal.removeEventListener("abort", abort);
        worker.onmessage = worker.onerror = null;
        if (reusable && !this.#closed) this.#idle.push(worker);
        else worker.terminate();
        this.#wake();
        resolve(outcome);
      };
      const abort = () => {
        aborted = true;
        send({ type: "abort", reason: toWire(hooks.signal.reason) });
        grace = setTimeout(
          () => end({ ok: false, error: hooks.signal.reason, retry: true }),
          ABORT_GRACE_MS,
        );
      };
      worker.onmessage = ({ data }: MessageEvent<FromIsolate>) => {
        if (data.type === "done") {
          return end(
            data.ok
              ? { ok: true, value: data.value }
              : { ok: false, error: fromWire(data.error), retry: data.retry },
          );
        }
        if (data.type === "crash") return crash(fromWire(data.error));
        const { seq } = data;
        const write = data.type === "progress"
          ? hooks.progress(data.value)
          : hooks.log(data.message);
        write.then(
          () => send({ type: "ack", seq }),
          (error) => send({ type: "ack", seq, error: toWire(error) }),
        );
      };
      // Uncaught in the Web Worker (a rejection nobody handled, a throwing timer): fail the
      // job, not the process, and start a fresh Web Worker.
      const crash = (error: unknown) => {
        this.#log("warn", `job ${task.jobId}: uncaught in its Web Worker: ${message(error)}`, {
          jobId: task.jobId,
        });
        end({ ok: false, error, retry: true }, false);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        crash(event.error ?? new Error(event.message));
      };
      this.#busy.set(worker, end);
      hooks.signal.addEventListener("abort", abort, { once: true });
      hooks.begin();
      send({ type: "run", task });
    });
  }
}
