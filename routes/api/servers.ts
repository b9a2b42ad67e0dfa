import { json } from "../../components/problem.ts";
import type { Handlers } from "../../lib/fresh/types.ts";
import type { DashboardState } from "../../lib/dashboard/state.ts";

/** GET /api/servers: live worker servers. */
export const handler: Handlers<unknown, DashboardState> = {
  async GET(_req, ctx) {
    return json(await ctx.state.tf.servers());
  },
};
