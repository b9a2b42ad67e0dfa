/**
 * @module
 * Dashboard security: who may see it (basic auth or a token), that actions come from our own
 * pages (same origin and a CSRF token), and the headers every response carries.
 */

/** How the dashboard is protected; from flags and environment. */
export interface SecurityConfig {
  /** Basic-auth password (`TASKFLOW_DASHBOARD_PASSWORD`); user name `user`. */
  password?: string;
  /** Basic-auth user name (default `admin`). */
  user: string;
  /** Bearer token (`TASKFLOW_DASHBOARD_TOKEN`): API calls, and browsers via `?token=` once. */
  token?: string;
  /** Hide and refuse every action. */
  readOnly: boolean;
  /** Trust `X-Forwarded-Host`/`X-Forwarded-Proto` from a reverse proxy for the origin check. */
  trustProxy: boolean;
}

/** Cookie holding the CSRF token (double-submit). */
export const CSRF_COOKIE = "tf_csrf";
/** Cookie a browser gets after opening the dashboard with `?token=`. */
export const TOKEN_COOKIE = "tf_token";

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

const encoder = new TextEncoder();

/** Compares two secrets in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a), y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Reads one cookie of `req`. */
export function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/** How the request proved who it is, or why it did not. */
export type AuthResult = { ok: true; via: "none" | "basic" | "bearer" | "cookie" | "query" } | {
  ok: false;
};

/** Checks the request's credentials against the configuration. */
export function authenticate(req: Request, url: URL, config: SecurityConfig): AuthResult {
  if (!config.password && !config.token) return { ok: true, via: "none" };
  const header = req.headers.get("authorization") ?? "";
  if (config.token && header.startsWith("Bearer ") && safeEqual(header.slice(7), config.token)) {
    return { ok: true, via: "bearer" };
  }
  if (config.password && header.startsWith("Basic ")) {
    try {
      const [user, ...rest] = atob(header.slice(6)).split(":");
      if (safeEqual(user, config.user) && safeEqual(rest.join(":"), config.password)) {
        return { ok: true, via: "basic" };
      }
    } catch {
      return { ok: false };
    }
  }
  if (config.token) {
    const fromCookie = cookie(req, TOKEN_COOKIE);
    if (fromCookie && safeEqual(fromCookie, config.token)) return { ok: true, via: "cookie" };
    const fromQuery = url.searchParams.get("token");
    if (fromQuery && req.method === "GET" && safeEqual(fromQuery, config.token)) {
      return { ok: true, via: "query" };
    }
  }
  return { ok: false };
}

/** The origin the browser sees us at (behind a trusted proxy, the forwarded one). */
export function expectedOrigin(req: Request, url: URL, config: SecurityConfig): string {
  if (config.trustProxy) {
    const host = req.headers.get("x-forwarded-host")?.split(",")[0].trim();
    const proto = req.headers.get("x-forwarded-proto")?.split(",")[0].trim();
    if (host) return `${proto ?? url.protocol.replace(":", "")}://${host}`;
  }
  return url.origin;
}

/** True when a state-changing request comes from our own pages (Origin, else Referer). */
export function sameOrigin(req: Request, url: URL, config: SecurityConfig): boolean {
  const expected = expectedOrigin(req, url, config);
  const origin = req.headers.get("origin");
  if (origin) return origin === expected;
  const referer = req.headers.get("referer");
  if (!referer) return false;
  try {
    return new URL(referer).origin === expected;
  } catch {
    return false;
  }
}

/** A fresh random CSRF token. */
export function newCsrfToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}
