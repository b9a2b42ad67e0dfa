import type { Handlers } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";
import { json, problem } from "../../components/problem.ts";

/**
 * POST /api/drain (Bearer token, Deploy mode only): runs due and ready jobs now, as the
 * per-minute Deno.cron does; answers what it did. For an external scheduler, or a test.
 */
export const handler: Handlers<unknown, DashboardState> = {
  async POST(_req, ctx) {
    const { drain, security } = ctx.state;
    if (!drain) {
      return problem(404, "draining on demand is only available in Deploy mode", true);
    }
    if (!security.token) {
      return problem(403, "POST /api/drain needs TASKFLOW_DASHBOARD_TOKEN to be set", true);
    }
    if (ctx.state.via !== "bearer") {
      return problem(401, "POST /api/drain needs an Authorization: Bearer token", true);
    }
    return json(await drain());
  },
};
