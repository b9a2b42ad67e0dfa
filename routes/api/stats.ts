import { json } from "../../components/problem.ts";
import type { Handlers } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";

/** GET /api/stats: counters, rates, processing jobs and servers (the live hub's snapshot). */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    return json(await ctx.state.hub.snapshot());
  },
};
