import type { Handlers } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";

/** GET /api/recurring: recurring job definitions. */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    return Response.json(await ctx.state.tf.recurring.list());
  },
};
