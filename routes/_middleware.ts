import type { MiddlewareHandlerContext } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import {
  authenticate,
  cookies,
  CSRF_COOKIE,
  LEGACY_TOKEN_COOKIE,
  newCsrfToken,
  originProblem,
  overHttps,
  requestHost,
  safeEqual,
  validCsrf,
} from "../lib/dashboard/security.ts";
import { hostAllowed, hostName } from "../lib/dashboard/hosts.ts";
import {
  cookieAttributes,
  newSession,
  SESSION_COOKIE,
  SESSION_TTL_MS,
} from "../lib/dashboard/session.ts";
import { problem } from "../components/problem.ts";
import { type ErrorCode, TaskFlowError } from "../lib/mod.ts";

/** HTTP statuses for the errors a request can cause; anything else is a 500 page. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_OPTION: 400,
  INVALID_NAME: 400,
  ARGS_NOT_SERIALIZABLE: 400,
  PAYLOAD_TOO_LARGE: 413,
  JOB_NOT_FOUND: 404,
  JOB_EXISTS: 409,
  INVALID_TRANSITION: 409,
  CONFLICT: 409,
  // Reported, not hidden: the page names the broken job; `deno task rebuild` repairs it.
  CORRUPT_RECORD: 500,
};

function errorResponse(error: unknown, api: boolean): Response | undefined {
  const status = error instanceof TaskFlowError ? STATUS[error.code] : undefined;
  if (!status) return undefined;
  const message = (error as TaskFlowError).message +
    ((error as TaskFlowError).code === "CORRUPT_RECORD"
      ? " (run `deno task doctor` to list such jobs, `deno task rebuild` to repair them from their events)"
      : "");
  return problem(status, message, api, {}, (error as TaskFlowError).code);
}

function isJson(req: Request): boolean {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  return type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);
}

/**
 * Host check (DNS rebinding), authentication, read-only mode, same-origin and CSRF checks for
 * actions. The security headers are added to every response by the dashboard's handler.
 */
export async function handler(
  req: Request,
  ctx: MiddlewareHandlerContext<DashboardState>,
): Promise<Response> {
  const { url, state } = ctx;
  const security = state.security;
  const api = url.pathname.startsWith("/api/") || url.pathname === "/metrics";
  const forwarded = security.trustProxy && req.headers.has("x-forwarded-host");
  const host = hostName(requestHost(req, url, security));
  // Behind a trusted proxy the proxy decides which names reach us.
  if (!forwarded && !hostAllowed(host, security)) {
    return problem(
      421,
      `this dashboard does not answer for the host name "${host}" (a page on another name that ` +
        "resolves here, as in DNS rebinding, is refused): open it at the address it listens on, " +
        "or allow the name with --allowed-hosts / TASKFLOW_ALLOWED_HOSTS",
      api,
    );
  }
  const auth = authenticate(req, url, security);
  if (!auth.ok) {
    const headers: Record<string, string> = {};
    if (security.password) headers["www-authenticate"] = 'Basic realm="TaskFlow", charset="UTF-8"';
    return problem(401, auth.reason, api, headers);
  }
  state.via = auth.via;
  const secure = overHttps(req, url, security);
  if (auth.via === "query" && !api) return startSession(url, security.token!, secure);
  const sentCsrf = cookies(req, CSRF_COOKIE).filter(validCsrf);
  state.csrf = sentCsrf[0] ?? newCsrfToken();
  const refused = await refuseUnsafe(req, ctx, api, sentCsrf);
  let response: Response;
  try {
    response = refused ?? await ctx.next();
  } catch (error) {
    response = errorResponse(error, api) ?? (() => {
      throw error;
    })();
  }
  // An invalid cookie is replaced, so a malformed value never locks a browser out of forms.
  if (sentCsrf.length === 0) {
    response.headers.append(
      "set-cookie",
      `${CSRF_COOKIE}=${state.csrf}; ${cookieAttributes(secure, "Strict")}`,
    );
  }
  if (cookies(req, LEGACY_TOKEN_COOKIE).length > 0) {
    response.headers.append("set-cookie", `${LEGACY_TOKEN_COOKIE}=; Path=/; Max-Age=0`);
  }
  return response;
}

/** `?token=` on a page: a session cookie that is not the token, and the address without it. */
function startSession(url: URL, token: string, secure: boolean): Response {
  const clean = new URL(url);
  clean.searchParams.delete("token");
  const response = new Response(null, {
    status: 303,
    headers: { location: clean.pathname + clean.search },
  });
  // Lax, so that the session also works when the link was opened from another site.
  response.headers.append(
    "set-cookie",
    `${SESSION_COOKIE}=${newSession(token)}; ${
      cookieAttributes(secure, "Lax", SESSION_TTL_MS / 1_000)
    }`,
  );
  return response;
}

/** Why a state-changing request is refused (read-only, origin, CSRF), or undefined. */
async function refuseUnsafe(
  req: Request,
  ctx: MiddlewareHandlerContext<DashboardState>,
  api: boolean,
  sentCsrf: string[],
): Promise<Response | undefined> {
  const { url, state } = ctx;
  const security = state.security;
  if (["GET", "HEAD", "OPTIONS"].includes(req.method)) return undefined;
  if (security.readOnly) {
    return problem(
      403,
      `the dashboard is read-only (--read-only): ${req.method} ${url.pathname} changes nothing`,
      api,
    );
  }
  // A browser cannot attach a Bearer header by itself: no cross-site forgery to fear.
  if (api && state.via === "bearer") return undefined;
  const origin = originProblem(req, url, security);
  if (origin === "absent") {
    // Browsers send Origin on every cross-origin POST, and cannot send JSON cross-site without
    // a preflight we never grant: an origin-less JSON request is a script such as curl.
    if (!api) {
      return problem(
        403,
        "the request has no Origin or Referer header, so it cannot be told from a cross-site " +
          "form: dashboard actions are accepted from its own pages only (scripts: use the JSON API)",
        api,
      );
    }
    if (!isJson(req)) {
      return problem(
        415,
        `${req.method} ${url.pathname} without an Origin header must send application/json ` +
          "(or an Authorization: Bearer token)",
        api,
      );
    }
    return undefined;
  }
  if (origin) return problem(403, origin, api);
  if (api) return undefined;
  let sent: FormDataEntryValue | null;
  try {
    sent = (await req.clone().formData()).get("_csrf");
  } catch (error) {
    return errorResponse(error, api) ??
      problem(400, "the form could not be read (send it as a form)", api);
  }
  if (typeof sent !== "string" || sent === "") {
    return problem(403, "missing or invalid CSRF token: the form has none; reload the page", api);
  }
  if (!sentCsrf.some((value) => safeEqual(sent, value))) {
    return problem(
      403,
      sentCsrf.length === 0
        ? "missing or invalid CSRF token: the browser sent no CSRF cookie (are cookies blocked?); reload the page"
        : "missing or invalid CSRF token: it does not match this browser's; reload the page and try again",
      api,
    );
  }
  return undefined;
}
