/**
 * @module
 * Error responses: a small HTML page for browsers, JSON for the API. Never a stack trace.
 */

import { scriptJson } from "../lib/fresh/render.ts";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * A JSON response whose text has `<`, `>` and `&` escaped, so that values echoed from requests
 * (job args, names, error messages) can never be read as markup by anything sniffing the body.
 */
export function json(value: unknown, init: ResponseInit = {}): Response {
  const body = scriptJson(value);
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(body, { ...init, headers });
}

/**
 * The answer to a successful action (POST-redirect-GET): 303 to `path`, with a `done` notice for
 * the next page when given.
 */
export function seeOther(path: string, done?: string): Response {
  const location = done === undefined ? path : `${path}?${new URLSearchParams({ done })}`;
  return new Response(null, { status: 303, headers: { location } });
}

/** A response with `status` and `message`, as JSON (`api`) or as a minimal page. */
export function problem(
  status: number,
  message: string,
  api: boolean,
  headers: Record<string, string> = {},
  code?: string,
): Response {
  if (api) return json({ error: message, ...(code ? { code } : {}), status }, { status, headers });
  const body =
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${status} · TaskFlow</title>` +
    `<link rel="stylesheet" href="/style.css"></head><body><main class="problem"><h1>${status}</h1>` +
    `<p>${escapeHtml(message)}</p><p><a href="/">Back to the overview</a></p></main></body></html>`;
  return new Response(body, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", ...headers },
  });
}
