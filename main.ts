/**
 * @module
 * TaskFlow's command line: `deno run -A main.ts <command> [flags]`. Flags override environment
 * variables, which override defaults.
 */

import { parseArgs } from "node:util";
import { TaskFlow } from "./lib/client.ts";
import { InvalidOptionError, TaskFlowError } from "./storage/errors.ts";
import { rebuild } from "./lib/rebuild.ts";
import { loadJobs } from "./lib/worker/load.ts";
import { createWorker } from "./lib/worker/worker.ts";
import { onDenoDeploy, openStorage } from "./storage/open.ts";

const USAGE = `usage: deno run -A main.ts <command> [flags]

commands:
  start       run the dashboard and a worker in one process
  worker      run a worker only
  dashboard   serve the dashboard only
  rebuild     recompute every projection from the event logs (stop workers first)
  doctor      check every job's record against its events, and counters against indexes
  build       bundle the dashboard's islands into _fresh/islands.js (for hosts without Deno.bundle)

flags (environment variable in brackets):
  --storage URL           memory:, kv:, kv:<path>, kv::memory:, kv:https://..., redis://host:port[/db], rediss://...
                          [TASKFLOW_STORAGE] default kv:./data/taskflow.sqlite
  --jobs MODULE           module exporting job definitions
                          [TASKFLOW_JOBS] default ./examples/jobs.ts
  --queues A,B            queues to serve, in priority order [TASKFLOW_QUEUES] default "default"
  --concurrency N         handlers running at once [TASKFLOW_CONCURRENCY] default 10
  --heartbeat-ms N        heartbeat period; dead after 3 missed [TASKFLOW_HEARTBEAT_MS] default 5000
  --poll-ms N             longest idle poll interval [TASKFLOW_POLL_MS] default 500
  --shutdown-timeout-ms N wait for handlers on SIGINT/SIGTERM [TASKFLOW_SHUTDOWN_TIMEOUT_MS] default 15000
  --host ADDRESS          dashboard address [TASKFLOW_DASHBOARD_HOST] default 127.0.0.1; another
                          address needs TASKFLOW_DASHBOARD_PASSWORD or _TOKEN, or --insecure
  --port N                dashboard port [TASKFLOW_DASHBOARD_PORT] default 8000
  --read-only             hide and refuse every dashboard action
  --insecure              allow a non-loopback address without a password or token
  --deploy                Deno Deploy mode (automatic when DENO_DEPLOYMENT_ID is set): storage
                          defaults to kv:, no KV queue, no file writes; a Deno.cron drains due
                          and ready jobs every minute (also POST /api/drain with the token)
`;

const FLAGS = {
  storage: "TASKFLOW_STORAGE",
  jobs: "TASKFLOW_JOBS",
  queues: "TASKFLOW_QUEUES",
  concurrency: "TASKFLOW_CONCURRENCY",
  "heartbeat-ms": "TASKFLOW_HEARTBEAT_MS",
  "poll-ms": "TASKFLOW_POLL_MS",
  "shutdown-timeout-ms": "TASKFLOW_SHUTDOWN_TIMEOUT_MS",
  host: "TASKFLOW_DASHBOARD_HOST",
  port: "TASKFLOW_DASHBOARD_PORT",
} as const;

type Flag = keyof typeof FLAGS;

/** Runs the command line `args`; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...Object.fromEntries(
          Object.keys(FLAGS).map((flag) => [flag, { type: "string" as const }]),
        ),
        help: { type: "boolean", short: "h" },
        "read-only": { type: "boolean" },
        insecure: { type: "boolean" },
        deploy: { type: "boolean" },
      },
    });
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  // On Deploy the entrypoint gets no arguments: serve the dashboard and drain by cron.
  const [command = DEPLOY ? "start" : undefined, ...extra] = parsed.positionals;
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!command || extra.length) {
    console.error(
      `error: ${command ? `unexpected argument "${extra[0]}"` : "no command given"}\n\n${USAGE}`,
    );
    return 2;
  }
  const values = parsed.values as Partial<Record<Flag, string>>;
  const setting = (flag: Flag): string | undefined =>
    values[flag] ?? Deno.env.get(FLAGS[flag]) ?? undefined;
  try {
    switch (command) {
      case "start":
      case "worker":
      case "dashboard":
        return await run(setting, {
          worker: command !== "dashboard",
          dashboard: command !== "worker",
          readOnly: parsed.values["read-only"] === true,
          insecure: parsed.values.insecure === true,
          deploy: DEPLOY,
        });
      case "rebuild":
        return await runRebuild(setting("storage"));
      case "doctor": {
        const { doctor } = await import("./lib/doctor.ts");
        const storage = await openStorage(setting("storage"));
        try {
          const report = await doctor(storage);
          for (const { id, problem } of report.findings) console.log(`${id}: ${problem}`);
          console.log(
            `${report.jobs} jobs examined in ${storage.address}: ` +
              (report.findings.length
                ? `${report.findings.length} problems (deno task rebuild repairs what the event logs can)`
                : "no problems"),
          );
          return report.findings.length ? 1 : 0;
        } finally {
          await storage.close();
        }
      }
      case "build": {
        const { buildIslands } = await import("./lib/fresh/islands.ts");
        const { PREBUILT_ISLANDS } = await import("./lib/dashboard/app.ts");
        const manifest = (await import("./fresh.gen.ts")).default;
        const js = await buildIslands(manifest);
        await Deno.mkdir(new URL(".", PREBUILT_ISLANDS), { recursive: true });
        await Deno.writeTextFile(PREBUILT_ISLANDS, js);
        console.log(`wrote ${PREBUILT_ISLANDS.pathname} (${js.length} bytes)`);
        return 0;
      }
      default:
        console.error(`error: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof TaskFlowError) {
      console.error(`error [${error.code}]: ${error.message}`);
      return error.code === "INVALID_OPTION" ? 2 : 1;
    }
    throw error;
  }
}

/** Parses a whole number setting; a bad value is an error naming the flag and its variable. */
function integer(
  setting: (flag: Flag) => string | undefined,
  flag: Flag,
  min: number,
): number | undefined {
  const text = setting(flag);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(
      `--${flag} (${FLAGS[flag]})`,
      text,
      `must be a whole number, at least ${min}`,
    );
  }
  return value;
}

interface Parts {
  worker: boolean;
  dashboard: boolean;
  readOnly: boolean;
  insecure: boolean;
  deploy: boolean;
}

async function run(setting: (flag: Flag) => string | undefined, parts: Parts): Promise<number> {
  const queuesText = setting("queues");
  const queues = queuesText?.split(",").map((q) => q.trim()).filter(Boolean);
  if (queuesText !== undefined && !queues?.length) {
    throw new InvalidOptionError(
      "--queues (TASKFLOW_QUEUES)",
      queuesText,
      "must name at least one queue",
    );
  }
  const concurrency = integer(setting, "concurrency", 1);
  const heartbeatMs = integer(setting, "heartbeat-ms", 10);
  const pollIntervalMs = integer(setting, "poll-ms", 1);
  const shutdownTimeoutMs = integer(setting, "shutdown-timeout-ms", 0);
  const port = integer(setting, "port", 0);
  if (port !== undefined && port > 65_535) {
    throw new InvalidOptionError("--port (TASKFLOW_DASHBOARD_PORT)", port, "must be at most 65535");
  }
  if (parts.dashboard) {
    // Refuse an unsafe address before anything is opened or written.
    const { checkBind, securityFromEnv } = await import("./lib/dashboard/app.ts");
    checkBind(setting("host") ?? "127.0.0.1", securityFromEnv(), parts.insecure);
  }
  const jobsModule = setting("jobs") ?? "./examples/jobs.ts";
  const jobs = parts.worker ? await loadJobs(jobsModule) : [];
  const storage = await openStorage(
    setting("storage") ?? (parts.deploy ? "kv:" : undefined),
    parts.deploy ? { queueWakeups: false } : {},
  );
  if (parts.deploy) {
    const { drain } = await import("./lib/worker/drain.ts");
    let running: Promise<unknown> | undefined;
    // One drain at a time per isolate, whoever asks (the cron or POST /api/drain).
    drainer.run = () =>
      running ??= drain({ storage, jobs, queues, concurrency }).finally(() => running = undefined);
  }
  const stopping = new AbortController();
  const closers: Array<() => Promise<void>> = [];
  try {
    if (parts.dashboard) {
      const { serveDashboard, securityFromEnv } = await import("./lib/dashboard/app.ts");
      const tf = new TaskFlow(storage);
      const { server } = serveDashboard({
        tf,
        hostname: setting("host"),
        port,
        insecure: parts.insecure,
        security: securityFromEnv({ readOnly: parts.readOnly }),
        drain: parts.deploy ? () => drainer.run!() : undefined,
        signal: stopping.signal,
        onListen: ({ hostname, port }) => {
          const host = hostname.includes(":") ? `[${hostname}]` : hostname;
          console.log(`TaskFlow dashboard on http://${host}:${port}/ (${storage.address})`);
        },
      });
      closers.push(() => server.finished);
    }
    if (parts.worker && !parts.deploy) {
      const worker = createWorker({
        storage,
        jobs,
        queues,
        concurrency,
        heartbeatMs,
        pollIntervalMs,
        shutdownTimeoutMs,
        handleSignals: true,
      });
      await worker.start();
      console.log(
        `TaskFlow worker ${worker.id} on ${storage.address}: queues ${worker.queues.join(", ")}, ` +
          `concurrency ${worker.concurrency}, jobs ${
            worker.jobNames.join(", ")
          } (from ${jobsModule})`,
      );
      closers.unshift(() => worker.stop());
      await worker.closed;
      console.log(`TaskFlow worker ${worker.id} stopped`);
    } else {
      await new Promise<void>((resolve) => {
        for (const signal of ["SIGINT", "SIGTERM"] as const) {
          Deno.addSignalListener(signal, () => resolve());
        }
      });
    }
  } finally {
    stopping.abort();
    for (const close of closers) await close();
    await storage.close();
  }
  return 0;
}

async function runRebuild(url: string | undefined): Promise<number> {
  const storage = await openStorage(url);
  try {
    const started = performance.now();
    const { jobs, skipped } = await rebuild(storage);
    const ms = Math.round(performance.now() - started);
    console.log(`rebuilt the projections of ${jobs} jobs in ${storage.address} (${ms} ms)`);
    for (const id of skipped) console.log(`left out ${id}: its event log is broken`);
  } finally {
    await storage.close();
  }
  return 0;
}

/** Deno Deploy mode: forced by --deploy, or detected by DENO_DEPLOYMENT_ID. */
const DEPLOY = Deno.args.includes("--deploy") || onDenoDeploy();
/** Set once storage is open; called by the cron below and by POST /api/drain. */
const drainer: { run?: () => Promise<unknown> } = {};

// Deno Deploy reads crons from top-level calls only; without KV queues this is what runs jobs.
if (import.meta.main && DEPLOY && typeof Deno.cron === "function") {
  Deno.cron("taskflow drain", "* * * * *", async () => {
    await drainer.run?.();
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
