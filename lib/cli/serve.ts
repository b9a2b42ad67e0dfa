/**
 * @module
 * `start`, `worker` and `dashboard`: check every setting, open the storage, serve the dashboard
 * and/or run a worker until a signal stops them.
 */

import { TaskFlow } from "../client.ts";
import { InvalidOptionError } from "../../storage/errors.ts";
import { openStorage } from "../../storage/open.ts";
import { redact } from "../../storage/redact.ts";
import { loadJobs } from "../worker/load.ts";
import { createWorker } from "../worker/worker.ts";
import { flagName, type Settings } from "./flags.ts";
import { integer, MAX_TIMER_MS } from "./values.ts";
import { ServeError } from "./report.ts";
import { ndjsonArchive, readRetentionFlag } from "./retention.ts";
import type { RetentionPolicy } from "../retention/policy.ts";
import { createLogger, readLogFormat } from "../log/logger.ts";

/** Which parts run, and how. */
export interface Parts {
  worker: boolean;
  dashboard: boolean;
  readOnly: boolean;
  insecure: boolean;
  /** --trust-proxy (else TASKFLOW_TRUST_PROXY decides). */
  trustProxy: boolean;
  deploy: boolean;
}

/** Set once storage is open in Deploy mode; called by main.ts's cron and by POST /api/drain. */
export const drainer: { run?: () => Promise<unknown> } = {};

/** `--retention` and `--archive` as a worker's retention (undefined: the defaults). */
function retentionSettings(settings: Settings): RetentionPolicy | undefined {
  const policy = readRetentionFlag(settings);
  const dir = settings("archive");
  return dir ? { ...policy, archive: ndjsonArchive(dir) } : policy;
}

/** The worker's settings, checked before anything is opened. */
function workerSettings(settings: Settings) {
  const queuesText = settings("queues");
  const queues = queuesText?.split(",").map((q) => q.trim()).filter(Boolean);
  if (queuesText !== undefined && !queues?.length) {
    throw new InvalidOptionError(flagName("queues"), queuesText, "must name at least one queue");
  }
  return {
    queues,
    concurrency: integer(settings, "concurrency", 1, 10_000),
    // The lease is three heartbeats, and it must fit a timer too.
    heartbeatMs: integer(settings, "heartbeat-ms", 10, Math.floor(MAX_TIMER_MS / 3)),
    pollIntervalMs: integer(settings, "poll-ms", 1, MAX_TIMER_MS),
    shutdownTimeoutMs: integer(settings, "shutdown-timeout-ms", 0, MAX_TIMER_MS),
    retention: retentionSettings(settings),
    ...isolateSettings(settings),
  };
}

/** `--isolate N|cores`: every job in a pool of Web Workers that import the --jobs module. */
function isolateSettings(settings: Settings) {
  const text = settings("isolate")?.trim();
  if (text === undefined) return {};
  if (text !== "cores" && !/^\d+$/.test(text)) {
    throw new InvalidOptionError(
      flagName("isolate"),
      text,
      'must be "cores" or a number of workers',
    );
  }
  return {
    isolate: true,
    isolateWorkers: text === "cores" ? undefined : integer(settings, "isolate", 1, 1_024),
    isolateModule: jobsModuleOf(settings),
  };
}

function jobsModuleOf(settings: Settings): string {
  return settings("jobs") ?? "./examples/jobs.ts";
}

/** The dashboard's address from `--host`/`--port` (checked; defaults 127.0.0.1:8000). */
export function dashboardAddress(settings: Settings): { hostname: string; port: number } {
  const hostname = (settings("host") ?? "127.0.0.1").trim().replace(/^\[(.*)\]$/, "$1");
  if (hostname === "" || /[\s/@?#]/.test(hostname)) {
    throw new InvalidOptionError(flagName("host"), hostname, "must be a host name or IP address");
  }
  return { hostname, port: integer(settings, "port", 0, 65_535) ?? 8000 };
}

/** The dashboard's security settings: the environment's, with the command line's on top. */
async function security(settings: Settings, parts: Parts) {
  const { parseAllowedHosts, securityFromEnv } = await import("../dashboard/app.ts");
  const hosts = settings("allowed-hosts");
  return securityFromEnv({
    readOnly: parts.readOnly,
    ...(hosts === undefined ? {} : { allowedHosts: parseAllowedHosts(hosts) }),
    ...(parts.trustProxy ? { trustProxy: true } : {}),
  });
}

/** Runs the parts until SIGINT/SIGTERM; returns the exit code. */
export async function serve(settings: Settings, parts: Parts): Promise<number> {
  let serverId: string | undefined;
  const format = readLogFormat(settings("log-format"), flagName("log-format"));
  // The worker's reports and this command's own lines share one format.
  const logger = createLogger({ format, serverId: () => serverId });
  // In text, this command's own lines stay as they were (no level prefix).
  const say = format === "json"
    ? (message: string) => logger("info", message)
    : (message: string) => console.log(message);
  const worker = parts.worker ? { ...workerSettings(settings), logger } : undefined;
  const bind = dashboardAddress(settings);
  if (parts.dashboard) {
    // Refuse an unsafe address before anything is opened or written.
    const { checkBind } = await import("../dashboard/app.ts");
    checkBind(bind.hostname, await security(settings, parts), parts.insecure);
  }
  const jobsModule = jobsModuleOf(settings);
  const jobs = parts.worker ? await loadJobs(jobsModule) : [];
  const storage = await openStorage(
    settings("storage") ?? (parts.deploy ? "kv:" : undefined),
    parts.deploy ? { queueWakeups: false } : {},
  );
  const tf = new TaskFlow(storage);
  if (parts.deploy) {
    const { drain } = await import("../worker/drain.ts");
    let running: Promise<unknown> | undefined;
    const { queues, concurrency, retention } = worker ?? {};
    // One drain at a time per isolate, whoever asks (the cron or POST /api/drain).
    drainer.run = () =>
      running ??= drain({ storage, jobs, queues, concurrency, retention }).finally(() =>
        running = undefined
      );
  }
  const stopping = new AbortController();
  const closers: Array<() => Promise<void>> = [];
  try {
    if (parts.dashboard) {
      const { serveDashboard } = await import("../dashboard/app.ts");
      let server: Deno.HttpServer;
      try {
        ({ server } = serveDashboard({
          tf,
          hostname: bind.hostname,
          port: bind.port,
          insecure: parts.insecure,
          security: await security(settings, parts),
          drain: parts.deploy ? () => drainer.run!() : undefined,
          signal: stopping.signal,
          onListen: ({ hostname, port }) => {
            const host = hostname.includes(":") ? `[${hostname}]` : hostname;
            say(`TaskFlow dashboard on http://${host}:${port}/ (${redact(tf.address)})`);
          },
        }));
      } catch (error) {
        if (error instanceof InvalidOptionError) throw error;
        throw new ServeError(bind, error);
      }
      closers.push(() => server.finished);
    }
    if (worker && !parts.deploy) {
      const running = createWorker({ storage, jobs, ...worker, handleSignals: true });
      serverId = running.id;
      await running.start();
      say(
        `TaskFlow worker ${running.id} on ${redact(tf.address)}: queues ` +
          `${running.queues.join(", ")}, concurrency ${running.concurrency}, jobs ` +
          `${running.jobNames.join(", ")} (from ${jobsModule}); Ctrl-C stops it`,
      );
      closers.unshift(() => running.stop());
      await running.closed;
      say(`TaskFlow worker ${running.id} stopped`);
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
    await tf.close();
  }
  return 0;
}
