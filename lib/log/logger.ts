/**
 * @module
 * The server's log lines: the default text (`[taskflow info] ...`) or JSON, one object per line
 * with level, time, message, server id, and the job id and trace id where known (for log
 * shippers such as Loki, Datadog or CloudWatch, which parse them without a pattern).
 */

import { InvalidOptionError } from "../../storage/errors.ts";
import { activeTraceId } from "../telemetry/trace.ts";
import type { LogFields, WorkerLogger } from "../worker/config.ts";

/** The log formats: `text` (the default) or `json`. */
export type LogFormat = "text" | "json";

/** The log formats, as the command line lists them. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** `text` (default) or `json`. */
  format?: LogFormat;
  /** The server id printed with each JSON line (a function: known only once the worker exists). */
  serverId?: string | (() => string | undefined);
  /** Where lines go (default: info to stdout, warn and error to stderr). */
  write?: (level: "info" | "warn" | "error", line: string) => void;
  /** The clock of the `time` field (tests inject one). */
  now?: () => number;
}

/** Reads a log format (`text` or `json`); throws `INVALID_OPTION` naming the value otherwise. */
export function readLogFormat(value: unknown, where = "format"): LogFormat {
  if (value === undefined) return "text";
  const text = typeof value === "string" ? value.trim().toLowerCase() : value;
  if (text !== "text" && text !== "json") {
    throw new InvalidOptionError(where, value, 'must be "text" or "json"');
  }
  return text;
}

const console_ = (level: "info" | "warn" | "error", line: string) =>
  (level === "info" ? console.log : console.error)(line);

/**
 * A worker logger (`createWorker({ logger })`) writing `format` lines. In JSON each line is one
 * object: `level`, `time` (ISO 8601), `message`, `serverId`, and `jobId` and `traceId` when
 * the message is about a job or said inside a traced attempt.
 *
 * @example
 * ```ts
 * import { createLogger } from "../mod.ts";
 * const log = createLogger({ format: "json", serverId: "web-1" });
 * log("info", "started", { jobId: "01J0000000000000000000000" });
 * // {"level":"info","time":"...","message":"started","serverId":"web-1","jobId":"01J..."}
 * ```
 */
export function createLogger(options: LoggerOptions = {}): WorkerLogger {
  const format = readLogFormat(options.format);
  const write = options.write ?? console_;
  if (format === "text") {
    return (level, message) => write(level, `[taskflow ${level}] ${message}`);
  }
  const now = options.now ?? Date.now;
  const { serverId } = options;
  return (level, message, fields?: LogFields) => {
    const line: Record<string, unknown> = {
      level,
      time: new Date(now()).toISOString(),
      message,
    };
    const server = typeof serverId === "function" ? serverId() : serverId;
    if (server !== undefined) line.serverId = server;
    if (fields?.jobId !== undefined) line.jobId = fields.jobId;
    const traceId = activeTraceId();
    if (traceId !== undefined) line.traceId = traceId;
    write(level, JSON.stringify(line));
  };
}
