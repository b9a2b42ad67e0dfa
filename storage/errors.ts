/**
 * @module
 * Typed errors. Every failure TaskFlow reports is a {@link TaskFlowError} with a stable `code`
 * that callers can switch on; the message names what was wrong and with which value, with the
 * same text on every storage backend.
 */

/** Stable error codes, one per kind of failure. */
export type ErrorCode =
  | "ARGS_NOT_SERIALIZABLE"
  | "PAYLOAD_TOO_LARGE"
  | "INVALID_NAME"
  | "INVALID_OPTION"
  | "JOB_NOT_FOUND"
  | "JOB_EXISTS"
  | "INVALID_TRANSITION"
  | "CONFLICT"
  | "UNKNOWN_STORAGE_SCHEME"
  | "STORAGE_UNAVAILABLE"
  | "CORRUPT_RECORD"
  | "UNKNOWN_JOB"
  | "JOB_TIMEOUT"
  | "JOB_DISCARDED"
  | "JOB_SNOOZED"
  | "JOB_FAILED"
  | "JOB_DELETED"
  | "WAIT_TIMEOUT"
  | "CURSOR_EXPIRED"
  | "UNSUPPORTED"
  | "ATOMIC_CHECK_FAILED"
  | "ATTEMPTS_EXHAUSTED"
  | "INVALID_CRON"
  | "INVALID_TIMEZONE"
  | "JOB_MODULE_INVALID"
  | "DEPENDENCY_FAILED"
  | "TRANSACTION_NOT_SUPPORTED";

/** Base class of every error TaskFlow throws on purpose. */
export class TaskFlowError extends Error {
  /** Stable machine-readable code, e.g. `JOB_NOT_FOUND`. */
  readonly code: ErrorCode;
  /** Extra facts about the failure (the offending path, size, id, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  /** Creates an error with a stable `code`, a message and optional details. */
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Job arguments (or a result) are not plain JSON; `path` names the offending value. */
export class ArgsNotSerializableError extends TaskFlowError {
  /** Path of the offending value, e.g. `args.user.at`. */
  readonly path: string;
  /** Builds the error for the value at `path`, with the reason it is not plain JSON. */
  constructor(path: string, reason: string) {
    super("ARGS_NOT_SERIALIZABLE", `${path} is not plain JSON: ${reason}`, { path });
    this.path = path;
  }
}

/** A payload is larger than the backend accepts. */
export class PayloadTooLargeError extends TaskFlowError {
  /** Builds the error naming what was too large, its size and the limit, in bytes. */
  constructor(what: string, size: number, limit: number) {
    super(
      "PAYLOAD_TOO_LARGE",
      `${what} is ${size} bytes as JSON, over the limit of ${limit} bytes`,
      { what, size, limit },
    );
  }
}

/** A job name, queue name or job id does not follow the allowed pattern. */
export class InvalidNameError extends TaskFlowError {
  /** Builds the error for `kind` (e.g. "job name") with the offending value and the rule. */
  constructor(kind: string, value: unknown, rule: string) {
    super("INVALID_NAME", `invalid ${kind} ${describe(value)}: ${rule}`, {
      kind,
      value,
    });
  }
}

/** An option has a value outside its allowed range (negative delay, unknown backoff, ...). */
export class InvalidOptionError extends TaskFlowError {
  /** Builds the error for option `option`, describing the rule it breaks. */
  constructor(option: string, value: unknown, rule: string) {
    super("INVALID_OPTION", `invalid ${option} ${describe(value)}: ${rule}`, { option, value });
  }
}

/** No job with that id exists. */
export class JobNotFoundError extends TaskFlowError {
  /** Builds the error for the missing job `id`. */
  constructor(id: string) {
    super("JOB_NOT_FOUND", `job ${JSON.stringify(id)} does not exist`, { id });
  }
}

/** A job's dependency (`dependsOn`) does not exist. */
export class DependencyNotFoundError extends JobNotFoundError {
  /** Builds the error for the missing dependency `id`, named in `option`. */
  constructor(id: string, option = "dependsOn") {
    super(id);
    this.message = `${option} names job ${JSON.stringify(id)}, which does not exist`;
  }
}

/** A job ended Failed without running because a dependency of it did not succeed. */
export class DependencyFailedError extends TaskFlowError {
  /** Builds the error for dependency `id`, which ended in `state`. */
  constructor(id: string, state: string) {
    super("DEPENDENCY_FAILED", `dependency ${JSON.stringify(id)} ended ${state}`, { id, state });
  }
}

/** A job with that id already exists (custom or deterministic ids). */
export class JobExistsError extends TaskFlowError {
  /** Builds the error for the already existing job `id` (holding unique key `key`, if given). */
  constructor(id: string, key?: string) {
    super(
      "JOB_EXISTS",
      key === undefined
        ? `job ${JSON.stringify(id)} already exists`
        : `job ${JSON.stringify(id)} already holds unique key ${JSON.stringify(key)}`,
      key === undefined ? { id } : { id, key },
    );
  }
}

/** The transition table does not allow moving the job from its state to the requested one. */
export class InvalidTransitionError extends TaskFlowError {
  /** Builds the error for job `id` moving from `from` (null: not created yet) to `to`. */
  constructor(id: string, from: string | null, to: string) {
    super(
      "INVALID_TRANSITION",
      `job ${JSON.stringify(id)} cannot move from ${from ?? "(new)"} to ${to}`,
      { id, from, to },
    );
  }
}

/** Writers kept racing on the same job and the operation gave up after several tries. */
export class ConflictError extends TaskFlowError {
  /** Builds the error for job `id` after `tries` failed compare-and-set attempts. */
  constructor(id: string, tries: number) {
    super(
      "CONFLICT",
      `job ${JSON.stringify(id)} kept changing under this write; gave up after ${tries} tries`,
      { id, tries },
    );
  }
}

/** The storage URL has a scheme TaskFlow does not know, or is malformed. */
export class UnknownStorageError extends TaskFlowError {
  /** Builds the error for `url`, with the reason and the schemes that are known. */
  constructor(url: string, reason: string) {
    super(
      "UNKNOWN_STORAGE_SCHEME",
      `cannot open storage ${JSON.stringify(url)}: ${reason} ` +
        `(use memory:, kv:, kv:<path>, kv::memory:, kv:https://..., redis://, rediss://, redis+cluster:// or postgres://)`,
      { url },
    );
  }
}

/** A `transaction` option was given to a storage that cannot write in the caller's transaction. */
export class TransactionNotSupportedError extends TaskFlowError {
  /** Builds the error for the storage at `address`. */
  constructor(address: string) {
    super(
      "TRANSACTION_NOT_SUPPORTED",
      `storage ${address} cannot write in the caller's transaction: only PostgreSQL storage ` +
        `(postgres://) takes the transaction option`,
      { address },
    );
  }
}

/** The storage backend cannot be reached or refused the operation. */
export class StorageUnavailableError extends TaskFlowError {
  /** Builds the error for the backend at `address`, with its underlying cause. */
  constructor(address: string, message: string, cause?: unknown) {
    super("STORAGE_UNAVAILABLE", `storage ${address} unavailable: ${message}`, { address });
    if (cause !== undefined) this.cause = cause;
  }
}

/** A stored value could not be read back as a job record or event. */
export class CorruptRecordError extends TaskFlowError {
  /** Builds the error for job `id`, naming what is broken. */
  constructor(id: string, problem: string) {
    super("CORRUPT_RECORD", `job ${JSON.stringify(id)} is corrupt: ${problem}`, { id });
  }
}

/** A worker received a job whose name it has no handler for. */
export class UnknownJobError extends TaskFlowError {
  /** Builds the error for job name `name`, listing the names the worker knows. */
  constructor(name: string, known: readonly string[]) {
    super(
      "UNKNOWN_JOB",
      `no handler is registered for job name ${JSON.stringify(name)} ` +
        `(this worker knows: ${known.length ? known.join(", ") : "none"})`,
      { name },
    );
  }
}

/** A handler ran longer than its `timeoutMs`. */
export class JobTimeoutError extends TaskFlowError {
  /** Builds the error for a handler that ran past `timeoutMs`. */
  constructor(timeoutMs: number) {
    super("JOB_TIMEOUT", `job timed out after ${timeoutMs} ms`, { timeoutMs });
  }
}

/**
 * Thrown by a handler to fail its job at once, without further retries.
 *
 * @example
 * ```ts
 * import { DiscardError } from "./mod.ts";
 * throw new DiscardError("the account was closed; retrying cannot help");
 * ```
 */
export class DiscardError extends TaskFlowError {
  /** Builds the error with the reason the job should not be retried. */
  constructor(message: string) {
    super("JOB_DISCARDED", message);
  }
}

/** Longest snooze: lib/options.ts's `MAX_DELAY_MS` (10 years), kept here as storage imports no lib values. */
export const MAX_SNOOZE_MS = 3_652.5 * 86_400_000;

/**
 * Thrown by a handler (or by `ctx.snooze(ms)`) to put its job back to Scheduled for `ms`
 * without spending an attempt: the next run has the same `ctx.attempt`.
 * A bad `ms` (not a number above 0 and at most 10 years) throws {@link InvalidOptionError}.
 *
 * @example
 * ```ts
 * import { SnoozeError } from "./mod.ts";
 * throw new SnoozeError(5_000); // the partner API is busy: try again in 5 s
 * ```
 */
export class SnoozeError extends TaskFlowError {
  /** How long the job waits before it is due again, in ms. */
  readonly ms: number;
  /** Builds the error for a snooze of `ms` milliseconds. */
  constructor(ms: number) {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms > MAX_SNOOZE_MS) {
      throw new InvalidOptionError(
        "snooze",
        ms,
        `must be a finite number of ms above 0, at most ${MAX_SNOOZE_MS} (10 years)`,
      );
    }
    super("JOB_SNOOZED", `snoozed for ${ms} ms by the handler`, { ms });
    this.ms = ms;
  }
}

/** A job was claimed again after all its attempts were used (earlier ones were interrupted). */
export class AttemptsExhaustedError extends TaskFlowError {
  /** Builds the error for attempt `attempt` of a job allowed `allowed` attempts. */
  constructor(attempt: number, allowed: number) {
    super(
      "ATTEMPTS_EXHAUSTED",
      `attempt ${attempt} exceeds the ${allowed} allowed; earlier attempts were interrupted`,
      { attempt, allowed },
    );
  }
}

/** A cron expression croner cannot parse; the message names the bad part. */
export class InvalidCronError extends TaskFlowError {
  /** Builds the error for `cron`, with croner's reason (e.g. "Invalid value for minute: 61"). */
  constructor(cron: string, reason: string) {
    super("INVALID_CRON", `invalid cron ${JSON.stringify(cron)}: ${reason}`, { cron });
  }
}

/** A timezone that is not an IANA zone this runtime knows. */
export class InvalidTimezoneError extends TaskFlowError {
  /** Builds the error for `timezone`. */
  constructor(timezone: string) {
    super(
      "INVALID_TIMEZONE",
      `invalid timezone ${
        JSON.stringify(timezone)
      }: use an IANA name such as "Europe/Berlin" or "UTC"`,
      { timezone },
    );
  }
}

/** A module of job definitions could not be loaded or exports something that is not a job. */
export class JobModuleError extends TaskFlowError {
  /** Builds the error for module `specifier` with the problem found. */
  constructor(specifier: string, problem: string, cause?: unknown) {
    super("JOB_MODULE_INVALID", `job module ${specifier}: ${problem}`, { specifier });
    if (cause !== undefined) this.cause = cause;
  }
}

function describe(value: unknown): string {
  // Never throws: the value may be a BigInt, a symbol, a cyclic or null-prototype object or a
  // Proxy whose traps throw, and a message is still owed.
  try {
    if (typeof value === "number") return String(value);
    if (typeof value === "bigint") return `${value}n`;
    if (typeof value === "symbol") return value.toString();
    if (typeof value === "function") return "a function";
    if (value instanceof Date) {
      return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
    }
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return typeof value === "object" && value !== null ? "an unreadable object" : typeof value;
  }
}
