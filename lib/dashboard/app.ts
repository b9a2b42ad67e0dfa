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
import {
  checkSecrets,
  MIN_PASSWORD_LENGTH,
  MIN_TOKEN_LENGTH,
  SECURITY_HEADERS,
  type SecurityConfig,
  weakness,
} from "./security.ts";
import { bodyLimit, limitBody } from "./body.ts";
import { isLoopback, isLoopbackAddress, parseAllowedHosts, resolveBindAddress } from "./hosts.ts";
import type { DashboardState } from "./state.ts";

/** Where `deno task build` writes the island bundle, for hosts that cannot bundle at run time. */
export const PREBUILT_ISLANDS = new URL("../../_fresh/islands.js", import.meta.url);

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  tf: TaskFlow;
  /** The address the dashboard is served at (default 127.0.0.1); its Host is answered. */
  hostname?: string;
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
  return {
    user: "admin",
    readOnly: false,
    trustProxy: false,
    bindHost: "127.0.0.1",
    allowedHosts: [],
    ...Object.fromEntries(given),
  };
}

function flag(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (["1", "true", "yes", "on"].includes(text.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(text.toLowerCase())) return false;
  throw new InvalidOptionError(name, text, "must be 1 or 0 (true or false)");
}

/**
 * Security settings from the environment: `TASKFLOW_DASHBOARD_PASSWORD`, `_USER`, `_TOKEN`,
 * `TASKFLOW_TRUST_PROXY`, `TASKFLOW_ALLOWED_HOSTS`; `overrides` (from flags) win.
 */
export function securityFromEnv(overrides: Partial<SecurityConfig> = {}): SecurityConfig {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const hosts = env("TASKFLOW_ALLOWED_HOSTS");
  const security = withDefaults({
    password: env("TASKFLOW_DASHBOARD_PASSWORD"),
    user: env("TASKFLOW_DASHBOARD_USER"),
    token: env("TASKFLOW_DASHBOARD_TOKEN"),
    trustProxy: flag("TASKFLOW_TRUST_PROXY", env("TASKFLOW_TRUST_PROXY")),
    allowedHosts: hosts === undefined ? undefined : parseAllowedHosts(hosts),
  }, overrides);
  checkSecrets(security);
  return security;
}

/** Builds the dashboard's request handler. */
export function createDashboard(options: DashboardOptions): Dashboard {
  const security = withDefaults(options.security ?? {}, { bindHost: options.hostname });
  checkSecrets(security);
  const hub = new LiveHub(options.tf, options.liveIntervalMs);
  const routes = createHandler(manifest, {
    state: (): Partial<DashboardState> => ({ tf: options.tf, hub, security, drain: options.drain }),
    staticDir: new URL("../../static", import.meta.url).pathname,
    islands: loadIslands,
  });
  // Outermost, so that every response (island bundle, 500 page) gets the headers and every
  // route reads a bounded body.
  const handler = async (req: Request): Promise<Response> =>
    withSecurityHeaders(await routes(boundedRequest(req)));
  return { handler, hub, security, close: () => hub.close() };
}

function boundedRequest(req: Request): Request {
  if (req.method === "GET" || req.method === "HEAD") return req;
  return limitBody(req, bodyLimit(new URL(req.url).pathname));
}

function withSecurityHeaders(response: Response): Response {
  try {
    response.headers.set("x-content-type-options", "nosniff");
  } catch {
    // Immutable headers (a Response.redirect): copy into a response we may change.
    response = new Response(response.body, response);
  }
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  if (!response.headers.has("cache-control")) response.headers.set("cache-control", "no-store");
  return response;
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

export { isLoopback, parseAllowedHosts };

/** Why `address` may not be served with `security`, or undefined when it may. */
function bindProblem(
  hostname: string,
  security: Partial<SecurityConfig>,
  insecure: boolean,
): string | undefined {
  if (insecure) return undefined;
  const address = resolveBindAddress(hostname);
  if (address !== undefined && isLoopbackAddress(address)) return undefined;
  // What cannot be shown to be loopback is treated as public.
  const resolved = address === undefined
    ? " (it does not resolve to a local address)"
    : address === hostname
    ? ""
    : ` (resolves to ${address})`;
  if (!security.password && !security.token) {
    return `is not a loopback address${resolved}: set TASKFLOW_DASHBOARD_PASSWORD or TASKFLOW_DASHBOARD_TOKEN, or pass --insecure`;
  }
  const weak = [
    ["TASKFLOW_DASHBOARD_TOKEN", security.token, MIN_TOKEN_LENGTH],
    ["TASKFLOW_DASHBOARD_PASSWORD", security.password, MIN_PASSWORD_LENGTH],
  ].flatMap(([name, secret, min]) => {
    const why = secret === undefined ? undefined : weakness(secret as string, min as number);
    return why ? [`${name} ${why}`] : [];
  });
  if (weak.length === 0) return undefined;
  return `is not a loopback address${resolved} and ${
    weak.join(", and ")
  } to guard it (generate one with \`openssl rand -hex 24\`), or pass --insecure`;
}

/**
 * Refuses a non-loopback `hostname` (decided by the address it resolves to) unless a strong
 * password or token is set, or `insecure`.
 */
export function checkBind(
  hostname: string,
  security: Partial<SecurityConfig>,
  insecure = false,
): void {
  const problem = bindProblem(hostname, security, insecure);
  if (problem) throw new InvalidOptionError("--host", hostname, problem);
}

/** Options of {@link serveDashboard}. */
export interface ServeOptions extends DashboardOptions {
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
  // The name may resolve differently now than at the check (DNS that answers loopback once):
  // judge the address actually bound, before any request is handled.
  const bound = (server.addr as Deno.NetAddr).hostname;
  const problem = bindProblem(bound, dashboard.security, options.insecure ?? false);
  if (problem) {
    server.shutdown();
    throw new InvalidOptionError("--host", hostname, problem);
  }
  return { server, dashboard };
}
