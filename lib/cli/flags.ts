/**
 * @module
 * The command line's vocabulary: every flag (with its environment variable and default), which
 * command takes which, parsing with suggestions for typos, and value checks that name the flag.
 */

import { TaskFlowError } from "../../storage/errors.ts";
import { closest } from "../suggest.ts";

/** A command-line mistake (unknown flag, missing value, unknown command): exit code 2. */
export class UsageError extends TaskFlowError {
  /** Builds the error with the one-line `message` the user sees. */
  constructor(message: string) {
    super("INVALID_OPTION", message);
  }
}

interface FlagSpec {
  /** Environment variable that gives the value when the flag is absent. */
  env?: string;
  /** Placeholder of the value in help; absent for a switch. */
  arg?: string;
  help: string;
  default?: string;
}

/** Every flag of every command. */
export const FLAGS = {
  storage: {
    env: "TASKFLOW_STORAGE",
    arg: "URL",
    help: "memory:, kv:, kv:<path>, kv::memory:, kv:https://..., redis://host:port[/db], " +
      "rediss://..., redis+cluster://host:port,host:port",
    default: "kv:./data/taskflow.sqlite",
  },
  jobs: {
    env: "TASKFLOW_JOBS",
    arg: "MODULE",
    help: "module exporting job definitions",
    default: "./examples/jobs.ts",
  },
  queues: {
    env: "TASKFLOW_QUEUES",
    arg: "A,B",
    help: "queues to serve, in priority order",
    default: '"default"',
  },
  concurrency: {
    env: "TASKFLOW_CONCURRENCY",
    arg: "N",
    help: "handlers running at once (1 to 10000)",
    default: "10",
  },
  "heartbeat-ms": {
    env: "TASKFLOW_HEARTBEAT_MS",
    arg: "N",
    help: "heartbeat period; a worker is dead after 3 missed",
    default: "5000",
  },
  "poll-ms": {
    env: "TASKFLOW_POLL_MS",
    arg: "N",
    help: "longest idle poll interval",
    default: "500",
  },
  "shutdown-timeout-ms": {
    env: "TASKFLOW_SHUTDOWN_TIMEOUT_MS",
    arg: "N",
    help: "on Ctrl-C (SIGINT/SIGTERM), wait this long for handlers; a second Ctrl-C aborts them",
    default: "15000",
  },
  host: {
    env: "TASKFLOW_DASHBOARD_HOST",
    arg: "ADDRESS",
    help: "dashboard address; a non-loopback one needs TASKFLOW_DASHBOARD_PASSWORD or " +
      "TASKFLOW_DASHBOARD_TOKEN, or --insecure",
    default: "127.0.0.1",
  },
  port: { env: "TASKFLOW_DASHBOARD_PORT", arg: "N", help: "dashboard port", default: "8000" },
  "allowed-hosts": {
    env: "TASKFLOW_ALLOWED_HOSTS",
    arg: "A,B",
    help: "more host names the dashboard answers to (.example.com adds subdomains); " +
      "others get 421",
  },
  "trust-proxy": {
    help:
      "take Host, origin and HTTPS from X-Forwarded-* (behind a proxy) [TASKFLOW_TRUST_PROXY=1]",
  },
  "read-only": { help: "hide and refuse every dashboard action" },
  insecure: { help: "allow a non-loopback address without a password or token" },
  deploy: {
    help: "Deno Deploy mode (automatic when DENO_DEPLOYMENT_ID is set): storage defaults to " +
      "kv:, no KV queue, no file writes; a Deno.cron drains due and ready jobs every minute",
  },
  isolate: {
    env: "TASKFLOW_ISOLATE",
    arg: "N|cores",
    help: "run every job's handler in a pool of N Web Workers (cores: one per core) that " +
      "import the --jobs module, so computing never stalls heartbeats; without it only jobs " +
      "defined with isolate: true run there",
  },
  retention: {
    env: "TASKFLOW_RETENTION",
    arg: "RULES",
    help: "how long finished jobs are kept, e.g. succeeded=1h,failed=30d,deleted=forever; " +
      "a rule is a duration (30s, 1h, 7d), count:N (the newest N), both (7d+count:1000), " +
      "or forever; states left out keep their default",
    default: "succeeded=24h,failed=30d,deleted=24h",
  },
  archive: {
    env: "TASKFLOW_ARCHIVE",
    arg: "DIR",
    help: "before pruning, append each job (record and events) as one line to " +
      "DIR/YYYY-MM-DD.ndjson (UTC day of pruning), fsync'd first",
  },
  "log-format": {
    env: "TASKFLOW_LOG_FORMAT",
    arg: "text|json",
    help: "json: one object per line (level, time, message, serverId, jobId, traceId)",
    default: "text",
  },
  "dry-run": { help: "report what would be removed (with ids), remove nothing" },
  queue: { arg: "NAME", help: 'queue of the job (default: the job\'s own, else "default")' },
  rate: {
    arg: "MAX/PERIOD",
    help: "at most MAX job starts in any PERIOD, across all workers: 100/1s, 5/1m (none: no limit)",
  },
  "partition-concurrency": {
    arg: "N",
    help: "jobs of one partition running at once, across all workers (none: no limit)",
  },
  "partition-rate": {
    arg: "MAX/PERIOD",
    help: "at most MAX starts of one partition in any PERIOD (none: no limit)",
  },
  clear: { help: "remove every limit of the queue" },
  since: {
    arg: "CURSOR",
    help: 'resume after this cursor (printed first on each line), or "start" for the oldest kept',
  },
  name: { arg: "NAME", help: "only jobs with this name" },
  delay: {
    arg: "DURATION",
    help: "run after this long: 250ms, 10s, 5m, 1h, 2d (default: now)",
  },
  help: { help: "show this help" },
  version: { help: "print the version" },
} as const satisfies Record<string, FlagSpec>;

/** A flag's name without the leading `--`. */
export type Flag = keyof typeof FLAGS;

interface CommandSpec {
  summary: string;
  /** What follows the command name in the usage line (positional arguments). */
  args?: string;
  /** Longest number of positional arguments. */
  positionals: number;
  flags: readonly Flag[];
  /** More lines of help. */
  notes?: string;
  /** A flag's help for this command instead of its usual one (without environment or default). */
  flagHelp?: Partial<Record<Flag, string>>;
}

const SERVE: readonly Flag[] = ["storage", "deploy"];
const WORKER: readonly Flag[] = [
  "jobs",
  "queues",
  "concurrency",
  "heartbeat-ms",
  "poll-ms",
  "shutdown-timeout-ms",
  "isolate",
  "retention",
  "archive",
  "log-format",
];
const DASHBOARD: readonly Flag[] = [
  "host",
  "port",
  "allowed-hosts",
  "trust-proxy",
  "read-only",
  "insecure",
];

/** Every command, in the order help lists them. */
export const COMMANDS = {
  start: {
    summary: "run the dashboard and a worker in one process",
    positionals: 0,
    flags: [...SERVE, ...WORKER, ...DASHBOARD],
  },
  worker: { summary: "run a worker only", positionals: 0, flags: [...SERVE, ...WORKER] },
  dashboard: {
    summary: "serve the dashboard only",
    positionals: 0,
    flags: [...SERVE, ...DASHBOARD],
  },
  enqueue: {
    summary: "put a job in from the shell; prints its id and its dashboard link",
    args: "<name> [json-args]",
    positionals: 2,
    flags: ["storage", "queue", "delay", "jobs", "host", "port"],
    notes:
      `  json-args is the job's arguments as JSON (default null), e.g. '{"to":"a@example.com"}'.
  --jobs names the module whose definition gives the job's defaults (queue, attempts, ...).
  --host and --port only build the printed link (the dashboard's own settings, same variables).`,
  },
  queue: {
    summary: "show a queue's limits, or change them (stored: every worker obeys them)",
    args: "<name>",
    positionals: 1,
    flags: ["storage", "concurrency", "rate", "partition-concurrency", "partition-rate", "clear"],
    flagHelp: {
      concurrency: "jobs of the queue running at once, across all workers (none: no limit)",
    },
    notes:
      "  Without flags it prints the limits. A flag changes that limit only; the others stay.\n" +
      "  Partitions are the jobs' options.partition keys (e.g. a tenant id).",
  },
  watch: {
    summary: "print every job's events live, in commit order (Ctrl-C stops)",
    positionals: 0,
    flags: ["storage", "queue", "name", "since"],
    flagHelp: { queue: "only jobs of this queue" },
    notes: "  Each line starts with its cursor: --since it resumes after that event.",
  },
  explain: {
    summary: "say why a job is where it is and what it waits for",
    args: "<id>",
    positionals: 1,
    flags: ["storage"],
  },
  rebuild: {
    summary: "recompute every projection from the event logs (stop workers first)",
    positionals: 0,
    flags: ["storage"],
  },
  doctor: {
    summary: "check every job's record against its events, and counters against indexes",
    positionals: 0,
    flags: ["storage"],
    notes: "  Exit code 1 when problems are found.",
  },
  prune: {
    summary: "remove expired finished jobs now, with the retention policy in force",
    positionals: 0,
    flags: ["storage", "dry-run", "archive"],
    notes: "  The policy in force is the one the last started worker stored (else the default).\n" +
      "  When it archives, give --archive (or --dry-run): pruning never drops what it would keep.",
  },
  build: {
    summary:
      "bundle the dashboard's islands into _fresh/islands.js (for hosts without Deno.bundle)",
    positionals: 0,
    flags: [],
  },
  help: { summary: "show help for a command", args: "[command]", positionals: 1, flags: [] },
} as const satisfies Record<string, CommandSpec>;

/** A command's name. */
export type Command = keyof typeof COMMANDS;

/** Flags every command takes. */
const ALWAYS: readonly Flag[] = ["help", "version"];

/** True when `name` names a command. */
export function isCommand(name: string): name is Command {
  return Object.hasOwn(COMMANDS, name);
}

/** The flags of `command`, including --help and --version. */
function flagsOf(command: Command): readonly Flag[] {
  return [...COMMANDS[command].flags, ...ALWAYS];
}

/** A parsed command line: positional arguments and flag values (`true` for a switch). */
export interface Parsed {
  positionals: string[];
  values: Partial<Record<Flag, string | true>>;
}

/**
 * Parses `args` for `command`: `--flag value`, `--flag=value`, switches, `-h`, and `--` before
 * positionals that start with a dash. A repeated flag's last value wins.
 */
export function parseFlags(command: Command, args: readonly string[]): Parsed {
  const allowed = flagsOf(command);
  const parsed: Parsed = { positionals: [], values: {} };
  for (let i = 0; i < args.length; i++) {
    const token = args[i];
    if (token === "--") {
      parsed.positionals.push(...args.slice(i + 1));
      break;
    }
    if (token === "-h") {
      parsed.values.help = true;
      continue;
    }
    // A lone dash or a negative number is a value, not a flag.
    if (!token.startsWith("-") || token === "-" || /^-\d/.test(token)) {
      parsed.positionals.push(token);
      continue;
    }
    const [, name, inline] = /^--?([^=]*)(?:=([\s\S]*))?$/.exec(token)!;
    if (!token.startsWith("--") || !(allowed as readonly string[]).includes(name)) {
      throw unknownFlag(command, token.startsWith("--") ? name : token, allowed);
    }
    const flag = name as Flag;
    const spec: FlagSpec = FLAGS[flag];
    if (!spec.arg) {
      if (inline !== undefined) throw new UsageError(`flag --${flag} takes no value`);
      parsed.values[flag] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next !== "--")) {
        throw new UsageError(`flag --${flag} needs a value (--${flag} ${spec.arg})`);
      }
      value = next;
      i++;
    }
    parsed.values[flag] = value;
  }
  const most = COMMANDS[command].positionals;
  if (parsed.positionals.length > most && !parsed.values.help) {
    const extra = parsed.positionals[most];
    throw new UsageError(
      `unexpected argument ${JSON.stringify(extra)} (usage: ${usageLine(command)})`,
    );
  }
  return parsed;
}

function unknownFlag(command: Command, name: string, allowed: readonly Flag[]): UsageError {
  const shown = name.startsWith("-") ? name : `--${name}`;
  const near = closest(name.replace(/^-+/, ""), allowed);
  const hint = near ? ` (did you mean --${near}?)` : ` (see: deno task ${command} --help)`;
  if (Object.hasOwn(FLAGS, name)) {
    const users = Object.entries(COMMANDS)
      .filter(([, spec]) => (spec.flags as readonly string[]).includes(name))
      .map(([other]) => other);
    return new UsageError(
      `flag ${shown} does not apply to ${command} (only to ${users.join(", ")})` +
        (near ? hint : ""),
    );
  }
  return new UsageError(`unknown flag ${shown}${hint}`);
}

/** Reads settings: a flag's value, else its environment variable. */
export type Settings = (flag: Flag) => string | undefined;

/** Settings of a parsed command line: flags over environment variables (read only for `flags`). */
export function settingsOf(parsed: Parsed, env: (name: string) => string | undefined): Settings {
  return (flag) => {
    const value = parsed.values[flag];
    if (typeof value === "string") return value;
    const name = (FLAGS[flag] as FlagSpec).env;
    return name ? env(name) : undefined;
  };
}

/** How a flag is named in messages: `--port (TASKFLOW_DASHBOARD_PORT)`. */
export function flagName(flag: Flag): string {
  const env = (FLAGS[flag] as FlagSpec).env;
  return env ? `--${flag} (${env})` : `--${flag}`;
}

/** `deno task <command> <args> [flags]`. */
function usageLine(command: Command): string {
  const spec: CommandSpec = COMMANDS[command];
  return `deno run -A main.ts ${command}${spec.args ? ` ${spec.args}` : ""}` +
    (spec.flags.length ? " [flags]" : "");
}

function flagLines(flags: readonly Flag[], command?: Command): string {
  const own: CommandSpec["flagHelp"] = command ? (COMMANDS[command] as CommandSpec).flagHelp : {};
  return flags.map((flag) => {
    const usual: FlagSpec = FLAGS[flag];
    const spec: FlagSpec = own?.[flag] ? { arg: usual.arg, help: own[flag]! } : usual;
    const head = `  --${flag}${spec.arg ? ` ${spec.arg}` : ""}`;
    const tail = [
      spec.env ? `[${spec.env}]` : "",
      spec.default ? `default ${spec.default}` : "",
    ].filter(Boolean).join(" ");
    const text = wrap(spec.help, 72).map((line, i) => i ? `${" ".repeat(28)}${line}` : line);
    if (tail) text.push(`${" ".repeat(28)}${tail}`);
    const lead = head.length < 28 ? head.padEnd(28) : `${head}\n${" ".repeat(28)}`;
    return `${lead}${text.join("\n")}`;
  }).join("\n");
}

/** `text` in lines of at most `width` characters, broken between words. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** The help of one command, or of the whole command line. */
export function helpText(command?: Command): string {
  if (!command) {
    const list = Object.entries(COMMANDS)
      .map(([name, spec]) => `  ${name.padEnd(12)}${spec.summary}`)
      .join("\n");
    return `usage: deno run -A main.ts <command> [flags]   (or: deno task <command> [flags])

commands:
${list}

Flags override environment variables, which override defaults.
"deno run -A main.ts help <command>" or "<command> --help" shows a command's flags;
--version prints the version.`;
  }
  const spec: CommandSpec = COMMANDS[command];
  const flags = flagLines(flagsOf(command), command);
  return `usage: ${usageLine(command)}

${spec.summary}
${spec.notes ? `\n${spec.notes}\n` : ""}
flags [environment variable]:
${flags}`;
}
