import type { Handlers } from "../../../lib/fresh/types.ts";
import type { DashboardState } from "../../../lib/dashboard/state.ts";
import { InvalidOptionError } from "../../../lib/mod.ts";
import { limitParam, stateParam } from "../../../components/params.ts";
import { json, problem } from "../../../components/problem.ts";

/**
 * GET /api/jobs?state=failed|queue=mail&cursor=&limit=: a page of jobs.
 * POST /api/jobs: `{ "name", "args", "options"? }`, or `{ "delayMs" | "at" }` in
 * options to schedule; answers 201 with `{ id }`.
 */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    const params = ctx.url.searchParams;
    const limit = limitParam(ctx.url);
    const cursor = params.get("cursor") ?? undefined;
    const stateText = params.get("state"), queue = params.get("queue");
    if ((stateText === null) === (queue === null)) {
      throw new InvalidOptionError("query", ctx.url.search, "give exactly one of state or queue");
    }
    if (stateText !== null) {
      const state = stateParam(stateText);
      if (!state) throw new InvalidOptionError("state", stateText, "is not a job state");
      return json(await ctx.state.tf.list({ state, cursor, limit }));
    }
    return json(await ctx.state.tf.list({ queue: queue!, cursor, limit }));
  },
  async POST(req, ctx) {
    // Who may write was decided by the middleware (token, or origin-less JSON on an open
    // dashboard); the body is bounded while it streams (RequestBodyTooLargeError → 413).
    const { tf } = ctx.state;
    if (!(req.headers.get("content-type") ?? "").includes("application/json")) {
      return problem(415, "send the job as application/json", true);
    }
    const text = await req.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      return problem(400, `malformed JSON: ${(error as Error).message}`, true);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return problem(
        400,
        'the body must be an object like {"name": "...", "args": ...}',
        true,
      );
    }
    const { name, args = null, options = {} } = body as {
      name?: unknown;
      args?: unknown;
      options?: Record<string, unknown>;
    };
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new InvalidOptionError("options", options, "must be an object");
    }
    const scheduled = "delayMs" in options || "at" in options;
    const at = typeof options.at === "string" ? new Date(options.at) : options.at;
    // Bad input throws a typed error: the middleware answers 400 (413 when too large) with its code.
    const id = scheduled
      ? await tf.schedule(
        name as string,
        args,
        { ...options, ...("at" in options ? { at } : {}) } as Parameters<typeof tf.schedule>[2],
      )
      : await tf.enqueue(name as string, args, options);
    return json({ id }, {
      status: 201,
      headers: { location: `/api/jobs/${encodeURIComponent(id)}` },
    });
  },
};
