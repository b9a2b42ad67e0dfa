/**
 * @module
 * Error responses: a small HTML page for browsers, JSON for the API. Never a stack trace.
 */

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

/** A response with `status` and `message`, as JSON (`api`) or as a minimal page. */
export function problem(
  _req: Request,
  status: number,
  message: string,
  api: boolean,
  headers: Record<string, string> = {},
): Response {
  if (api) return Response.json({ error: message, status }, { status, headers });
  const body =
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${status} · TaskFlow</title>` +
    `<link rel="stylesheet" href="/style.css"></head><body><main class="problem"><h1>${status}</h1>` +
    `<p>${escapeHtml(message)}</p><p><a href="/">Back to the overview</a></p></main></body></html>`;
  return new Response(body, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", ...headers },
  });
}
