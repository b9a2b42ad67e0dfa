/**
 * @module
 * TaskFlow's command line: `deno run -A main.ts <command> [flags]` (main.ts is the thin entry).
 * Flags override environment variables, which override defaults. Every failure is one line on
 * stderr; exit code 2 when the process could not start (see `report.ts`).
 */

import { VERSION } from "../version.ts";
import { build, doctor, rebuild } from "./commands.ts";
import { enqueue } from "./enqueue.ts";
import { explainCommand, watchCommand } from "./events.ts";
import { closest } from "../suggest.ts";
import {
  COMMANDS,
  FLAGS,
  helpText,
  isCommand,
  type Parsed,
  parseFlags,
  settingsOf,
  UsageError,
} from "./flags.ts";
import { describeFailure } from "./report.ts";
import { prune } from "./retention.ts";
import { queue } from "./queue.ts";
import { serve } from "./serve.ts";

export { drainer } from "./serve.ts";

/** Options of {@link main}. */
export interface MainOptions {
  /** Deno Deploy mode: no command means `start`, and start/worker/dashboard run for Deploy. */
  deploy?: boolean;
  /** Reads an environment variable (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
}

/** Runs the command line `args`; returns the process exit code. */
export async function main(args: readonly string[], options: MainOptions = {}): Promise<number> {
  try {
    return await run(args, options);
  } catch (error) {
    const { line, code } = describeFailure(error);
    console.error(line);
    if (readEnv("TASKFLOW_DEBUG") === "1") console.error(error);
    return code;
  }
}

async function run(args: readonly string[], options: MainOptions): Promise<number> {
  const at = commandIndex(args);
  const rest = at < 0 ? [...args] : [...args.slice(0, at), ...args.slice(at + 1)];
  let name = at < 0 ? undefined : args[at];
  if (name === undefined) {
    // Flags alone: --help and --version work without a command; on Deploy the entrypoint
    // gets no arguments and serves the dashboard.
    if (rest.includes("--version")) return version();
    if (rest.includes("--help") || rest.includes("-h")) return help();
    if (!options.deploy) {
      throw new UsageError(
        `no command given (commands: ${Object.keys(COMMANDS).join(", ")}; see --help)`,
      );
    }
    name = "start";
  }
  if (!isCommand(name)) {
    const near = closest(name, Object.keys(COMMANDS));
    throw new UsageError(
      `unknown command ${JSON.stringify(name)} ` +
        (near ? `(did you mean ${near}?)` : `(commands: ${Object.keys(COMMANDS).join(", ")})`),
    );
  }
  const parsed = parseFlags(name, rest);
  if (parsed.values.version) return version();
  if (parsed.values.help) return help(name);
  const settings = settingsOf(parsed, options.env ?? readEnv);
  switch (name) {
    case "help":
      return helpFor(parsed);
    case "start":
    case "worker":
    case "dashboard":
      return await serve(settings, {
        worker: name !== "dashboard",
        dashboard: name !== "worker",
        readOnly: parsed.values["read-only"] === true,
        insecure: parsed.values.insecure === true,
        trustProxy: parsed.values["trust-proxy"] === true,
        deploy: Boolean(options.deploy),
      });
    case "enqueue":
      return await enqueue(parsed, settings);
    case "queue":
      return await queue(parsed, settings);
    case "watch":
      return await watchCommand(parsed, settings);
    case "explain":
      return await explainCommand(parsed, settings);
    case "rebuild":
      return await rebuild(settings);
    case "doctor":
      return await doctor(settings);
    case "prune":
      return await prune(settings, parsed.values["dry-run"] === true);
    case "build":
      return await build();
  }
}

/**
 * Where the command is: the first argument that is neither a flag nor a flag's value
 * (`--storage memory: worker` names `worker`).
 */
function commandIndex(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const token = args[i];
    if (token === "--") return i + 1 < args.length ? i + 1 : -1;
    if (!token.startsWith("-")) return i;
    const name = token.replace(/^--?/, "");
    const spec = (FLAGS as Record<string, { arg?: string }>)[name];
    if (spec?.arg && !token.includes("=")) i++;
  }
  return -1;
}

function helpFor(parsed: Parsed): number {
  const [topic] = parsed.positionals;
  if (topic === undefined) return help();
  if (!isCommand(topic)) {
    throw new UsageError(
      `no help for ${JSON.stringify(topic)}: not a command (commands: ${
        Object.keys(COMMANDS).join(", ")
      })`,
    );
  }
  return help(topic);
}

function help(command?: keyof typeof COMMANDS): number {
  console.log(helpText(command));
  return 0;
}

function version(): number {
  console.log(`taskflow ${VERSION} (deno ${Deno.version.deno})`);
  return 0;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no env permission: flags and defaults only
  }
}
