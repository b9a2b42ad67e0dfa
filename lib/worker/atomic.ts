/**
 * @module
 * `ctx.atomic`: a handler's own Deno KV checks and writes, recorded when it calls
 * `ctx.atomic(fn)` and replayed into the atomic write that records its job Succeeded, so they
 * commit together with the outcome or not at all. Recording runs `fn` at once: a mistake in it
 * fails the handler, with its own message, instead of the commit that carries other jobs.
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import type { AtomicExtra } from "../../storage/feed.ts";

/** The operations a handler may add; `commit` is the worker's. */
const OPERATIONS = new Set(["check", "set", "delete", "sum", "min", "max", "mutate", "enqueue"]);

/** Runs `fn` on a recorder and returns the replay of what it did. */
export function recordAtomic(fn: (op: Deno.AtomicOperation) => void): AtomicExtra {
  if (typeof fn !== "function") {
    throw new InvalidOptionError("ctx.atomic", fn, "takes a function (op) => void");
  }
  const calls: [string, unknown[]][] = [];
  const op: Deno.AtomicOperation = new Proxy({} as Deno.AtomicOperation, {
    get(_, name) {
      if (typeof name !== "string" || !OPERATIONS.has(name)) {
        throw new InvalidOptionError(
          "ctx.atomic operation",
          String(name),
          `is not one a handler may add (${[...OPERATIONS].join(", ")}); the worker commits`,
        );
      }
      return (...args: unknown[]) => {
        calls.push([name, args]);
        return op;
      };
    },
  });
  const result = fn(op) as unknown;
  if (result instanceof Promise) {
    throw new InvalidOptionError("ctx.atomic", fn, "takes a synchronous function (op) => void");
  }
  return (atomic) => {
    const target = atomic as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const [name, args] of calls) target[name].apply(atomic, args);
  };
}

/** The writes of several `ctx.atomic` calls, in order, as one. */
export function combined(extras: readonly AtomicExtra[]): AtomicExtra {
  return (atomic) => extras.forEach((extra) => extra(atomic));
}
