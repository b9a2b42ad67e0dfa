/**
 * @module
 * What the command line prints when it fails: one line naming the cause (never a stack trace,
 * never a credential) and the exit code — 2 for anything that stops the process from starting.
 */

import { TaskFlowError } from "../../storage/errors.ts";
import { redact } from "../../storage/redact.ts";
import { UsageError } from "./flags.ts";

/** Where the dashboard was to listen, to name it when binding fails. */
export interface Bind {
  hostname: string;
  port: number;
}

/** A failure to serve the dashboard, with the address it was for. */
export class ServeError extends Error {
  override name = "ServeError";
  /** Wraps the error `Deno.serve` threw for `bind`. */
  constructor(readonly bind: Bind, cause: unknown) {
    super(firstLine(cause), { cause });
  }
}

/** One line for `error` (credentials redacted) and the exit code it ends the process with. */
export function describeFailure(error: unknown): { line: string; code: number } {
  const line = redact(`error${label(error)}: ${cause(error)}`);
  // A job module that fails to import is an error in the user's code (exit 1); everything
  // else that reaches here kept the process from starting: configuration or environment.
  const code = error instanceof TaskFlowError && error.code === "JOB_MODULE_INVALID" ? 1 : 2;
  return { line, code };
}

function label(error: unknown): string {
  if (error instanceof UsageError || !(error instanceof TaskFlowError)) return "";
  return ` [${error.code}]`;
}

function cause(error: unknown): string {
  if (error instanceof ServeError) return serveCause(error);
  if (error instanceof TaskFlowError) return firstLine(error);
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return `permission denied: ${firstLine(error)} (run with deno run -A, as deno task does)`;
  }
  return firstLine(error);
}

function serveCause(error: ServeError): string {
  const { hostname, port } = error.bind;
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  const inner = error.cause;
  const text = firstLine(inner);
  let why = text;
  if (inner instanceof Deno.errors.AddrInUse) {
    why = "the port is already in use by another process; choose another with --port " +
      "(TASKFLOW_DASHBOARD_PORT) or stop that process";
  } else if (inner instanceof Deno.errors.AddrNotAvailable) {
    why = "no network interface of this machine has that address (--host, TASKFLOW_DASHBOARD_HOST)";
  } else if (/lookup address|resolve|name or service not known/i.test(text)) {
    why = `the host name ${
      JSON.stringify(hostname)
    } does not resolve (--host, TASKFLOW_DASHBOARD_HOST)`;
  } else if (inner instanceof Deno.errors.PermissionDenied) {
    why = `permission denied (${text}); ports below 1024 need privileges`;
  }
  return `cannot serve the dashboard on ${where}: ${why}`;
}

/** The first line of an error's message (Deno's module errors add a code frame below it). */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n", 1)[0].trim() || (error instanceof Error ? error.name : "unknown error");
}
