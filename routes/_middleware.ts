import type { MiddlewareHandlerContext } from "../lib/fresh/types.ts";
import type { DashboardState } from "../lib/dashboard/state.ts";
import {
  authenticate,
  cookie,
  CSRF_COOKIE,
  newCsrfToken,
  safeEqual,
  sameOrigin,
  SECURITY_HEADERS,
  TOKEN_COOKIE,
} from "../lib/dashboard/security.ts";
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

/** Auth, CSRF and same-origin checks for actions, read-only mode, security headers. */
export async function handler(
  req: Request,
  ctx: MiddlewareHandlerContext<DashboardState>,
): Promise<Response> {
  const response = await guard(req, ctx);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  if (!response.headers.has("cache-control")) response.headers.set("cache-control", "no-store");
  return response;
}

async function guard(
  req: Request,
  ctx: MiddlewareHandlerContext<DashboardState>,
): Promise<Response> {
  const { url, state } = ctx;
  const security = state.security;
  const api = url.pathname.startsWith("/api/") || url.pathname === "/metrics";
  const auth = authenticate(req, url, security);
  if (!auth.ok) {
    const headers: Record<string, string> = {};
    if (security.password) headers["www-authenticate"] = 'Basic realm="TaskFlow", charset="UTF-8"';
    return problem(401, "authentication required", api, headers);
  }
  const existing = cookie(req, CSRF_COOKIE);
  state.csrf = existing && /^[\w-]{20,64}$/.test(existing) ? existing : newCsrfToken();
  const unsafe = !["GET", "HEAD", "OPTIONS"].includes(req.method);
  if (unsafe && !(api && auth.via === "bearer")) {
    if (security.readOnly) return problem(403, "the dashboard is read-only", api);
    if (!sameOrigin(req, url, security)) {
      return problem(403, "cross-origin request refused", api);
    }
    if (!api) {
      let sent: FormDataEntryValue | null = null;
      try {
        sent = (await req.clone().formData()).get("_csrf");
      } catch {
        return problem(400, "the form could not be read", api);
      }
      if (!existing || typeof sent !== "string" || !safeEqual(sent, existing)) {
        return problem(
          403,
          "missing or invalid CSRF token; reload the page and try again",
          api,
        );
      }
    }
  }
  let response: Response;
  try {
    response = await ctx.next();
  } catch (error) {
    const status = error instanceof TaskFlowError ? STATUS[error.code] : undefined;
    if (!status) throw error;
    const message = (error as TaskFlowError).message +
      ((error as TaskFlowError).code === "CORRUPT_RECORD"
        ? " (run `deno task doctor` to list such jobs, `deno task rebuild` to repair them from their events)"
        : "");
    response = problem(status, message, api);
  }
  if (!existing) {
    response.headers.append(
      "set-cookie",
      `${CSRF_COOKIE}=${state.csrf}; Path=/; HttpOnly; SameSite=Strict`,
    );
  }
  if (auth.via === "query" && security.token) {
    response.headers.append(
      "set-cookie",
      `${TOKEN_COOKIE}=${security.token}; Path=/; HttpOnly; SameSite=Strict`,
    );
  }
  return response;
}
