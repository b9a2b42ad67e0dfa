/**
 * @module
 * The dashboard as a request handler and as a server: the routes of `fresh.gen.ts` on a
 * TaskFlow client, with one live hub per process.
 */

import manifest from "../../fresh.gen.ts";
import { buildIslands } from "../fresh/islands.ts";
import { createHandler } from "../fresh/server.ts";
import type { TaskFlow } from "../client.ts";
import { InvalidOptionError } from "../mod.ts";
import { LiveHub } from "./hub.ts";
import type { SecurityConfig } from "./security.ts";
import type { DashboardState } from "./state.ts";

/** Where `deno task build` writes the island bundle, for hosts that cannot bundle at run time. */
export const PREBUILT_ISLANDS = new URL("../../_fresh/islands.js", import.meta.url);

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  tf: TaskFlow;
  security?: Partial<SecurityConfig>;
  /** How often the live hub polls the client while pages are open (default 1,000 ms). */
  liveIntervalMs?: number;
  /** Deploy mode: runs due and ready jobs now (POST /api/drain). */
  drain?: () => Promise<unknown>;
}

/** A dashboard handler with its hub. */
export interface Dashboard {
  handler: (req: Request) => Promise<Response>;
  hub: LiveHub;
  security: SecurityConfig;
  close(): void;
}

/** `settings` over the defaults (user "admin", not read-only, no proxy); undefined ones skipped. */
function withDefaults(...settings: Partial<SecurityConfig>[]): SecurityConfig {
  const given = settings.flatMap((one) =>
    Object.entries(one).filter(([, value]) => value !== undefined)
  );
  return { user: "admin", readOnly: false, trustProxy: false, ...Object.fromEntries(given) };
}

/** Security settings from the environment (`TASKFLOW_DASHBOARD_*`). */
export function securityFromEnv(overrides: Partial<SecurityConfig> = {}): SecurityConfig {
  const env = (name: string) => Deno.env.get(name) || undefined;
  return withDefaults({
    password: env("TASKFLOW_DASHBOARD_PASSWORD"),
    user: env("TASKFLOW_DASHBOARD_USER"),
    token: env("TASKFLOW_DASHBOARD_TOKEN"),
    trustProxy: env("TASKFLOW_TRUST_PROXY") === "1",
  }, overrides);
}

/** Builds the dashboard's request handler. */
export function createDashboard(options: DashboardOptions): Dashboard {
  const security = withDefaults(options.security ?? {});
  const hub = new LiveHub(options.tf, options.liveIntervalMs);
  const handler = createHandler(manifest, {
    state: (): Partial<DashboardState> => ({ tf: options.tf, hub, security, drain: options.drain }),
    staticDir: new URL("../../static", import.meta.url).pathname,
    islands: loadIslands,
  });
  return { handler, hub, security, close: () => hub.close() };
}

async function loadIslands(): Promise<string> {
  try {
    return await buildIslands(manifest);
  } catch (error) {
    try {
      return await Deno.readTextFile(PREBUILT_ISLANDS);
    } catch {
      throw error;
    }
  }
}

/** True for loopback host names and addresses. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\./.test(hostname);
}

/** Refuses a non-loopback `hostname` unless a password or token is set, or `insecure`. */
export function checkBind(
  hostname: string,
  security: Partial<SecurityConfig>,
  insecure = false,
): void {
  if (!isLoopback(hostname) && !security.password && !security.token && !insecure) {
    throw new InvalidOptionError(
      "--host",
      hostname,
      "is not a loopback address: set TASKFLOW_DASHBOARD_PASSWORD or TASKFLOW_DASHBOARD_TOKEN, or pass --insecure",
    );
  }
}

/** Options of {@link serveDashboard}. */
export interface ServeOptions extends DashboardOptions {
  hostname?: string;
  port?: number;
  /** Allow a non-loopback address without a password or token. */
  insecure?: boolean;
  signal?: AbortSignal;
  onListen?: (address: { hostname: string; port: number }) => void;
}

/**
 * Serves the dashboard (default 127.0.0.1:8000). Refuses a non-loopback address unless a
 * password or token is set, or `insecure` is given.
 */
export function serveDashboard(
  options: ServeOptions,
): { server: Deno.HttpServer; dashboard: Dashboard } {
  const hostname = options.hostname ?? "127.0.0.1";
  const dashboard = createDashboard(options);
  try {
    checkBind(hostname, dashboard.security, options.insecure);
  } catch (error) {
    dashboard.close();
    throw error;
  }
  const server = Deno.serve({
    hostname,
    port: options.port ?? 8000,
    signal: options.signal,
    onListen: options.onListen ?? (() => {}),
  }, dashboard.handler);
  server.finished.then(() => dashboard.close());
  return { server, dashboard };
}
