/**
 * @module
 * Dashboard security: who may see it (basic auth, a token, or a session after `?token=`), that
 * actions come from our own pages (same origin and a CSRF token), and the headers every
 * response carries. Every refusal names its real cause.
 */

import { InvalidOptionError } from "../mod.ts";
import { checkSession, SESSION_COOKIE } from "./session.ts";

/** How the dashboard is protected; from flags and environment. */
export interface SecurityConfig {
  /** Basic-auth password (`TASKFLOW_DASHBOARD_PASSWORD`); user name `user`. */
  password?: string;
  /** Basic-auth user name (default `admin`). */
  user: string;
  /** Bearer token (`TASKFLOW_DASHBOARD_TOKEN`): API calls, and browsers via `?token=` once. */
  token?: string;
  /** Hide and refuse every action and every write of the API. */
  readOnly: boolean;
  /** Trust `X-Forwarded-Host`/`X-Forwarded-Proto` from a reverse proxy. */
  trustProxy: boolean;
  /** The address or name the dashboard is bound to (default 127.0.0.1); answered as a Host. */
  bindHost: string;
  /** Other Host names answered (`--allowed-hosts`/`TASKFLOW_ALLOWED_HOSTS`). */
  allowedHosts: string[];
}

/** Cookie holding the CSRF token (double-submit). */
export const CSRF_COOKIE = "tf_csrf";
/** The cookie older versions stored the raw token in; removed when a browser still sends it. */
export const LEGACY_TOKEN_COOKIE = "tf_token";

/** Headers on every dashboard response. */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** Minimum lengths of secrets that guard a non-loopback address. */
export const MIN_TOKEN_LENGTH = 16;
/** Minimum length of a basic-auth password that guards a non-loopback address. */
export const MIN_PASSWORD_LENGTH = 12;

const encoder = new TextEncoder();

/** Compares two secrets in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a), y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Every value of cookie `name` in `req` (a browser may send several, from different paths). */
export function cookies(req: Request, name: string): string[] {
  const found: string[] = [];
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at >= 0 && part.slice(0, at).trim() === name) found.push(part.slice(at + 1).trim());
  }
  return found;
}

/** A header value as sent: HTTP headers arrive as bytes (Latin-1 code units); decode them as UTF-8. */
function headerText(value: string): string {
  const codes = Array.from(value, (c) => c.charCodeAt(0));
  if (!codes.some((c) => c > 0x7f) || codes.some((c) => c > 0xff)) return value;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(codes));
  } catch {
    return value;
  }
}

/** A Basic-auth credential: base64 of UTF-8 (as our challenge says), Latin-1 from old clients. */
function decodeBasic(encoded: string): [string, string] | undefined {
  let binary: string;
  try {
    binary = atob(encoded.trim());
  } catch {
    return undefined;
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = binary;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? undefined : [text.slice(0, colon), text.slice(colon + 1)];
}

/** The `?token=` values of a URL: decoded as forms do (`+` is a space) and as plain percent-encoding. */
function queryTokens(url: URL): string[] {
  const values = url.searchParams.getAll("token");
  for (const part of url.search.slice(1).split("&")) {
    if (!part.startsWith("token=")) continue;
    try {
      values.push(decodeURIComponent(part.slice(6)));
    } catch { /* malformed escapes: only the form decoding applies */ }
  }
  return values;
}

/** How the request proved who it is, or why it did not. */
export type AuthResult =
  | { ok: true; via: "none" | "basic" | "bearer" | "session" | "query" }
  | { ok: false; reason: string };

/** How to authenticate, for the message of a refusal. */
function howTo(config: SecurityConfig): string {
  const ways = [];
  if (config.token) {
    ways.push("send `Authorization: Bearer <TASKFLOW_DASHBOARD_TOKEN>`");
    ways.push("open the dashboard once as /?token=<TASKFLOW_DASHBOARD_TOKEN>");
  }
  if (config.password) ways.push("log in with basic auth (TASKFLOW_DASHBOARD_PASSWORD)");
  return ways.join(", or ");
}

/** Checks the request's credentials against the configuration. */
export function authenticate(req: Request, url: URL, config: SecurityConfig): AuthResult {
  if (!config.password && !config.token) return { ok: true, via: "none" };
  const failures: string[] = [];
  const header = headerText(req.headers.get("authorization") ?? "");
  const [scheme, ...rest] = header.trim().split(" ");
  const credential = rest.join(" ").trim();
  if (/^bearer$/i.test(scheme)) {
    if (!config.token) {
      failures.push("a Bearer token was sent but TASKFLOW_DASHBOARD_TOKEN is not set");
    } else if (safeEqual(credential, config.token)) return { ok: true, via: "bearer" };
    else failures.push("the Bearer token does not match TASKFLOW_DASHBOARD_TOKEN");
  } else if (/^basic$/i.test(scheme)) {
    const pair = decodeBasic(credential);
    if (!config.password) {
      failures.push("basic auth was sent but TASKFLOW_DASHBOARD_PASSWORD is not set");
    } else if (!pair) failures.push("the basic-auth header is malformed");
    else if (safeEqual(pair[0], config.user) && safeEqual(pair[1], config.password)) {
      return { ok: true, via: "basic" };
    } else failures.push("wrong user name or password");
  } else if (header !== "") failures.push(`unknown authorization scheme "${scheme.slice(0, 20)}"`);
  if (config.token) {
    const queried = queryTokens(url);
    if (queried.length > 0 && (req.method === "GET" || req.method === "HEAD")) {
      if (queried.some((t) => safeEqual(t, config.token!))) return { ok: true, via: "query" };
      failures.push("the ?token= in the address does not match TASKFLOW_DASHBOARD_TOKEN");
    }
    const sessions = cookies(req, SESSION_COOKIE).map((v) => checkSession(v, config.token!));
    if (sessions.includes("ok")) return { ok: true, via: "session" };
    if (sessions.includes("expired")) failures.push("the browser's session expired");
    else if (sessions.length > 0) {
      failures.push("the browser's session is not valid here (the dashboard restarted?)");
    }
  }
  const cause = failures.length > 0 ? failures.join("; ") : "no credentials were sent";
  return { ok: false, reason: `authentication required: ${cause}; ${howTo(config)}` };
}

/** True when the request reached the browser over HTTPS (behind a trusted proxy, as forwarded). */
export function overHttps(req: Request, url: URL, config: SecurityConfig): boolean {
  if (config.trustProxy) {
    const proto = req.headers.get("x-forwarded-proto")?.split(",")[0].trim().toLowerCase();
    if (proto) return proto === "https";
  }
  return url.protocol === "https:";
}

/** The Host the browser addressed (behind a trusted proxy, the forwarded one). */
export function requestHost(req: Request, url: URL, config: SecurityConfig): string {
  if (config.trustProxy) {
    const forwarded = req.headers.get("x-forwarded-host")?.split(",")[0].trim();
    if (forwarded) return forwarded;
  }
  return url.host;
}

/** The origin the browser sees us at (behind a trusted proxy, the forwarded one). */
export function expectedOrigin(req: Request, url: URL, config: SecurityConfig): string {
  const proto = overHttps(req, url, config) ? "https" : url.protocol.slice(0, -1);
  return `${proto}://${requestHost(req, url, config)}`.toLowerCase();
}

/**
 * Why a state-changing request does not come from our own pages (Origin, else Referer), or
 * undefined when it does. `"absent"` when the request names no origin at all.
 */
export function originProblem(req: Request, url: URL, config: SecurityConfig): string | undefined {
  const expected = expectedOrigin(req, url, config);
  const origin = req.headers.get("origin");
  if (origin) {
    if (origin.toLowerCase() === expected) return undefined;
    return `cross-origin request refused: Origin ${origin} is not this dashboard's ${expected}`;
  }
  const referer = req.headers.get("referer");
  if (!referer) return "absent";
  let from: string;
  try {
    from = new URL(referer).origin;
  } catch {
    return `cross-origin request refused: the Referer header is not a URL`;
  }
  if (from === expected) return undefined;
  return `cross-origin request refused: the Referer's origin ${from} is not this dashboard's ${expected}`;
}

/** A fresh random CSRF token. */
export function newCsrfToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/** True for a CSRF cookie value this dashboard could have issued. */
export function validCsrf(value: string): boolean {
  return /^[\w-]{20,64}$/.test(value);
}

const hidden = (secret: string) => `<${[...secret].length} characters>`;

/**
 * Refuses secrets that cannot work: a token with control characters or surrounding spaces
 * (an HTTP header cannot carry them), a user name with `:` or control characters.
 */
export function checkSecrets(config: Partial<SecurityConfig>): void {
  // deno-lint-ignore no-control-regex
  const control = /[\u0000-\u001f\u007f]/;
  const { token, user, password } = config;
  if (token !== undefined) {
    if (control.test(token) || token !== token.trim()) {
      throw new InvalidOptionError(
        "TASKFLOW_DASHBOARD_TOKEN",
        hidden(token),
        "has a control character or leading/trailing white space, which an Authorization header cannot carry",
      );
    }
  }
  if (user !== undefined && (control.test(user) || user.includes(":") || user === "")) {
    throw new InvalidOptionError(
      "TASKFLOW_DASHBOARD_USER",
      user,
      "must be non-empty, without ':' or control characters (basic auth splits at the first ':')",
    );
  }
  if (password !== undefined && password === "") {
    throw new InvalidOptionError("TASKFLOW_DASHBOARD_PASSWORD", "", "must not be empty");
  }
}

/** Why a secret is too weak to guard a public address, or undefined. */
export function weakness(secret: string, minLength: number): string | undefined {
  const length = [...secret].length;
  if (length < minLength) return `is ${length} characters; at least ${minLength} are needed`;
  if (new Set(secret).size < 6) return "repeats too few different characters";
  return undefined;
}
